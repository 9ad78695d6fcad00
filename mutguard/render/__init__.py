"""Report renderers, looked up by format name; each turns a Report into text."""

from __future__ import annotations

import importlib

from mutguard.models import Report

FORMATS = {
    "table": "mutguard.render.table",
    "json": "mutguard.render.json",
    "sarif": "mutguard.render.sarif",
    "markdown": "mutguard.render.markdown",
}


def render(report: Report, fmt: str, color: bool = False, source: str | None = None) -> str:
    """`source`: the options that name where the clusters came from (`--demo`, `--snapshot DIR`,
    `--provider aws ...`), for the next command the terminal report suggests."""
    module = importlib.import_module(FORMATS[fmt])
    if fmt == "table":
        return module.render(report, color=color, source=source)
    return module.render(report, color=color)
