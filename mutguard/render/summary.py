"""What every human-facing format says first about a cluster."""

from __future__ import annotations

from collections import Counter

from mutguard.models import ClusterReport, Finding, Severity, Status

TOP_FIXES = 5


def headline(cluster: ClusterReport) -> str:
    if cluster.mut is None:
        return "MUT unknown: the cluster could not be read"
    bound = set(cluster.mut_upper_bound)

    def value(field: str, number: int | None) -> str:
        return f"≤{number}" if field in bound else str(number)

    return (
        f"MUT {value('mut', cluster.mut)} from the internet · "
        f"{value('mut_workload', cluster.mut_workload)} from a compromised pod · "
        f"{value('mut_credential', cluster.mut_credential)} from a leaked credential"
    )


def cheapest_path(cluster: ClusterReport) -> str:
    """The lowest-MUT path in one line."""
    if not cluster.paths:
        return ""
    path = min(cluster.paths, key=lambda p: p.mut)
    return f"{path.from_} → " + " → ".join(path.steps)


def top_fixes(cluster: ClusterReport, limit: int = TOP_FIXES) -> list[Finding]:
    """FAIL findings that raise MUT, biggest gain first (findings are already in that order)."""
    return [f for f in cluster.findings if f.status is Status.FAIL and f.mut_gain][:limit]


def severity_counts(cluster: ClusterReport) -> str:
    counts = Counter(f.severity for f in cluster.findings if f.status is Status.FAIL)
    parts = [f"{counts[s]} {s.value}" for s in Severity if counts[s]]
    return ", ".join(parts) if parts else "no failed checks"


def status_counts(cluster: ClusterReport) -> str:
    counts = Counter(f.status for f in cluster.findings)
    return " · ".join(f"{counts[s]} {s.value}" for s in Status if counts[s])
