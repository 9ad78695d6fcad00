"""A Markdown report for pull requests, wikis and tickets."""

from __future__ import annotations

from mutguard.models import Report, Status
from mutguard.render.summary import cheapest_path, headline, severity_counts, top_fixes


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Report, color: bool = False) -> str:
    lines = [f"# mutguard report ({report.generated_at:%Y-%m-%d %H:%M} UTC)", ""]
    for error in report.errors:
        lines.append(f"> **Error** `{error.scope}`: {_cell(error.message)}")
    for cluster in report.clusters:
        lines += [
            f"## {cluster.provider.value} `{cluster.name}` "
            f"({', '.join(filter(None, (cluster.location, cluster.account)))})",
            "",
            f"**{headline(cluster)}**",
            "",
        ]
        lines += [f"- Error: {_cell(e)}" for e in cluster.errors]
        if cluster.mut is None:
            lines.append("")
            continue
        lines += [f"Cheapest path: {_cell(cheapest_path(cluster))}", ""]
        if cluster.mut_basis:
            lines += ["Basis:", *[f"- {_cell(b)}" for b in cluster.mut_basis], ""]
        if cluster.blast_radius:
            exposed = cluster.blast_radius[0]
            lines += [f"Most exposed workload: `{exposed.workload}` (MUT {exposed.mut})", ""]
        grades = cluster.maturity.model_dump()
        lines += [" · ".join(f"{area}: **{grade}**" for area, grade in grades.items()), ""]
        fixes = top_fixes(cluster)
        if fixes:
            lines += [
                "| MUT gain | severity | check | resource | what to fix |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| +{f.mut_gain} | {f.severity.value} | `{f.check_id}` | {_cell(f.resource)} "
                f"| {_cell(f.detail)} |"
                for f in fixes
            ]
            lines.append("")
        lines += [f"Failed checks: {severity_counts(cluster)}", ""]
        lines += ["| status | severity | check | resource | detail |", "|---|---|---|---|---|"]
        lines += [
            f"| {f.status.value} | {f.severity.value} | `{f.check_id}` | {_cell(f.resource)} "
            f"| {_cell(f.detail)} |"
            for f in cluster.findings
            if f.status is not Status.PASS
        ]
        lines.append("")
    return "\n".join(lines) + "\n"
