"""The HTML report: one self-contained page, the fleet worst first, each cluster's attack paths
drawn from its report, the MUT trend when a history is given, every name escaped, nothing
fetched; and the same page in a real headless Chromium (skipped where none is installed)."""

import base64
import hashlib
import re
import time
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from mutguard.cli import EXIT_OK, main
from mutguard.models import (
    Area,
    ClusterReport,
    MaturityGrades,
    PlatformGrant,
    Remediation,
    Report,
    Severity,
    Status,
    cluster_key,
)
from mutguard.providers import snapshot
from mutguard.render import FORMATS, html, render
from mutguard.render.summary import cheapest
from mutguard.scan import build_report
from mutguard.sources import Provider, ScanError
from mutguard.state import Mut, MutPoint

from builders import new_finding

DEMO = Path(str(resources.files("mutguard") / "demo"))
DEMO_DATE = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
WORST_FIRST = [
    "payments-legacy",
    "data-platform",
    "shop-staging",
    "orders-aks",
    "shop-prod",
    "platform-core",
]
HOSTILE = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "]]><svg onload=alert(3)>",
    "'><a href=javascript:alert(4)>x</a>",
)
# Elements that the page never holds: none of them may come out of a name or a detail.
FORBIDDEN = {"script", "img", "iframe", "object", "embed", "link", "base", "form", "image", "use"}
VOID = frozenset({"meta", "br", "img", "input", "link", "hr", "area", "base", "col", "embed"})
STEP = re.compile(r"^(?P<stage>[\w -]+) \((?P<cost>[01])\): (?P<why>.*)$", re.DOTALL)


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: "Node | None") -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find(self, tag: str, css: str | None = None) -> list["Node"]:
        return [n for n in self.walk() if n.tag == tag and (css is None or n.has_class(css))]

    def has_class(self, css: str) -> bool:
        return css in self.attrs.get("class", "").split()

    def own(self, tag: str) -> "Node":
        """The one direct child with this tag."""
        (child,) = [c for c in self.children if isinstance(c, Node) and c.tag == tag]
        return child


class Tree(HTMLParser):
    """The page as the HTML parser sees it (void elements closed at once)."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


@pytest.fixture(scope="module")
def demo() -> Report:
    return build_report(snapshot.read(DEMO), DEMO_DATE)


@pytest.fixture(scope="module")
def page(demo: Report) -> str:
    return render(demo, "html")


@pytest.fixture(scope="module")
def tree(page: str) -> Node:
    return Tree(page).root


def sections(tree: Node) -> list[Node]:
    return tree.find("section", "cluster")


def steps_of(path_steps: list[str]) -> list[tuple[str, str, str]]:
    return [STEP.match(s).group("stage", "cost", "why") for s in path_steps]


def lane_titles(section: Node, css: str) -> list[str]:
    (lane,) = [g for g in section.find("g", "lane") if g.has_class(css)]
    return [a.own("title").text() for a in lane.find("a", "step")]


def test_html_is_a_format():
    assert FORMATS.get("html") is html


def test_fleet_lists_every_cluster_worst_first_with_bounds_marked(demo, tree):
    (fleet,) = tree.find("table", "fleet")
    rows = fleet.own("tbody").find("tr")
    assert [r.find("a")[0].text() for r in rows] == WORST_FIRST
    by_name = {c.name: c for c in demo.clusters}
    for row in rows:
        cluster = by_name[row.find("a")[0].text()]
        cells = [td.text() for td in row.find("td")]
        assert cells[4:] == [cluster.provider.value, cluster.account, cluster.location]
        for field, cell, td in zip(
            ("mut", "mut_workload", "mut_credential"), cells[1:4], row.find("td")[1:4], strict=True
        ):
            value = str(getattr(cluster, field))
            if field in cluster.mut_upper_bound:
                assert cell == f"≤{value}"
                (bound,) = td.find("a", "bound")
                assert "upper bound" in bound.attrs["title"]
                assert bound.attrs["href"].endswith("-basis")
            else:
                assert cell == value
    legend = fleet.parent.find("ul", "legend")[0].text()
    assert "≤N: an upper bound" in legend


def test_every_cluster_has_one_svg_drawing_its_cheapest_path_in_order(demo, tree):
    by_name = {c.name: c for c in demo.clusters}
    found = sections(tree)
    assert [s.own("h2").text() for s in found] == WORST_FIRST
    for section in found:
        cluster = by_name[section.own("h2").text()]
        (svg,) = section.find("svg")
        assert "attack-paths" in svg.attrs["class"]
        assert len(svg.find("g", "lane")) == len(cluster.paths)
        titles = lane_titles(section, "cheapest")
        expected = steps_of(cheapest(cluster).steps)
        assert len(titles) == len(expected)
        for title, (stage, cost, why) in zip(titles, expected, strict=True):
            assert title.startswith(f"{stage}, cost {cost}: {why}")
        (label,) = [
            t.text()
            for t in svg.find("text", "lane-label")
            if "cheapest" in t.parent.attrs["class"]
        ]
        assert label.endswith(f"MUT {cheapest(cluster).mut} (cheapest)")


def test_steps_link_to_the_findings_that_open_them(tree):
    (section,) = [s for s in sections(tree) if s.own("h2").text() == "payments-legacy"]
    (lane,) = [g for g in section.find("g", "lane") if g.has_class("cheapest")]
    links = [a.attrs["href"] for a in lane.find("a", "step")]
    checks = [section_row_check(section, href) for href in links]
    assert checks == [
        "eks.endpoint.public_unrestricted",
        "eks.auth.anonymous",
        "rbac.anonymous_admin",
    ]
    titles = lane_titles(section, "cheapest")
    assert "opened by eks.auth.anonymous (high)" in titles[1]
    assert "fix (MUT +2): Upgrade to Kubernetes 1.32" in titles[1]
    # The exploited app is a mistake of its own: no finding opens a workload's start.
    workload_lane = section.find("g", "other")[0]
    start = workload_lane.find("a", "step")[0]
    assert start.own("title").text().startswith("start, cost 1: the app in")
    assert re.fullmatch(r"#c\d+-p\d+-s1", start.attrs["href"])


def section_row_check(section: Node, href: str) -> str:
    (row,) = [n for n in section.walk() if n.attrs.get("id") == href[1:]]
    assert row.tag == "tr"
    return row.find("code")[0].text()


def test_top_fixes_come_first_with_the_providers_remediation(demo, tree):
    (section,) = [s for s in sections(tree) if s.own("h2").text() == "shop-prod"]
    fixes = section.find("table", "findings")[0]
    rows = fixes.own("tbody").find("tr")
    assert [r.find("code")[0].text() for r in rows] == [
        "eks.endpoint.public_unrestricted",
        "eks.access.admin_policy",
    ]
    assert "how to fix it on eks" in fixes.own("thead").text()
    (cluster,) = [c for c in demo.clusters if c.name == "shop-prod"]
    fix = next(f for f in cluster.findings if f.check_id == rows[0].find("code")[0].text())
    # The summary, then each field labelled, the commands set as code.
    cell = rows[0].find("td")[-1]
    assert cell.text().startswith(fix.remediation.summary)
    assert [c.text() for c in cell.find("code")] == fix.remediation.cli.splitlines()
    assert f"Terraform: {fix.remediation.terraform}" in cell.text()
    assert "aws eks update-cluster-config" in rows[0].text()
    heads = [h.text() for h in section.find("h3")]
    assert heads.index("Top fixes by MUT gain") < heads.index("Other findings, by area")
    areas = [h.text() for h in section.find("h4")]
    assert areas and len(areas) == len(set(areas))


def test_platform_grants_are_apart_from_the_findings(demo, tree):
    by_name = {c.name: c for c in demo.clusters}
    for section in sections(tree):
        cluster = by_name[section.own("h2").text()]
        (grants,) = section.find("table", "platform-grants")
        rows = grants.own("tbody").find("tr")
        assert [[td.text() for td in r.find("td")] for r in rows] == [
            [g.binding, g.subject, g.power, g.why] for g in cluster.platform_grants
        ]
        findings = " ".join(t.text() for t in section.find("table", "findings"))
        assert "system:kube-controller-manager" not in findings
        grades = {
            r.find("td")[0].text(): r.find("span", "grade-word")[0].text()
            for r in section.find("table", "maturity")[0].find("tr")
        }
        assert grades == {a.replace("_", " "): g.value for a, g in cluster.maturity}


@pytest.mark.parametrize("shown", ["page", "trend_page"])
def test_nothing_is_fetched_and_the_style_is_allowed_by_its_hash(shown, request):
    page = request.getfixturevalue(shown)
    tree = Tree(page).root
    (style,) = tree.find("style")
    digest = base64.b64encode(hashlib.sha256(style.text().encode()).digest()).decode()
    (csp,) = [
        m for m in tree.find("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    policy = csp.attrs["content"]
    assert "default-src 'none'" in policy and f"style-src 'sha256-{digest}'" in policy
    assert "script-src" not in policy  # no script runs, so none is allowed either
    assert not tree.find("script")
    ids = {n.attrs["id"] for n in tree.walk() if "id" in n.attrs}
    for node in tree.walk():
        assert not {"src", "srcset", "xlink:href", "action", "style"} & node.attrs.keys(), node.tag
        href = node.attrs.get("href")
        if href is not None:
            assert href.startswith("#") and href[1:] in ids, href
    assert "url(" not in style.text() and "@import" not in style.text()
    assert all(target.startswith("#") for target in re.findall(r"url\(([^)]*)\)", page))


def test_the_date_shown_is_the_reports(demo):
    older = demo.model_copy(update={"generated_at": datetime(2001, 2, 3, 4, 5, tzinfo=UTC)})
    page = render(older, "html")
    assert "Generated 2001-02-03 04:05 UTC" in page
    assert render(older, "html") == page


def hostile_report(demo: Report) -> Report:
    cluster = next(c for c in demo.clusters if c.name == "payments-legacy")
    evil = " ".join(HOSTILE)
    finding = new_finding(
        f"rbac.anonymous_admin{HOSTILE[0]}",
        Status.FAIL,
        f"ClusterRoleBinding {evil}",
        f"ClusterRoleBinding {evil} lets Group system:unauthenticated do anything",
        provider=cluster.provider,
        severity=Severity.CRITICAL,
        title=evil,
        area=Area.PRIVILEGED_ACCESS,
        remediation=Remediation(
            summary=f"Delete `{evil}`.",
            cli=f"kubectl delete clusterrolebinding {evil}",
            terraform=evil,
            console=evil,
        ),
        mut_gain=1,
        mut_gain_from=("internet",),
    )
    path = cluster.paths[0].model_copy(
        update={"steps": [*cluster.paths[0].steps[:-1], f"authorization (0): {finding.detail}"]}
    )
    hostile = cluster.model_copy(
        update={
            "name": evil,
            "account": HOSTILE[1],
            "location": HOSTILE[2],
            "arn_or_id": HOSTILE[3],
            "paths": [path, *cluster.paths[1:]],
            "findings": [finding, *cluster.findings],
            "mut_basis": [evil],
            "errors": [evil],
            "platform_grants": [PlatformGrant(binding=evil, subject=evil, power=evil, why=evil)],
        }
    )
    unread = ClusterReport(
        name=HOSTILE[0],
        provider=Provider.EKS,
        location=HOSTILE[1],
        account=HOSTILE[2],
        arn_or_id=HOSTILE[3],
        mut=None,
        mut_workload=None,
        mut_credential=None,
        mut_basis=[],
        paths=[],
        maturity=MaturityGrades(
            network="unknown",
            authentication="unknown",
            privileged_access="unknown",
            gitops="unknown",
            workloads="unknown",
        ),
        findings=[],
        errors=[evil],
    )
    return demo.model_copy(
        update={
            "clusters": [hostile, unread],
            "errors": [ScanError(scope=HOSTILE[1], message=evil)],
        }
    )


def test_names_and_details_are_escaped_everywhere(demo):
    page = render(hostile_report(demo), "html")
    tree = Tree(page).root
    elements = {n.tag for n in tree.walk()}
    assert not elements & FORBIDDEN
    for node in tree.walk():
        assert not [a for a in node.attrs if a.startswith("on")], node.tag
        assert not node.attrs.get("href", "#").lower().startswith("javascript")
    assert "]]>" not in page
    text = tree.text()
    for payload in HOSTILE:
        assert payload in text  # shown, as text
    (svg,) = tree.find("svg")
    assert HOSTILE[0] in svg.text()  # the picture's titles and labels are escaped too
    (unread,) = [s for s in sections(tree) if s.own("h2").text() == HOSTILE[0]]
    assert not unread.find("svg") and "could not be read" in unread.text()
    rows = tree.find("table", "fleet")[0].own("tbody").find("tr")
    assert [r.find("td")[1].text() for r in rows] == ["0", "?"]


def test_a_report_without_clusters_says_why(demo):
    failed = demo.model_copy(
        update={"clusters": [], "errors": [ScanError(scope="eks:1:eu-west-1", message="denied")]}
    )
    tree = Tree(render(failed, "html")).root
    assert not tree.find("table", "fleet") and not sections(tree)
    assert "error eks:1:eu-west-1: denied" in tree.text()
    assert "No cluster could be read." in tree.text()


def test_the_command_line_writes_the_page(tmp_path):
    out = tmp_path / "report.html"
    assert main(["demo", "--as-of", "2026-06-01", "--format", "html", "-o", str(out)]) == EXIT_OK
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Generated 2026-06-01 00:00 UTC" in page


# --- The MUT trend -----------------------------------------------------------------------

DAY_BEFORE = DEMO_DATE - timedelta(days=1)
TWO_DAYS_BEFORE = DEMO_DATE - timedelta(days=2)
# The run before the demo's, per cluster: (mut, mut_workload, mut_credential), and the trend
# that follows from the demo's own values (payments-legacy 0/1/≤1, data-platform 1/1/2,
# shop-staging 1/2/≤1, orders-aks 2/2/≤1, shop-prod 2/2/1); platform-core has no history.
BEFORE = {
    "payments-legacy": ((1, 1, 1), "↓"),  # dropped from the internet: worse
    "data-platform": ((0, 1, 2), "↑"),  # rose from the internet: better
    "shop-staging": ((1, 2, 1), "="),
    "orders-aks": ((1, 2, 2), "↓"),  # one rose, one dropped: a drop is worse
    "shop-prod": ((2, 2, 1), "="),
}


def made_up_history(report: Report) -> dict[str, list[MutPoint]]:
    """Two earlier runs per cluster of BEFORE (the older one with its pod value an upper
    bound), none for the others."""
    history = {}
    for cluster in report.clusters:
        if cluster.name in BEFORE:
            values, _ = BEFORE[cluster.name]
            history[cluster_key(cluster)] = [
                MutPoint(TWO_DAYS_BEFORE, Mut(3, 3, 3), ("mut_workload",)),
                MutPoint(DAY_BEFORE, Mut(*values)),
            ]
    return history


@pytest.fixture(scope="module")
def trend_page(demo: Report) -> str:
    return html.render(demo, history=made_up_history(demo))


def fleet_rows(tree: Node) -> dict[str, list[Node]]:
    (fleet,) = tree.find("table", "fleet")
    return {r.find("a")[0].text(): r.find("td") for r in fleet.own("tbody").find("tr")}


def test_the_trend_column_says_which_way_each_cluster_went(demo, trend_page):
    tree = Tree(trend_page).root
    (fleet,) = tree.find("table", "fleet")
    assert "trend" in [th.text() for th in fleet.own("thead").find("th")]
    rows = fleet_rows(tree)
    assert list(rows) == WORST_FIRST
    arrows = {name: cells[4].text() for name, cells in rows.items()}
    assert arrows == {**{n: arrow for n, (_, arrow) in BEFORE.items()}, "platform-core": ""}
    by_name = {c.name: c for c in demo.clusters}
    for name, cells in rows.items():
        cluster = by_name[name]
        assert [c.text() for c in cells[5:]] == [
            cluster.provider.value,
            cluster.account,
            cluster.location,
        ]
    (worse,) = rows["payments-legacy"][4].find("span", "trend")
    assert worse.has_class("trend-worse")
    assert worse.attrs["title"] == (
        "worse since the previous run (2026-05-31 09:30 UTC): 1 → 0 from the internet"
    )
    (better,) = rows["data-platform"][4].find("span", "trend-better")
    assert better.attrs["title"].endswith(": 0 → 1 from the internet")
    (same,) = rows["shop-prod"][4].find("span", "trend-same")
    assert same.attrs["title"] == "unchanged since the previous run (2026-05-31 09:30 UTC)"
    legend = fleet.parent.find("ul", "legend")[0].text()
    assert "trend: since the previous run, ↑ better" in legend


def test_each_cluster_with_earlier_runs_has_a_sparkline_of_its_three_starts(demo, trend_page):
    tree = Tree(trend_page).root
    by_name = {c.name: c for c in demo.clusters}
    for section in sections(tree):
        name = section.own("h2").text()
        sparklines = section.find("svg", "sparkline")
        if name not in BEFORE:
            assert not sparklines and not section.find("table", "history-runs")
            continue
        (svg,) = sparklines
        assert "last 3 runs" in svg.own("title").text()
        series = svg.find("g", "series")
        assert [g.attrs["class"].split()[1] for g in series] == [
            "series-mut",
            "series-mut_workload",
            "series-mut_credential",
        ]
        cluster = by_name[name]
        for group, field in zip(series, ("mut", "mut_workload", "mut_credential"), strict=True):
            dots = group.find("circle")
            assert len(dots) == 3 and len(group.find("polyline")) == 1
            value = getattr(cluster, field)
            shown = f"≤{value}" if field in cluster.mut_upper_bound else str(value)
            assert dots[-1].own("title").text().startswith(f"2026-06-01 09:30 UTC: MUT {shown}")
            assert dots[-1].has_class("bound") == (field in cluster.mut_upper_bound)
            assert dots[0].has_class("bound") == (field == "mut_workload")
        runs = section.find("table", "history-runs")[0].own("tbody").find("tr")
        assert [r.find("td")[0].text() for r in runs] == [
            "2026-06-01 09:30 UTC",
            "2026-05-31 09:30 UTC",
            "2026-05-30 09:30 UTC",
        ]
        assert [td.text() for td in runs[2].find("td")[1:]] == ["3", "≤3", "3"]


def test_a_history_that_holds_this_run_already_does_not_count_it_twice(demo, trend_page):
    history = made_up_history(demo)
    for cluster in demo.clusters:
        if cluster_key(cluster) in history:
            history[cluster_key(cluster)].append(MutPoint.of(cluster, demo.generated_at))
    assert html.render(demo, history=history) == trend_page


def test_without_a_history_the_page_shows_no_trend(demo, page):
    assert html.render(demo) == html.render(demo, history=None) == page
    tree = Tree(page).root
    assert not tree.find("svg", "sparkline") and not tree.find("span", "trend")
    (fleet,) = tree.find("table", "fleet")
    assert "trend" not in [th.text() for th in fleet.own("thead").find("th")]
    # An empty history: the column is there, with nothing in it yet.
    empty = Tree(html.render(demo, history={})).root
    assert all(cells[4].text() == "" for cells in fleet_rows(empty).values())
    assert not empty.find("svg", "sparkline")


def test_the_trend_of_a_hostile_cluster_is_escaped(demo):
    report = hostile_report(demo)
    history = {
        cluster_key(c): [MutPoint(DAY_BEFORE, Mut(1, 1, 1), ("mut", "<b>x</b>"))]
        for c in report.clusters
    }
    page = html.render(report, history=history)
    tree = Tree(page).root
    assert not {n.tag for n in tree.walk()} & FORBIDDEN
    for node in tree.walk():
        assert not [a for a in node.attrs if a.startswith("on")], node.tag
    (sparkline,) = tree.find("svg", "sparkline")
    assert HOSTILE[0] in sparkline.own("title").text()  # the name, as text
    assert "<b>x</b>" not in page
    rows = tree.find("table", "fleet")[0].own("tbody").find("tr")
    assert [r.find("td")[4].text() for r in rows] == ["↓", ""]  # the unread cluster: none


# --- In a real browser ------------------------------------------------------------------------

# Whatever the page's policy refuses is recorded before the page's own content runs.
VIOLATIONS = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
  e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
"""
DOM = """
[...document.querySelectorAll('section.cluster')].map(s => ({
  name: s.querySelector('h2').textContent,
  svgs: s.querySelectorAll('svg').length,
  cheapest: [...s.querySelectorAll('g.lane.cheapest a.step > title')].map(t => t.textContent),
}))
"""


@pytest.fixture(scope="module")
def chromium_path() -> str:
    pytest.importorskip("websocket", reason="websocket-client is not installed (the dev extra)")
    from browser import chromium

    executable = chromium()
    if executable is None:
        pytest.skip(
            "chromium is not installed (Debian: apt-get install chromium): the HTML report is "
            "not checked in a real browser"
        )
    return executable


def load(tab, path: Path) -> str:
    tab.send("Page.addScriptToEvaluateOnNewDocument", source=VIOLATIONS)
    url = path.resolve().as_uri()
    tab.load(url)
    return url


def test_the_page_in_chromium(chromium_path, demo, page, tmp_path):
    from browser import open_tab, png_pixels

    path = tmp_path / "report.html"
    path.write_text(page)
    with open_tab(chromium_path) as tab:
        url = load(tab, path)
        shown = tab.evaluate(DOM)
        assert [s["name"] for s in shown] == WORST_FIRST
        by_name = {c.name: c for c in demo.clusters}
        for section in shown:
            assert section["svgs"] == 1, section["name"]
            expected = steps_of(cheapest(by_name[section["name"]]).steps)
            assert [t.split(":", 1)[0] for t in section["cheapest"]] == [
                f"{stage}, cost {cost}" for stage, cost, _ in expected
            ]
        # The stylesheet applies (its hash matches the policy) and nothing was refused.
        assert tab.evaluate("getComputedStyle(document.querySelector('.cluster')).borderTopStyle")
        assert tab.evaluate("window.cspViolations") == []
        # A click on the first step of the worst cluster's cheapest path marks its finding.
        step = "document.querySelector('#c1 g.lane.cheapest a.step')"
        box = tab.evaluate(
            f"(() => {{ const r = {step}.querySelector('rect').getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        href = tab.evaluate(f"{step}.getAttribute('href')")
        tab.click(*box)
        target = tab.evaluate(
            "(() => { const t = document.querySelector(':target'); return t && [t.id,"
            " t.querySelector('code').textContent, getComputedStyle(t).backgroundColor]; })()"
        )
        assert target[:2] == [href[1:], "eks.endpoint.public_unrestricted"]
        assert target[2] not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
        tab.evaluate("scrollTo(0, 0)")
        width, height, rows = png_pixels(tab.screenshot(scale=0.5))
        errors = [
            e
            for e in tab.named("Runtime.consoleAPICalled")
            if e["type"] in ("error", "warning", "assert")
        ]
        errors += tab.named("Runtime.exceptionThrown")
        errors += [
            e["entry"]
            for e in tab.named("Log.entryAdded")
            if e["entry"]["level"] in ("error", "warning")
        ]
        requested = [e["request"]["url"] for e in tab.named("Network.requestWillBeSent")]
    assert errors == []
    assert requested and all(u == url or u.startswith("data:") for u in requested), requested
    assert (width, height) == (640, 450)
    channels = len(rows[0]) // width
    colours = {row[i : i + 3] for row in rows for i in range(0, len(row), channels)}
    inked = sum(
        1 for row in rows for i in range(0, len(row), channels) if row[i : i + 3] != b"\xff\xff\xff"
    )
    assert len(colours) > 50 and inked > width * height // 20


def test_chromium_reports_a_style_the_policy_does_not_allow(chromium_path, page, tmp_path):
    """The watch for violations works: a page whose style no longer matches its hash is caught."""
    from browser import open_tab

    path = tmp_path / "tampered.html"
    path.write_text(page.replace("</style>", "body { color: red; }</style>", 1))
    with open_tab(chromium_path) as tab:
        load(tab, path)
        # The browser reports a violation in a task of its own, which may run after the load
        # event on a busy machine.
        deadline = time.monotonic() + 10
        while not (violations := tab.evaluate("window.cspViolations")) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
    assert violations and violations[0].startswith("style-src")


def test_the_trend_in_chromium(chromium_path, trend_page, tmp_path):
    from browser import open_tab

    path = tmp_path / "trend.html"
    path.write_text(trend_page)
    with open_tab(chromium_path) as tab:
        load(tab, path)
        drawn = tab.evaluate(
            "[...document.querySelectorAll('svg.sparkline')].map(s => {"
            " const r = s.getBoundingClientRect();"
            " const line = s.querySelector('.series-mut polyline');"
            " return [r.width, r.height, getComputedStyle(line).stroke,"
            " getComputedStyle(line).fill]; })"
        )
        arrows = tab.evaluate(
            "[...document.querySelectorAll('table.fleet span.trend')].map(s =>"
            " [s.textContent, getComputedStyle(s).color])"
        )
        assert tab.evaluate("window.cspViolations") == []
        errors = [
            e
            for e in tab.named("Runtime.consoleAPICalled")
            if e["type"] in ("error", "warning", "assert")
        ]
        errors += tab.named("Runtime.exceptionThrown")
    assert errors == []
    assert len(drawn) == len(BEFORE)
    for width, height, stroke, fill in drawn:
        assert width > 40 and height > 40
        assert stroke == "rgb(11, 87, 208)" and fill == "none"  # the style applies
    colours = {arrow: colour for arrow, colour in arrows}
    assert colours["↓"] == "rgb(198, 40, 40)" and colours["↑"] == "rgb(46, 125, 50)"
