"""`mutguard explain CLUSTER`: every path that sets a MUT, and why each step costs what it costs."""

from __future__ import annotations

import re

from mutguard.models import ClusterReport
from mutguard.render.summary import headline, top_fixes

_STEP = re.compile(r"^(?P<stage>[\w -]+) \((?P<cost>[01])\): (?P<why>.*)$")
_COST = {
    "0": "costs 0: nothing stops this step",
    "1": "costs 1: one more mistake is needed to pass",
}
_FROM = {
    "internet": "From the internet",
    "workload": "From a compromised workload",
    "credential": "From a leaked credential",
}
WORKLOADS_SHOWN = 5


def _steps(steps: list[str]) -> list[str]:
    lines = []
    for number, step in enumerate(steps, 1):
        match = _STEP.match(step)
        if match is None:
            lines.append(f"  {number}. {step}")
            continue
        lines.append(f"  {number}. {match['stage']}: {match['why']}")
        lines.append(f"     {_COST[match['cost']]}")
    return lines


def explain(cluster: ClusterReport) -> str:
    # A kubeconfig cluster has no account: leave out what is empty.
    where = filter(None, (cluster.provider.value, cluster.location, cluster.account))
    lines = [
        f"{cluster.name} ({', '.join(where)})",
        headline(cluster),
        "",
    ]
    lines += [f"error: {e}" for e in cluster.errors]
    for path in cluster.paths:
        kind = path.from_.split(":", 1)[0]
        where = _FROM.get(kind, path.from_) + ("" if path.from_ == kind else f" ({path.from_})")
        lines.append(f"{where}: MUT {path.mut}")
        lines += _steps(path.steps)
        lines.append("")
    fixes = top_fixes(cluster)
    if fixes:
        lines.append("What fixing one finding changes:")
        lines += [
            f"  +{f.mut_gain} ({', '.join(f.mut_gain_from)}) {f.check_id}: {f.detail}"
            for f in fixes
        ]
        lines.append("")
    if cluster.mut_basis:
        lines.append("Basis:")
        lines += [f"  - {line}" for line in cluster.mut_basis]
        lines.append("")
    if cluster.blast_radius:
        lines.append("Most exposed workloads:")
        lines += [f"  MUT {b.mut}: {b.workload}" for b in cluster.blast_radius[:WORKLOADS_SHOWN]]
        lines.append("")
    if cluster.platform_grants:
        lines.append("The platform's own grants (not findings), and why each is the platform's:")
        lines += [
            f"  {g.binding} lets {g.subject} {g.power}: {g.why}" for g in cluster.platform_grants
        ]
    return "\n".join(lines).rstrip() + "\n"
