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


def render(report: Report, fmt: str, color: bool = False) -> str:
    return importlib.import_module(FORMATS[fmt]).render(report, color=color)
