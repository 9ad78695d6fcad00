"""One self-contained HTML page: the fleet worst first, then per cluster the attack paths drawn as
SVG, the fixes that raise MUT, the other findings by area, the platform's own grants and the
maturity grades.

Given the clusters' MUT history (mutguard.state.MutPoint, by cluster key, as a state store
keeps it), the fleet table gets a trend column (↑ better, ↓ worse, = unchanged since the
previous run) and each cluster a sparkline of its MUT from each start over the last runs; this
run's point is added to the history unless the history holds it already.

The page fetches nothing: its only style is inline, allowed by hash in its own
Content-Security-Policy, and it runs no script (the interaction is SVG <title> tooltips, links to
#anchors highlighted with :target, and :hover). Every name and detail comes from the cluster
(names of clusters, bindings, subjects) and is escaped wherever it lands, SVG included.
"""

from __future__ import annotations

import base64
import hashlib
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape

from mutguard.models import (
    GRADED_AREAS,
    Area,
    AttackPath,
    ClusterReport,
    Finding,
    Grade,
    Remediation,
    Report,
    Status,
    cluster_key,
)
from mutguard.render.summary import (
    MUT_STARTS,
    cheapest,
    headline,
    mut_value,
    remediation_fields,
    remediation_text,
    severity_counts,
    start_phrase,
    status_counts,
    top_fixes,
    worst_first,
)
from mutguard.state import MUT_FIELDS, Mut, MutPoint, add_point

_STEP = re.compile(r"^(?P<stage>[\w -]+) \((?P<cost>[01])\): (?P<why>.*)$", re.DOTALL)
# Which areas' findings open an edge of each stage: a finding is tied to a step of a path by its
# text first, by its resource next, and by this last.
_STAGE_AREAS = {
    "network": {Area.NETWORK},
    "authentication": {Area.AUTHENTICATION},
    "authorization": {Area.PRIVILEGED_ACCESS},
    "credential": {Area.WORKLOADS},
    "escape": {Area.WORKLOADS},
    "scheduling": {Area.WORKLOADS},
    "start": {Area.AUTHENTICATION, Area.PRIVILEGED_ACCESS},
}
_COST_MEANING = {
    "0": "nothing stops this step",
    "1": "a barrier that holds: one more mistake is needed",
}
_COLUMNS = ("the internet", "a compromised pod", "a leaked credential")
_GRADE_SCALE = (Grade.CRAWL, Grade.WALK, Grade.RUN)
WORKLOADS_SHOWN = 5

# SVG geometry, in px of the viewBox.
_BOX_W, _BOX_H, _GAP = 184, 78, 30
_LANE_H, _LANE_LABEL = 118, 22
_FACT_CHARS, _FACT_LINES = 27, 3
# The sparkline: px between runs, its height, the margin inside it, and each start's line drawn
# a little apart from the others so that equal values stay visible.
_SPARK_STEP, _SPARK_H, _SPARK_PAD = 20, 64, 8
_SPARK_SHIFT = {"mut": -2, "mut_workload": 0, "mut_credential": 2}
_TREND = {
    "better": ("↑", "better"),
    "worse": ("↓", "worse"),
    "same": ("=", "unchanged"),
}

_CSS = """
:root { color-scheme: light; --ink: #1f2328; --dim: #59636e; --line: #d1d9e0;
  --bad: #c62828; --warn: #b26a00; --good: #2e7d32; --bg-bad: #fdecea; --bg-warn: #fff4e0;
  --bg-good: #e8f5e9; --mark: #fff3bf; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 24px; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0 0 4px; overflow-wrap: anywhere; }
h3 { font-size: 16px; margin: 22px 0 8px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
h4 { font-size: 14px; margin: 14px 0 6px; text-transform: capitalize; }
p { margin: 6px 0; }
a { color: #0b57d0; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #f3f4f6; padding: 0 3px; border-radius: 3px; overflow-wrap: anywhere; }
.meta, .legend, .dim { color: var(--dim); }
.legend { font-size: 13px; margin: 8px 0 0; padding-left: 18px; }
p.legend { padding-left: 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
table.maturity { width: auto; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px;
  border-bottom: 1px solid var(--line); overflow-wrap: break-word; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--dim); }
td.num, th.num { text-align: right; white-space: nowrap; }
tr:target, li:target { background: var(--mark); outline: 2px solid var(--warn); }
.mut { font-weight: 700; white-space: nowrap; }
.mut-0 { color: #fff; background: var(--bad); border-radius: 4px; padding: 0 6px; }
.mut-1 { color: var(--bad); }
.mut-2 { color: var(--warn); }
.mut-3 { color: var(--good); }
.mut-unknown { color: #8e24aa; }
.bound { border-bottom: 1px dotted currentColor; cursor: help; }
.error { color: #8e24aa; }
.cluster { border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px;
  margin: 28px 0; }
.headline { font-size: 16px; font-weight: 600; }
.status-FAIL { color: var(--bad); font-weight: 600; }
.status-ERROR { color: #8e24aa; font-weight: 600; }
.status-UNKNOWN { color: var(--warn); font-weight: 600; }
.sev { white-space: nowrap; font-size: 11px; font-weight: 600; border-radius: 3px;
  padding: 0 5px; border: 1px solid currentColor; }
.sev-critical { color: var(--bad); }
.sev-high { color: #d84315; }
.sev-medium { color: var(--warn); }
.sev-low, .sev-info { color: var(--dim); }
.gain { font-weight: 700; font-size: 15px; }
table.findings { table-layout: fixed; }
table.findings th.first { width: 112px; }
table.findings th.check { width: 26%; }
table.findings th.detail { width: 28%; }
table.fleet th.group { text-align: center; border-bottom: 0; padding-bottom: 0; }
table.fleet td:nth-child(n+5) { white-space: nowrap; }
.paths { overflow-x: auto; }
.paths svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  fill: var(--ink); }
svg .lane-label { font-size: 13px; font-weight: 600; }
svg .lane .edge { stroke: #9aa4ae; stroke-width: 1.5; }
svg .lane rect { fill: #fff; stroke: #9aa4ae; stroke-width: 1.2; }
svg .lane .origin rect { fill: #eef2f6; }
svg .lane .admin rect { fill: var(--bg-bad); stroke: var(--bad); }
svg .lane .stage { font-size: 12px; font-weight: 700; }
svg .lane .fact { font-size: 10.5px; }
svg .cost circle { stroke: none; }
svg .cost-0 circle { fill: var(--bad); }
svg .cost-1 circle { fill: var(--good); }
svg .cost text { fill: #fff; font-size: 12px; font-weight: 700; }
svg .lane.cheapest .lane-label { fill: var(--bad); }
svg .lane.cheapest rect { stroke: var(--bad); stroke-width: 2.5; }
svg .lane.cheapest .edge { stroke: var(--bad); stroke-width: 3; }
svg .lane.other { opacity: .78; }
svg a:hover rect, svg a:focus rect { stroke: #0b57d0; stroke-width: 3; }
svg a:hover .stage, svg a:focus .stage { text-decoration: underline; }
.steps { margin: 2px 0 10px; padding-left: 22px; }
.steps li { margin: 2px 0; }
.cost-badge { display: inline-block; min-width: 18px; text-align: center; color: #fff;
  border-radius: 9px; font-weight: 700; font-size: 12px; margin-right: 4px; }
.cost-badge.cost-0 { background: var(--bad); }
.cost-badge.cost-1 { background: var(--good); }
.grade { display: inline-block; width: 54px; text-align: center; border: 1px solid var(--line);
  border-radius: 3px; margin-right: 2px; font-size: 12px; color: var(--dim); }
.grade.reached { background: var(--bg-good); color: var(--good); border-color: var(--good);
  font-weight: 600; }
.grade-word { font-weight: 600; margin-left: 6px; }
details > summary { cursor: pointer; color: var(--dim); }
.trend { font-weight: 700; font-size: 16px; cursor: help; }
.trend-better { color: var(--good); }
.trend-worse { color: var(--bad); }
.trend-same { color: var(--dim); }
.history { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 16px;
  margin: 8px 0; }
.history svg { display: block; flex: none; }
svg.sparkline .axis { stroke: var(--line); stroke-width: 1; }
svg.sparkline .tick { font-size: 10px; fill: var(--dim); }
svg.sparkline polyline { fill: none; stroke-width: 2; stroke-linejoin: round; }
svg.sparkline circle { stroke-width: 1.5; }
svg.sparkline circle.bound { fill: #fff; }
.series-mut { stroke: #0b57d0; fill: #0b57d0; color: #0b57d0; }
.series-mut_workload { stroke: #b26a00; fill: #b26a00; color: #b26a00; }
.series-mut_credential { stroke: #8e24aa; fill: #8e24aa; color: #8e24aa; }
.history .key { font-weight: 700; }
table.history-runs { width: auto; }
@media print {
  .screen { display: none; }
  body { max-width: none; padding: 0; font-size: 11px; }
  .cluster { break-before: page; border: 0; padding: 0; margin: 0; }
  .paths { overflow: visible; }
  tr, li, svg { break-inside: avoid; }
  h3, h4 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
  * { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _prose(text: str) -> str:
    """Escaped text with its `code` spans set as code (remediations quote commands that way)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _remediation(remediation: Remediation) -> str:
    """The summary, then a line per field set, labelled, its commands set as code."""
    parts = [_prose(remediation.summary)]
    for field in remediation_fields(remediation):
        lines = [f"<code>{_e(line)}</code>" if field.commands else _e(line) for line in field.lines]
        parts.append(f'<span class="dim">{_e(field.label)}:</span> ' + "<br>".join(lines))
    return "<br>".join(parts)


def _csp(style: str) -> str:
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    return (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'none'; "
        "base-uri 'none'; form-action 'none'"
    )


def _mut_class(value: int | None) -> str:
    return "mut-unknown" if value is None else f"mut-{min(value, 3)}"


def _mut(cluster: ClusterReport, field: str, number: int) -> str:
    shown = _e(mut_value(cluster, field))
    value = getattr(cluster, field)
    if field in cluster.mut_upper_bound:
        shown = (
            f'<a class="bound" href="#c{number}-basis" title="an upper bound: something was '
            f'not read and was assumed (see the basis), so the real MUT may be lower">{shown}</a>'
        )
    return f'<span class="mut {_mut_class(value)}">{shown}</span>'


def _fleet(clusters: list[ClusterReport], runs: Mapping[str, tuple[MutPoint, ...]] | None) -> str:
    rows = []
    for number, cluster in enumerate(clusters, 1):
        cells = "".join(f'<td class="num">{_mut(cluster, f, number)}</td>' for f, _ in MUT_STARTS)
        if runs is not None:
            cells += f"<td>{_trend(cluster, runs.get(cluster_key(cluster), ()))}</td>"
        rows.append(
            f'<tr><td><a href="#c{number}">{_e(cluster.name)}</a></td>{cells}'
            f"<td>{_e(cluster.provider.value)}</td><td>{_e(cluster.account)}</td>"
            f"<td>{_e(cluster.location)}</td></tr>"
        )
    head = "".join(f'<th class="num">{_e(c)}</th>' for c in _COLUMNS)
    trend_head = '<th rowspan="2">trend</th>' if runs is not None else ""
    legend = [
        "MUT: how many more mistakes stand between an attacker and cluster-admin (0: none are "
        "needed), counted from anyone on the internet, the exploited app of one pod, or one "
        "leaked credential."
    ]
    if any(c.mut is not None and c.mut_upper_bound for c in clusters):
        legend.append(
            "≤N: an upper bound: something was not read and was assumed (each cluster's basis "
            "says what), so the real MUT may be lower."
        )
    if any(c.mut is None for c in clusters):
        legend.append("?: the cluster could not be read (see its error).")
    if runs is not None:
        legend.append(
            "trend: since the previous run, ↑ better (a MUT rose, none dropped), ↓ worse (a MUT "
            "dropped), = unchanged; empty when no earlier run is known."
        )
    return (
        '<section id="fleet"><h3>Fleet, worst first</h3>'
        '<table class="fleet"><thead><tr><th rowspan="2">cluster</th>'
        f'<th class="group" colspan="3">MUT from</th>{trend_head}<th rowspan="2">provider</th>'
        '<th rowspan="2">account</th><th rowspan="2">location</th></tr>'
        f"<tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<ul class="legend">{"".join(f"<li>{_e(line)}</li>" for line in legend)}</ul></section>'
    )


def _runs(
    report: Report, history: Mapping[str, Sequence[MutPoint]]
) -> dict[str, tuple[MutPoint, ...]]:
    """Per cluster key, the recorded runs with this report's point added (a cluster that could
    not be read adds none), oldest first, the last HISTORY_LENGTH at most."""
    runs = {}
    for cluster in report.clusters:
        key = cluster_key(cluster)
        points = tuple(history.get(key, ()))
        if cluster.mut is not None:
            points = add_point(points, MutPoint.of(cluster, report.generated_at))
        runs[key] = points
    return runs


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _direction(before: Mut, now: Mut) -> str:
    if before.dropped_in(now):
        return "worse"
    return "better" if now.dropped_in(before) else "same"


def _trend(cluster: ClusterReport, points: tuple[MutPoint, ...]) -> str:
    """↑, ↓ or = against the run before this one; nothing without one (or without a MUT)."""
    if cluster.mut is None or len(points) < 2:
        return ""
    before, now = points[-2], points[-1]
    direction = _direction(before.mut, now.mut)
    arrow, word = _TREND[direction]
    moves = [
        f"{before.mut.value(field)} → {now.mut.value(field)} from {start}"
        for field, start in MUT_STARTS
        if before.mut.value(field) != now.mut.value(field)
    ]
    title = f"{word} since the previous run ({_when(before.generated_at)})"
    if moves:
        title += ": " + "; ".join(moves)
    return f'<span class="trend trend-{direction}" title="{_e(title)}">{arrow}</span>'


def _spark_y(value: int, top: int) -> float:
    return _SPARK_PAD + (top - value) * (_SPARK_H - 2 * _SPARK_PAD) / top


def _series(field: str, start: str, points: tuple[MutPoint, ...], top: int) -> str:
    """One start's line: a polyline per run of known values, a dot per run with its tooltip."""
    lines: list[list[str]] = [[]]
    dots = []
    for index, point in enumerate(points):
        value = point.mut.value(field)
        if value is None:
            lines.append([])
            continue
        x = _SPARK_PAD + index * _SPARK_STEP
        y = _spark_y(value, top) + _SPARK_SHIFT[field]
        lines[-1].append(f"{x},{y:g}")
        bound = field in point.upper_bound
        shown = f"≤{value}" if bound else str(value)
        css = ' class="bound"' if bound else ""
        dots.append(
            f'<circle{css} cx="{x}" cy="{y:g}" r="2.5"><title>'
            f"{_e(_when(point.generated_at))}: MUT {_e(shown)} from {_e(start)}</title></circle>"
        )
    polylines = "".join(f'<polyline points="{" ".join(line)}"/>' for line in lines if len(line) > 1)
    return f'<g class="series series-{field}">{polylines}{"".join(dots)}</g>'


def _sparkline(cluster: ClusterReport, points: tuple[MutPoint, ...]) -> str:
    values = [v for p in points for f in MUT_FIELDS if (v := p.mut.value(f)) is not None]
    top = max([3, *values])
    width = 2 * _SPARK_PAD + (len(points) - 1) * _SPARK_STEP + 14
    axis = "".join(
        f'<line class="axis" x1="0" y1="{_spark_y(v, top):g}" x2="{width - 14}" '
        f'y2="{_spark_y(v, top):g}"/><text class="tick" x="{width - 10}" '
        f'y="{_spark_y(v, top) + 3:g}">{v}</text>'
        for v in (0, top)
    )
    series = "".join(_series(field, start, points, top) for field, start in MUT_STARTS)
    title = (
        f"MUT of {cluster.name} over its last {len(points)} runs, "
        f"{_when(points[0].generated_at)} to {_when(points[-1].generated_at)}"
    )
    return (
        f'<svg class="sparkline" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{_SPARK_H}" viewBox="0 0 {width} {_SPARK_H}"><title>{_e(title)}</title>'
        f"{axis}{series}</svg>"
    )


def _history(cluster: ClusterReport, points: tuple[MutPoint, ...]) -> str:
    """The sparkline, its key, and the runs as a table (for print and screen readers)."""
    if len(points) < 2:
        return ""
    keys = " ".join(
        f'<span class="series-{field}"><span class="key">—</span> from {_e(start)}</span>'
        for field, start in MUT_STARTS
    )
    rows = "".join(
        f"<tr><td>{_e(_when(point.generated_at))}</td>"
        + "".join(f'<td class="num">{_e(_point_value(point, field))}</td>' for field in MUT_FIELDS)
        + "</tr>"
        for point in reversed(points)
    )
    head = "".join(f'<th class="num">{_e(c)}</th>' for c in _COLUMNS)
    return (
        f'<div class="history">{_sparkline(cluster, points)}'
        f'<p class="legend">MUT over the last {len(points)} runs, oldest left: {keys}; a hollow '
        "dot is an upper bound.</p></div>"
        f"<details><summary>MUT of the last {len(points)} runs</summary>"
        f'<table class="history-runs"><thead><tr><th>run</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></details>"
    )


def _point_value(point: MutPoint, field: str) -> str:
    value = point.mut.value(field)
    if value is None:
        return "?"
    return f"≤{value}" if field in point.upper_bound else str(value)


def _parse_step(step: str) -> tuple[str, str, str]:
    """(stage, cost, why); a step in another shape is shown whole, with no cost."""
    match = _STEP.match(step)
    if match is None:
        return "", "", step
    return match["stage"], match["cost"], match["why"]


def _step_findings(
    cluster: ClusterReport, path: AttackPath, steps: list[tuple[str, str, str]]
) -> dict[int, list[int]]:
    """Per step, the indices of the findings that open it.

    The report does not record which finding added which edge, so only findings whose fix raises
    this path's MUT are candidates (each is on this very route), and each goes to the step that
    fits it best: its detail matching the step's fact, its resource named in it, or its area
    being the step's stage. A candidate that fits no step is left out of the picture.
    """
    kind = path.from_.partition(":")[0]
    placed: dict[int, list[int]] = {}
    for index, finding in enumerate(cluster.findings):
        if finding.status is not Status.FAIL or not finding.mut_gain:
            continue
        if kind not in finding.mut_gain_from:
            continue
        scores = [_fit(cluster, finding, kind, step) for step in steps]
        best = max(scores, default=0)
        if best:
            placed.setdefault(scores.index(best), []).append(index)
    return placed


def _fit(cluster: ClusterReport, finding: Finding, kind: str, step: tuple[str, str, str]) -> int:
    stage, cost, why = step
    if (
        finding.detail
        and why
        and (why.startswith(finding.detail) or finding.detail.startswith(why))
    ):
        return 3
    if finding.resource and finding.resource != cluster.arn_or_id and finding.resource in why:
        return 2
    # A start costs 1 (the leak itself); the finding behind it is the admin credential leaked.
    opens = cost == "0" or (stage == "start" and kind == "credential")
    return 1 if opens and finding.area in _STAGE_AREAS.get(stage, ()) else 0


def _fact_lines(why: str) -> list[str]:
    lines = textwrap.wrap(why, _FACT_CHARS) or [""]
    if len(lines) > _FACT_LINES:
        lines = lines[:_FACT_LINES]
        lines[-1] = lines[-1][: _FACT_CHARS - 1].rstrip() + "…"
    return lines


def _box(
    x: float, y: float, css: str, title: str, href: str, heading: str, lines: Iterable[str]
) -> str:
    texts = "".join(
        f'<text class="fact" x="{x + 10}" y="{y + 38 + 13 * n}">{_e(line)}</text>'
        for n, line in enumerate(lines)
    )
    return (
        f'<a href="{_e(href)}" class="{css}"><title>{_e(title)}</title>'
        f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="8"/>'
        f'<text class="stage" x="{x + 10}" y="{y + 20}">{_e(heading)}</text>{texts}</a>'
    )


def _cost_badge(x: float, y: float, cost: str) -> str:
    cx, cy = x + _BOX_W - 16, y + 16
    return (
        f'<g class="cost cost-{cost}"><circle cx="{cx}" cy="{cy}" r="10"/>'
        f'<text x="{cx}" y="{cy + 4}" text-anchor="middle">{cost}</text></g>'
    )


def _finding_note(finding: Finding) -> str:
    return (
        f"\nopened by {finding.check_id} ({finding.severity.value}): {finding.detail}"
        f"\nfix (MUT +{finding.mut_gain}): {remediation_text(finding.remediation)}"
    )


def _step_item(
    cluster: ClusterReport,
    number: int,
    anchor: str,
    step: tuple[str, str, str],
    indices: list[int],
) -> str:
    stage, cost, why = step
    links = ", ".join(
        f'<a href="#c{number}-f{i}">{_e(cluster.findings[i].check_id)}</a>' for i in indices
    )
    opened = f" Opened by {links}." if links else ""
    if not cost:
        return f'<li id="{anchor}">{_e(why)}{opened}</li>'
    return (
        f'<li id="{anchor}"><span class="cost-badge cost-{cost}">{cost}</span>'
        f"<strong>{_e(stage)}</strong>: {_e(why)} "
        f'<span class="dim">({_COST_MEANING[cost]}).{opened}</span></li>'
    )


def _lane(
    cluster: ClusterReport, number: int, lane: int, path: AttackPath, is_cheapest: bool
) -> tuple[str, str, int]:
    """One path as an SVG lane and as an ordered list; returns both and the lane's node count."""
    steps = [_parse_step(s) for s in path.steps]
    opened_by = _step_findings(cluster, path, steps)
    y = lane * _LANE_H + _LANE_LABEL + 8
    label = f"From {start_phrase(path.from_)}: MUT {path.mut}"
    if is_cheapest:
        label += " (cheapest)"
    arrow = f"c{number}-arrow-{'cheapest' if is_cheapest else 'other'}"
    svg = [
        f'<g class="lane {"cheapest" if is_cheapest else "other"}">',
        f'<text class="lane-label" x="2" y="{lane * _LANE_H + _LANE_LABEL}">{_e(label)}</text>',
    ]
    svg.append(
        _box(
            0,
            y,
            "origin",
            label,
            f"#c{number}-p{lane}",
            "start",
            _fact_lines(start_phrase(path.from_)),
        )
    )
    boxes, items = _step_boxes(cluster, number, lane, y, steps, opened_by)
    svg += boxes
    nodes = len(steps) + 2
    admin_x = (nodes - 1) * (_BOX_W + _GAP)
    svg.append(
        _box(
            admin_x,
            y,
            "admin",
            "cluster-admin: every secret, privileged pods on any node",
            f"#c{number}-p{lane}",
            "cluster-admin",
            ["admin-equivalent power"],
        )
    )
    svg += _arrows(nodes, y, arrow)
    svg.append("</g>")
    listing = (
        f'<p id="c{number}-p{lane}"><strong>{_e(label)}</strong></p>'
        f'<ol class="steps">{"".join(items)}</ol>'
    )
    return "".join(svg), listing, nodes


def _step_boxes(
    cluster: ClusterReport,
    number: int,
    lane: int,
    y: float,
    steps: list[tuple[str, str, str]],
    opened_by: dict[int, list[int]],
) -> tuple[list[str], list[str]]:
    """Each step's box (its fact, cost badge and the findings that open it, linked) and its
    item in the ordered list."""
    svg, items = [], []
    for step_number, (stage, cost, why) in enumerate(steps, 1):
        x = step_number * (_BOX_W + _GAP)
        anchor = f"c{number}-p{lane}-s{step_number}"
        indices = opened_by.get(step_number - 1, [])
        title = f"{stage or 'step'}, cost {cost or '?'}: {why}"
        title += "".join(_finding_note(cluster.findings[i]) for i in indices)
        if cost:
            title += f"\ncost {cost}: {_COST_MEANING[cost]}"
        href = f"#c{number}-f{indices[0]}" if indices else f"#{anchor}"
        svg.append(_box(x, y, "step", title, href, stage or "step", _fact_lines(why)))
        if cost:
            svg.append(_cost_badge(x, y, cost))
        items.append(_step_item(cluster, number, anchor, (stage, cost, why), indices))
    return svg, items


def _arrows(nodes: int, y: float, arrow: str) -> list[str]:
    return [
        f'<line class="edge" x1="{x1}" y1="{y + _BOX_H / 2}" x2="{x1 + _GAP - 4}" '
        f'y2="{y + _BOX_H / 2}" marker-end="url(#{arrow})"/>'
        for x1 in (node * (_BOX_W + _GAP) + _BOX_W for node in range(nodes - 1))
    ]


def _paths(cluster: ClusterReport, number: int) -> str:
    best = cheapest(cluster)
    lanes = [
        _lane(cluster, number, lane, path, path is best) for lane, path in enumerate(cluster.paths)
    ]
    if not lanes:
        return "<p>No path to cluster-admin was found.</p>"
    width = max(nodes for _, _, nodes in lanes) * (_BOX_W + _GAP) - _GAP + 4
    height = len(lanes) * _LANE_H
    markers = "".join(
        f'<marker id="c{number}-arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        for kind, colour in (("cheapest", "#c62828"), ("other", "#9aa4ae"))
    )
    description = (
        f"Attack paths of {cluster.name}: each box is a step with its cost, 0 when nothing "
        "stops it and 1 when one more mistake is needed."
    )
    svg = (
        f'<svg class="attack-paths" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>{_e(description)}</title><defs>{markers}</defs>"
        f"{''.join(lane for lane, _, _ in lanes)}</svg>"
    )
    return (
        f'<h3>Attack paths</h3><div class="paths">{svg}</div>'
        '<p class="legend">The cheapest path is drawn in red. A red <b>0</b> is a step nothing '
        "stops; a green <b>1</b> is a barrier that holds until one more mistake."
        '<span class="screen"> Hover a step for its fact and the finding that opens it; click it '
        "to jump to that finding.</span></p>"
        f"{''.join(listing for _, listing, _ in lanes)}"
    )


def _finding_row(number: int, index: int, finding: Finding, *, gain: bool) -> str:
    first = (
        f'<td class="gain-cell"><span class="gain">+{finding.mut_gain}</span>'
        f'<br><span class="dim">{_e(", ".join(finding.mut_gain_from))}</span></td>'
        if gain
        else f'<td class="status-{_e(finding.status.value)}">{_e(finding.status.value)}</td>'
    )
    severity = _e(finding.severity.value)
    return (
        f'<tr id="c{number}-f{index}">{first}'
        f'<td><code>{_e(finding.check_id)}</code> <span class="sev sev-{severity}">{severity}'
        f'</span><br><span class="dim">{_e(finding.resource)}</span></td>'
        f"<td>{_e(finding.detail)}</td><td>{_remediation(finding.remediation)}</td></tr>"
    )


def _fixes(cluster: ClusterReport, number: int, fixes: list[Finding]) -> str:
    if not fixes:
        return ""
    indices = {id(f): i for i, f in enumerate(cluster.findings)}
    rows = "".join(_finding_row(number, indices[id(f)], f, gain=True) for f in fixes)
    return (
        "<h3>Top fixes by MUT gain</h3>"
        '<table class="findings"><thead><tr><th class="first">MUT gain, from</th>'
        '<th class="check">check, resource</th><th class="detail">what is wrong</th>'
        f"<th>how to fix it on {_e(cluster.provider.value)}</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _other_findings(cluster: ClusterReport, number: int, fixes: list[Finding]) -> str:
    shown = {id(f) for f in fixes}
    by_area: dict[Area, list[str]] = {}
    for index, finding in enumerate(cluster.findings):
        if finding.status is Status.PASS or id(finding) in shown:
            continue
        row = _finding_row(number, index, finding, gain=False)
        by_area.setdefault(finding.area, []).append(row)
    if not by_area:
        return ""
    parts = ["<h3>Other findings, by area</h3>"]
    for area in Area:
        if area in by_area:
            parts.append(
                f'<h4>{_e(area.value.replace("_", " "))}</h4><table class="findings"><thead><tr>'
                '<th class="first">status</th><th class="check">check, resource</th>'
                '<th class="detail">detail</th><th>how to fix it</th></tr></thead>'
                f"<tbody>{''.join(by_area[area])}</tbody>"
                "</table>"
            )
    return "".join(parts)


def _passed(cluster: ClusterReport) -> str:
    passed = [f for f in cluster.findings if f.status is Status.PASS]
    if not passed:
        return ""
    items = "".join(f"<li><code>{_e(f.check_id)}</code>: {_e(f.detail)}</li>" for f in passed)
    return f"<details><summary>{len(passed)} checks passed</summary><ul>{items}</ul></details>"


def _maturity(cluster: ClusterReport) -> str:
    rows = []
    for area in GRADED_AREAS:
        grade = getattr(cluster.maturity, area.value)
        reached = _GRADE_SCALE[: _GRADE_SCALE.index(grade) + 1] if grade in _GRADE_SCALE else ()
        scale = "".join(
            f'<span class="grade{" reached" if step in reached else ""}">{step.value}</span>'
            for step in _GRADE_SCALE
        )
        rows.append(
            f"<tr><td>{_e(area.value.replace('_', ' '))}</td><td>{scale}"
            f'<span class="grade-word">{_e(grade.value)}</span></td></tr>'
        )
    return (
        "<h3>Maturity by area</h3>"
        '<p class="dim">crawl, walk, run: the highest level whose checks, and those of the '
        "levels below it, all pass; none: a crawl check fails; unknown: the crawl checks could "
        "not decide.</p>"
        f'<table class="maturity"><tbody>{"".join(rows)}</tbody></table>'
    )


def _platform_grants(cluster: ClusterReport) -> str:
    if not cluster.platform_grants:
        return ""
    rows = "".join(
        f"<tr><td>{_e(g.binding)}</td><td>{_e(g.subject)}</td><td>{_e(g.power)}</td>"
        f"<td>{_e(g.why)}</td></tr>"
        for g in cluster.platform_grants
    )
    return (
        '<h3>The platform\'s own grants (not findings)</h3><p class="dim">Dangerous powers held '
        "through bindings the platform creates itself, recognised by their whole content (kind, "
        "name, role and subjects, and what the role grants), not by name: they are no mistake to "
        "fix, and are shown with why each is the platform's.</p>"
        '<table class="platform-grants"><thead><tr><th>binding</th><th>subject</th>'
        f"<th>power</th><th>why it is the platform's</th></tr></thead><tbody>{rows}</tbody>"
        "</table>"
    )


def _exposed(cluster: ClusterReport) -> str:
    if not cluster.blast_radius:
        return ""
    shown = cluster.blast_radius[:WORKLOADS_SHOWN]
    items = "".join(f"<li>MUT {b.mut}: {_e(b.workload)}</li>" for b in shown)
    more = len(cluster.blast_radius) - len(shown)
    tail = f'<p class="dim">and {more} more</p>' if more > 0 else ""
    return (
        "<h3>Most exposed workloads</h3>"
        f'<p class="dim">MUT if the workload\'s app is exploited.</p><ul>{items}</ul>{tail}'
    )


def _basis(cluster: ClusterReport, number: int) -> str:
    if not cluster.mut_basis:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in cluster.mut_basis)
    bound = (
        " The values marked ≤ rest on these assumptions: they are upper bounds."
        if cluster.mut_upper_bound
        else ""
    )
    return (
        f'<h3 id="c{number}-basis">Basis</h3><p class="dim">What MUT was computed from.{bound}</p>'
        f"<ul>{items}</ul>"
    )


def _cluster(cluster: ClusterReport, number: int, points: tuple[MutPoint, ...]) -> str:
    where = " · ".join(
        _e(part)
        for part in (cluster.provider.value, cluster.location, cluster.account, cluster.arn_or_id)
        if part
    )
    mut = " · ".join(
        f"{_mut(cluster, field, number)} from {_e(start)}" for field, start in MUT_STARTS
    )
    parts = [
        f'<section class="cluster" id="c{number}"><h2>{_e(cluster.name)}</h2>',
        f'<p class="meta">{where}</p>',
        f'<p class="headline">MUT {mut}</p>'
        if cluster.mut is not None
        else f'<p class="headline">{_e(headline(cluster))}</p>',
    ]
    parts += [f'<p class="error">error: {_e(e)}</p>' for e in cluster.errors]
    if cluster.mut is not None:
        fixes = top_fixes(cluster)
        parts += [
            _history(cluster, points),
            _paths(cluster, number),
            _basis(cluster, number),
            _fixes(cluster, number, fixes),
            _other_findings(cluster, number, fixes),
            f"<p>Failed: {_e(severity_counts(cluster))} ({_e(status_counts(cluster))})</p>",
            _passed(cluster),
            _exposed(cluster),
            _platform_grants(cluster),
            _maturity(cluster),
        ]
    parts.append("</section>")
    return "".join(parts)


def render(
    report: Report,
    color: bool = False,
    history: Mapping[str, Sequence[MutPoint]] | None = None,
) -> str:
    """The page; `history`: the MUT of the clusters' earlier runs by cluster key (a state
    store's ClusterState.history), for the trend; None leaves the trend out."""
    clusters = worst_first(report.clusters)
    runs = None if history is None else _runs(report, history)
    generated = report.generated_at
    if generated.tzinfo is not None:
        generated = generated.astimezone(UTC)
    body = [
        "<header><h1>mutguard report</h1>"
        f'<p class="meta">Generated {_e(f"{generated:%Y-%m-%d %H:%M}")} UTC by '
        f"{_e(report.tool.name)} {_e(report.tool.version)} · {len(clusters)} cluster(s)</p>"
        "</header>"
    ]
    body += [f'<p class="error">error {_e(e.scope)}: {_e(e.message)}</p>' for e in report.errors]
    if clusters:
        body.append(_fleet(clusters, runs))
    else:
        body.append("<p>No cluster could be read.</p>" if report.errors else "<p>No clusters.</p>")
    body += [
        _cluster(cluster, number, runs.get(cluster_key(cluster), ()) if runs else ())
        for number, cluster in enumerate(clusters, 1)
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp(_CSS))}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>mutguard report {_e(f'{generated:%Y-%m-%d %H:%M}')} UTC</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
