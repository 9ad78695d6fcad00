"""The terminal report: the fleet worst first, then per cluster its MUT, the path that sets it
and the fixes that raise it, and last the command that explains the worst cluster."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from mutguard.models import ClusterReport, Report, Status
from mutguard.render.summary import (
    MUT_STARTS,
    cheapest,
    headline,
    mut_value,
    next_step,
    severity_counts,
    start_phrase,
    status_counts,
    top_fixes,
    worst_first,
)

_MUT_STYLE = {0: "bold white on red", 1: "bold red", 2: "bold yellow"}
_STATUS_STYLE = {Status.FAIL: "red", Status.ERROR: "magenta", Status.UNKNOWN: "yellow"}
_COLUMNS = ("internet", "pod", "credential")  # the fleet summary's names for MUT_STARTS
WORKLOADS_SHOWN = 3
LEGEND_MUT = (
    "MUT: how many more mistakes stand between an attacker and cluster-admin (0: none are needed),"
    " counted from"
)
LEGEND_COLUMNS = (
    "  internet: anyone on the internet · pod: the exploited app of one pod · "
    "credential: one leaked credential"
)
LEGEND_BOUND = (
    "  ≤N: an upper bound: something was not read and was assumed (see the cluster's basis), so "
    "the real MUT may be lower"
)
LEGEND_UNREAD = "  ?: the cluster could not be read (see its error)"


def _mut_style(value: int | None) -> str:
    return "magenta" if value is None else _MUT_STYLE.get(value, "bold green")


def _title(cluster: ClusterReport, *, account: bool) -> str:
    names = (cluster.provider.value, cluster.name, cluster.location)
    return " · ".join(filter(None, (*names, cluster.account if account else "")))


def _fleet_summary(clusters: list[ClusterReport]) -> Group:
    table = Table(
        title="fleet summary, worst first",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    table.add_column("cluster")
    for column in _COLUMNS:
        table.add_column(column, justify="right")
    for cluster in clusters:
        table.add_row(
            _title(cluster, account=False),
            *(
                Text(mut_value(cluster, field), style=_mut_style(getattr(cluster, field)))
                for field, _ in MUT_STARTS
            ),
        )
    legend = [LEGEND_MUT, LEGEND_COLUMNS]
    if any(c.mut is not None and c.mut_upper_bound for c in clusters):
        legend.append(LEGEND_BOUND)
    if any(c.mut is None for c in clusters):
        legend.append(LEGEND_UNREAD)
    return Group(table, *(Text(line, style="dim") for line in legend))


def _cluster_panel(cluster: ClusterReport) -> Panel:
    parts: list = [Text(headline(cluster), style=_mut_style(cluster.mut))]
    parts += [Text(f"error: {e}", style="magenta") for e in cluster.errors]
    path = cheapest(cluster)
    if path is not None:
        start = start_phrase(path.from_)
        parts.append(Text(f"cheapest path (MUT {path.mut}) from {start}:", style="bold"))
        parts += [Text(f"  → {step}") for step in path.steps]
        if cluster.mut_upper_bound:
            parts.append(Text("basis (what the ≤ values rest on):", style="dim"))
            parts += [Text(f"  - {line}", style="dim") for line in cluster.mut_basis]
        grades = " · ".join(f"{a}: {g.value}" for a, g in cluster.maturity)
        parts.append(Text(f"maturity: {grades}", style="dim"))
        if cluster.blast_radius:
            parts.append(Text("most exposed workloads (MUT if its app is exploited):"))
            shown = cluster.blast_radius[:WORKLOADS_SHOWN]
            parts += [Text(f"  MUT {b.mut}  {b.workload}") for b in shown]
            if len(cluster.blast_radius) > len(shown):
                parts.append(Text(f"  and {len(cluster.blast_radius) - len(shown)} more"))
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
        if cluster.platform_grants:
            count = len(cluster.platform_grants)
            parts.append(
                Text(
                    f"not findings: {count} dangerous power(s) held through the platform's own "
                    "bindings, recognised by content (`mutguard explain` lists them with why)",
                    style="dim",
                )
            )
    return Panel(Group(*parts), title=_title(cluster, account=True), title_align="left")


def render(report: Report, color: bool = False, source: str | None = None) -> str:
    """Whether to colour is the caller's decision: without colour nothing turns it on again
    (FORCE_COLOR included), and with it NO_COLOR in the environment still has its say."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, force_terminal=color, no_color=None if color else True, width=120
    )
    clusters = worst_first(report.clusters)
    if clusters:
        console.print(_fleet_summary(clusters))
    for error in report.errors:
        console.print(Text(f"error {error.scope}: {error.message}", style="magenta"))
    for cluster in clusters:
        console.print(_cluster_panel(cluster))
    if not clusters:
        console.print("no cluster could be read" if report.errors else "no clusters found")
    command = next_step(report, source)
    if command:
        line = [Text(f"next: {command}", style="bold")]
        if not source:
            line.append(Text("(with the source this report came from)", style="dim"))
        console.print(*line)
    return buffer.getvalue()


def listing(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> str:
    """A plain table of rows (`mutguard checks`), folded to width."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True).print(table)
    return buffer.getvalue()


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A transient bar on stderr while a live collection runs; yields its update(done, known)."""
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, known: progress.update(task, completed=done, total=known)
