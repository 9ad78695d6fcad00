"""Report renderers, looked up by format name; each module's `render(report, color)` turns a
Report into text. FORMATS is the one registry of formats: `--format` takes its names."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from mutguard.registry import Registry

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mutguard.models import Report
    from mutguard.state import MutPoint


# Another distribution adds a format with an entry point in the `mutguard.formats` group: a
# module with `render(report, color=False) -> str`.
FORMATS: Registry[ModuleType] = Registry("format", "mutguard.formats")
FORMATS.add("table", "mutguard.render.table", summary="for a terminal (the default)")
FORMATS.add("json", "mutguard.render.json", summary="the versioned report")
FORMATS.add("sarif", "mutguard.render.sarif", summary="code scanning")
FORMATS.add("markdown", "mutguard.render.markdown", summary="pull requests and wikis")
FORMATS.add("csv", "mutguard.render.csv_report", summary="one row per finding, for spreadsheets")
FORMATS.add("junit", "mutguard.render.junit", summary="CI test reports (JUnit XML)")
FORMATS.add("ocsf", "mutguard.render.ocsf", summary="OCSF Compliance Findings for security lakes")
FORMATS.add("html", "mutguard.render.html", summary="one self-contained page to share or print")


def render(
    report: Report,
    fmt: str,
    color: bool = False,
    source: str | None = None,
    history: Mapping[str, Sequence[MutPoint]] | None = None,
) -> str:
    """`source`: the options that name where the clusters came from (`--demo`, `--snapshot DIR`,
    `--provider aws ...`), for the next command the terminal report suggests. `history`: each
    cluster's earlier MUT (by cluster key) from the state store, for the HTML report's trend."""
    module = FORMATS.get(fmt)
    if fmt == "table":
        return module.render(report, color=color, source=source)
    if fmt == "html":
        return module.render(report, color=color, history=history)
    return module.render(report, color=color)
