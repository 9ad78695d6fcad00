"""Report renderers, looked up by format name; each module's `render(report, color)` turns a
Report into text. FORMATS is the one list of formats: `--format` offers exactly these."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mutguard.models import Report
    from mutguard.state import MutPoint


class Format(NamedTuple):
    module: str
    description: str  # for `--help`: what the format is for


FORMATS = {
    "table": Format("mutguard.render.table", "for a terminal (the default)"),
    "json": Format("mutguard.render.json", "the versioned report"),
    "sarif": Format("mutguard.render.sarif", "code scanning"),
    "markdown": Format("mutguard.render.markdown", "pull requests and wikis"),
    "csv": Format("mutguard.render.csv_report", "one row per finding, for spreadsheets"),
    "junit": Format("mutguard.render.junit", "CI test reports (JUnit XML)"),
    "ocsf": Format("mutguard.render.ocsf", "OCSF Compliance Findings for security lakes"),
    "html": Format("mutguard.render.html", "one self-contained page to share or print"),
}


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
    module = importlib.import_module(FORMATS[fmt].module)
    if fmt == "table":
        return module.render(report, color=color, source=source)
    if fmt == "html":
        return module.render(report, color=color, history=history)
    return module.render(report, color=color)
