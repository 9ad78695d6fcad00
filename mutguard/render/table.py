"""The terminal report: per cluster its MUT, the path that sets it and the fixes that raise it."""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mutguard.models import ClusterReport, Report, Status
from mutguard.render.summary import headline, severity_counts, status_counts, top_fixes

_MUT_STYLE = {0: "bold white on red", 1: "bold red", 2: "bold yellow"}
_STATUS_STYLE = {Status.FAIL: "red", Status.ERROR: "magenta", Status.UNKNOWN: "yellow"}


def _cluster_panel(cluster: ClusterReport) -> Panel:
    names = (cluster.provider.value, cluster.name, cluster.location, cluster.account)
    title = " · ".join(filter(None, names))  # a kubeconfig cluster has no account
    parts: list = [Text(headline(cluster), style=_MUT_STYLE.get(cluster.mut, "bold green"))]
    parts += [Text(f"error: {e}", style="magenta") for e in cluster.errors]
    if cluster.mut is not None:
        path = min(cluster.paths, key=lambda p: p.mut)
        parts.append(Text(f"cheapest path (MUT {path.mut}) from {path.from_}:", style="bold"))
        parts += [Text(f"  → {step}") for step in path.steps]
        grades = " · ".join(f"{a}: {g.value}" for a, g in cluster.maturity)
        parts.append(Text(f"maturity: {grades}", style="dim"))
        if cluster.blast_radius:
            exposed = cluster.blast_radius[0]
            parts.append(Text(f"most exposed workload: {exposed.workload} (MUT {exposed.mut})"))
        fixes = top_fixes(cluster)
        if fixes:
            table = Table(title="top fixes by MUT gain", title_justify="left", expand=True)
            for column in ("gain", "severity", "check", "what to fix"):
                table.add_column(column, overflow="fold")
            for f in fixes:
                table.add_row(f"+{f.mut_gain}", f.severity.value, f.check_id, f.detail)
            parts.append(table)
        others = Table(title="other findings", title_justify="left", expand=True)
        for column in ("status", "severity", "check", "detail"):
            others.add_column(column, overflow="fold")
        for f in cluster.findings:
            if f.status is not Status.PASS and f not in fixes:
                style = _STATUS_STYLE.get(f.status, "")
                others.add_row(
                    Text(f.status.value, style=style), f.severity.value, f.check_id, f.detail
                )
        if others.row_count:
            parts.append(others)
        parts.append(Text(f"failed: {severity_counts(cluster)}  ({status_counts(cluster)})"))
    return Panel(Group(*parts), title=title, title_align="left")


def render(report: Report, color: bool = False) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=120)
    for error in report.errors:
        console.print(Text(f"error {error.scope}: {error.message}", style="magenta"))
    for cluster in report.clusters:
        console.print(_cluster_panel(cluster))
    if not report.clusters:
        console.print("no clusters found")
    return buffer.getvalue()
