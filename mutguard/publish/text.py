"""The words every human-facing sink uses (Slack, Teams, e-mail), laid out by each in its own way.

Built on render/summary.py (headline, cheapest_path, top_fixes, severity_counts) so a chat
message says what the terminal report says first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mutguard.models import ClusterReport, Finding, Report, Severity
from mutguard.render.summary import (
    cheapest_path,
    headline,
    remediation_text,
    severity_counts,
    top_fixes,
)
from mutguard.state import MUT_FIELDS, ClusterChange, Mut, ResolvedFinding, SeverityRise

ELLIPSIS = "…"
MUT_LABELS = {
    "mut": "from the internet",
    "mut_workload": "from a compromised pod",
    "mut_credential": "from a leaked credential",
}


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def limited(lines: Sequence[str], most: int) -> list[str]:
    """At most `most` lines; the rest summarised in one line."""
    if len(lines) <= most:
        return list(lines)
    return [*lines[:most], f"{ELLIPSIS}and {len(lines) - most} more (see the full report)"]


def cluster_title(cluster: ClusterReport) -> str:
    """Name, provider, location and the lowest MUT, which alerts lead with (docs/architecture.md,
    Scheduled runs)."""
    lowest = Mut.of(cluster).lowest()
    mut = f": lowest MUT {lowest}" if lowest is not None else ": MUT unknown"
    return f"{cluster.name} ({cluster.provider.value}, {cluster.location}){mut}"


def mut_change(change: ClusterChange) -> str:
    if change.became_unreadable:
        return "could not be read this run: no finding can be confirmed or cleared"
    if change.before is None:
        return "first report of this cluster"
    moves = [
        f"{before} → {after} {MUT_LABELS[name]}"
        for name in MUT_FIELDS
        if (before := change.before.value(name)) != (after := change.after.value(name))
    ]
    return "MUT since the last run: " + "; ".join(moves) if moves else "MUT unchanged"


def _where(finding: Finding, cluster: ClusterReport) -> str:
    """The resource, unless it is the cluster itself (the message is about it already)."""
    return "" if finding.resource in (cluster.arn_or_id, cluster.name) else f" ({finding.resource})"


def finding_line(finding: Finding, cluster: ClusterReport) -> str:
    where = _where(finding, cluster)
    return f"[{finding.severity.value}] {finding.check_id}: {finding.detail}{where}"


def fix_line(finding: Finding, cluster: ClusterReport) -> str:
    return f"+{finding.mut_gain} MUT · {finding_line(finding, cluster)}"


def remedy_line(finding: Finding, cluster: ClusterReport) -> str:
    """A top fix told by what to do: the check's remediation for the cluster's provider (its
    summary, then its CLI, Terraform and Console lines, the commands in `backticks`) rather
    than what was found."""
    where = _where(finding, cluster)
    return (
        f"+{finding.mut_gain} MUT · [{finding.severity.value}] {finding.check_id}{where}: "
        f"{remediation_text(finding.remediation, code_spans=True)}"
    )


def rise_line(rise: SeverityRise, cluster: ClusterReport) -> str:
    f = rise.finding
    severities = f"{rise.before.value} → {f.severity.value}"
    return f"[{severities}] {f.check_id}: {f.detail}{_where(f, cluster)}"


def resolved_line(resolved: ResolvedFinding) -> str:
    now = f"now {resolved.now.value}" if resolved.now else "no longer found"
    return f"[{resolved.severity.value}] {resolved.check_id} on {resolved.resource} ({now})"


@dataclass(frozen=True)
class ClusterSummary:
    title: str
    headline: str
    change: str
    path: str
    fixes: list[str]
    remedies: list[str]  # the same fixes, each as its remediation (remedy_line)
    new: list[str]
    worsened: list[str]
    resolved: list[str]
    counts: str
    errors: list[str]


def summarise(change: ClusterChange) -> ClusterSummary:
    cluster = change.cluster
    fixes = top_fixes(cluster)
    return ClusterSummary(
        title=cluster_title(cluster),
        headline=headline(cluster),
        change=mut_change(change),
        path=cheapest_path(cluster),
        fixes=[fix_line(f, cluster) for f in fixes],
        remedies=[remedy_line(f, cluster) for f in fixes],
        new=[finding_line(f, cluster) for f in change.new],
        worsened=[rise_line(r, cluster) for r in change.severity_rose],
        resolved=[resolved_line(r) for r in change.resolved],
        counts=severity_counts(cluster),
        errors=list(cluster.errors),
    )


def worst_first(items: Sequence[ClusterChange]) -> list[ClusterChange]:
    """Lowest MUT (of any start) first, then by name; clusters with no MUT known come last."""

    def key(item: ClusterChange) -> tuple[bool, int, str]:
        lowest = item.after.lowest()
        return (lowest is None, lowest or 0, item.cluster.name)

    return sorted(items, key=key)


def lowest_mut(items: Sequence[ClusterChange]) -> tuple[int, str] | None:
    """The lowest MUT of any starting point across the clusters, and the cluster it is in."""
    known = [(low, c.cluster.name) for c in items if (low := c.after.lowest()) is not None]
    return min(known) if known else None


def new_criticals(items: Sequence[ClusterChange]) -> int:
    return sum(f.severity is Severity.CRITICAL for c in items for f in c.new)


SCAN_ERRORS_TITLE = "Not scanned"


def scan_errors(report: Report) -> list[str]:
    """Accounts, projects, subscriptions or regions the run could not read: their clusters are
    missing from every list, so human-facing messages say so."""
    return [f"{error.scope}: {error.message}" for error in report.errors]


def subject(items: Sequence[ClusterChange], digest: bool, unscanned: int = 0) -> str:
    """E.g. "mutguard: 2 clusters, worst MUT 0 (payments-legacy), 1 new critical"."""
    count = len(items)
    parts = [f"{count} cluster{'s' if count != 1 else ''}"]
    if (worst := lowest_mut(items)) is not None:
        parts.append(f"worst MUT {worst[0]} ({worst[1]})")
    criticals = new_criticals(items)
    parts.append(f"{criticals} new critical" if criticals else "no new criticals")
    if unscanned:
        parts.append(f"{unscanned} not scanned")
    return ("mutguard digest: " if digest else "mutguard: ") + ", ".join(parts)
