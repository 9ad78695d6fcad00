"""What every human-facing format says first about a cluster, and about the fleet."""

from __future__ import annotations

import math
import shlex
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from mutguard.models import (
    AttackPath,
    ClusterReport,
    Finding,
    Remediation,
    Report,
    Severity,
    Status,
)
from mutguard.providers import live_source

TOP_FIXES = 5
# The three MUT fields, each with the starting point it is measured from.
MUT_STARTS = (
    ("mut", "the internet"),
    ("mut_workload", "a compromised pod"),
    ("mut_credential", "a leaked credential"),
)
# How `mutguard explain` reaches a cluster live, by provider (the report does not say whether
# it came from a live scan, a snapshot or the demo).


def mut_value(cluster: ClusterReport, field: str) -> str:
    """One MUT as shown to people: `≤` marks an upper bound, `?` a cluster that was not read."""
    number = getattr(cluster, field)
    if number is None:
        return "?"
    return f"≤{number}" if field in cluster.mut_upper_bound else str(number)


def headline(cluster: ClusterReport) -> str:
    if cluster.mut is None:
        return "MUT unknown: the cluster could not be read"
    parts = [f"{mut_value(cluster, field)} from {start}" for field, start in MUT_STARTS]
    return "MUT " + " · ".join(parts)


def worst_first(clusters: Iterable[ClusterReport]) -> list[ClusterReport]:
    """Lowest MUT first; ties go to the lower MUT from the internet, then from a pod, then from
    a credential, then by name. Clusters that could not be read have no MUT and come last."""

    def key(cluster: ClusterReport) -> tuple:
        if cluster.mut is None:
            return (1, (), cluster.name)
        values = [getattr(cluster, field) for field, _ in MUT_STARTS]
        ranked = [math.inf if v is None else v for v in values]
        return (0, (min(ranked), *ranked), cluster.name)

    return sorted(clusters, key=key)


def start_phrase(label: str) -> str:
    """A path's starting point in words: `workload:shop/cart` -> `a compromised pod of shop/cart`.
    Which credential leaks is the path's own first step, so it is not repeated here."""
    kind, _, what = label.partition(":")
    if label == "internet":
        return "the internet"
    if kind == "workload":
        return f"a compromised pod of {what}" if what and what != "any" else "a compromised pod"
    if kind == "credential":
        return "a leaked credential"
    return label


def cheapest(cluster: ClusterReport) -> AttackPath | None:
    return min(cluster.paths, key=lambda p: p.mut) if cluster.paths else None


def cheapest_path(cluster: ClusterReport) -> str:
    """The lowest-MUT path in one line."""
    path = cheapest(cluster)
    if path is None:
        return ""
    return f"{path.from_} → " + " → ".join(path.steps)


def next_step(report: Report, source: str | None = None) -> str | None:
    """The command that explains the worst cluster that was read, step by step; `source` names
    where the report came from, else each way `mutguard explain` can reach the cluster."""
    readable = [c for c in worst_first(report.clusters) if c.mut is not None]
    if not readable:
        return None
    worst = readable[0]
    name = shlex.quote(worst.name)
    if source:
        return f"mutguard explain {name} {source}"
    ways = ["--demo", "--snapshot DIR", live_source(worst.provider, name)]
    return f"mutguard explain {name} " + "|".join(way for way in ways if way)


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


class RemediationField(NamedTuple):
    """One field of a remediation after its summary, as every format labels it."""

    label: str
    lines: list[str]  # a CLI's commands, one per line; one line for the others
    commands: bool  # lines to set as code


def remediation_fields(remediation: Remediation) -> list[RemediationField]:
    """The fields set after the summary: CLI, Terraform, Console."""
    fields = [
        ("CLI", remediation.cli, True),
        ("Terraform", remediation.terraform, False),
        ("Console", remediation.console, False),
    ]
    return [
        RemediationField(label, text.splitlines(), code) for label, text, code in fields if text
    ]


def remediation_text(remediation: Remediation, code_spans: bool = False) -> str:
    """The remediation as text: the summary, then a labelled line per field set, a CLI's further
    commands aligned under its first. With `code_spans`, each command is a `code` span, for the
    formats that set those as code."""
    lines = [remediation.summary]
    for field in remediation_fields(remediation):
        values = [f"`{line}`" if field.commands and code_spans else line for line in field.lines]
        indent = " " * (len(field.label) + 2)
        lines.append(f"{field.label}: " + f"\n{indent}".join(values))
    return "\n".join(lines)
