"""The compact report (schema_version 3): each check's summary and each platform reason once per
report, findings with only what is particular to their resource, read back to the same findings,
grants and state keys."""

import json
import shutil
import subprocess
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import pytest

from mutguard.cli import EXIT_USAGE, main
from mutguard.models import Report, Status, cluster_key
from mutguard.providers import snapshot
from mutguard.publish.stores.sqlite import SqliteStateStore
from mutguard.scan import build_report
from mutguard.state import changes, finding_key, next_state

AS_OF = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ROOT = Path(__file__).parents[1]
# A cluster's own share of a fleet's report (minified JSON; the check summaries and platform
# reasons are shared): the demo's clusters are typical, each with its findings, paths, blast
# radius and platform grants. Schema 1 wrote about 33 KB each, schema 2 about 10 KB; the
# fleet-scale goal is 8 KB (bench/report_size.py): schema 3 writes about 7.7 KB, the largest
# 9.5 KB.
CLUSTER_SHARE_MEAN_BYTES = 8 * 1024
CLUSTER_SHARE_MAX_BYTES = 9_750
# What a v1 report repeated in every finding.
MOVED_TO_CHECKS = ("title", "severity", "area", "remediation")


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(snapshot.read(demo), AS_OF)


@cache
def demo_json() -> dict:
    return json.loads(demo_report().to_json())


def test_every_findings_check_id_resolves_in_the_reports_checks():
    report = demo_json()
    named = {f["check_id"] for c in report["clusters"] for f in c["findings"]}
    assert named and set(report["checks"]) == named
    for cluster in report["clusters"]:
        for finding in cluster["findings"]:
            assert not set(MOVED_TO_CHECKS) & set(finding), finding
            summary = report["checks"][finding["check_id"]]
            assert cluster["provider"] in summary["remediation"]


def test_the_checks_say_once_what_a_v1_report_said_in_every_finding():
    original = demo_report()
    checks = demo_json()["checks"]
    for cluster in original.clusters:
        for finding in cluster.findings:
            summary = checks[finding.check_id]
            assert (summary["title"], summary["severity"], summary["area"]) == (
                finding.title,
                finding.severity.value,
                finding.area.value,
            )
            written = summary["remediation"][cluster.provider.value]
            assert written == finding.remediation.model_dump(mode="json")


def in_full(finding) -> tuple:
    return (
        finding.check_id,
        finding.status,
        finding.resource,
        finding.detail,
        finding.mut_gain,
        finding.mut_gain_from,
        finding.severity,
        finding.title,
        finding.remediation,
    )


def test_a_report_read_back_has_the_same_findings_and_grants_and_writes_the_same_json():
    original = demo_report()
    text = original.to_json()
    read = Report.model_validate_json(text)
    assert read.to_json() == text
    for before, after in zip(original.clusters, read.clusters, strict=True):
        assert [in_full(f) for f in before.findings] == [in_full(f) for f in after.findings]
        assert after.platform_grants == before.platform_grants


def test_each_route_step_is_written_once_per_cluster_and_read_back_in_place():
    read = Report.model_validate(demo_json())
    for raw, cluster, original in zip(
        demo_json()["clusters"], read.clusters, demo_report().clusters, strict=True
    ):
        table = raw["route_steps"]
        assert len(set(table)) == len(table)
        written = [i for route in (*raw["paths"], *raw["blast_radius"]) for i in route["steps"]]
        assert sorted(set(written)) == list(range(len(table)))  # every step used, none missing
        assert cluster.paths == original.paths
        assert cluster.blast_radius == original.blast_radius


def test_a_workloads_route_costs_its_mut_without_the_exploited_app():
    """`mut` is 1 for the exploited app plus the further path, which is what `steps` hold: the
    costs written in the steps add up to mut - 1."""
    radius = [entry for cluster in demo_report().clusters for entry in cluster.blast_radius]
    assert radius
    for entry in radius:
        costs = [int(step.split("(", 1)[1].split(")", 1)[0]) for step in entry.steps]
        assert sum(costs) == entry.mut - 1, entry
        assert not any(step.startswith("start ") for step in entry.steps)


def out_of_range_step(report: dict) -> dict:
    first, *rest = report["clusters"]
    path = {**first["paths"][0], "steps": [len(first["route_steps"])]}
    return {**report, "clusters": [{**first, "paths": [path, *first["paths"][1:]]}, *rest]}


def test_a_finding_on_the_cluster_itself_leaves_out_its_resource():
    clusters = demo_json()["clusters"]
    on_cluster = [f for c in clusters for f in c["findings"] if "resource" not in f]
    elsewhere = [f for c in clusters for f in c["findings"] if "resource" in f]
    assert on_cluster and elsewhere
    read = Report.model_validate(demo_json())
    for cluster, raw in zip(read.clusters, clusters, strict=True):
        for finding, written in zip(cluster.findings, raw["findings"], strict=True):
            assert finding.resource == written.get("resource", cluster.arn_or_id)


def test_a_findings_empty_and_default_fields_are_left_out():
    written = [f for cluster in demo_json()["clusters"] for f in cluster["findings"]]
    failing = [f for c in demo_report().clusters for f in c.findings if f.status is Status.FAIL]
    assert {f.mut_gain for f in failing} > {0}  # gains of 0 and others
    for finding in written:
        assert finding.get("mut_gain_from", ["x"]) != []
        assert finding.get("mut_gain", 1) > 0  # written for a FAIL that gains something
        if "mut_gain" in finding:
            assert finding["status"] == Status.FAIL.value
    gains = [f.get("mut_gain", 0) for f in written if f["status"] == Status.FAIL.value]
    assert sorted(gains) == sorted(f.mut_gain for f in failing)
    read = Report.model_validate(demo_json())
    for cluster in read.clusters:
        for finding in cluster.findings:
            assert (finding.mut_gain is not None) == (finding.status is Status.FAIL)


def test_a_pass_that_says_its_checks_stock_sentence_leaves_it_out():
    report = demo_json()
    stock = {check_id: c.get("pass_detail") for check_id, c in report["checks"].items()}
    assert stock["rbac.wildcard"] == "only the platform's own bindings grant it"
    written = [f for cluster in report["clusters"] for f in cluster["findings"]]
    silent = [f for f in written if "detail" not in f]
    assert len(silent) > len(report["clusters"]) * 20
    assert {f["status"] for f in silent} == {Status.PASS.value}
    assert all(stock[f["check_id"]] for f in silent)
    # A PASS that says something else still says it.
    assert any(f["status"] == Status.PASS.value and stock[f["check_id"]] is None for f in written)
    for cluster in demo_report().clusters:
        for finding in cluster.findings:
            if finding.status is Status.PASS and finding.check.pass_detail:
                assert finding.detail == finding.check.pass_detail


def test_a_detail_that_begins_with_its_resource_is_written_without_it():
    clusters = demo_json()["clusters"]
    continued = [f for c in clusters for f in c["findings"] if f.get("detail", "").startswith(": ")]
    assert continued and all("resource" in f for f in continued)
    read = Report.model_validate(demo_json())
    for cluster, raw in zip(read.clusters, clusters, strict=True):
        for finding, written in zip(cluster.findings, raw["findings"], strict=True):
            assert not written.get("detail", "").startswith(f"{finding.resource}: ")
            if written in continued:
                assert finding.detail == finding.resource + written["detail"]
    daemonset = next(f for f in continued if f["resource"] == "DaemonSet kured/kured")
    assert daemonset["detail"] in (": privileged container kured", ": kured may run as root")


def test_each_platform_reason_is_written_once_per_report_and_read_back_in_place():
    report = demo_json()
    table = report["platform_reasons"]
    assert len(set(table)) == len(table)
    grants = [g for cluster in report["clusters"] for g in cluster["platform_grants"]]
    assert len(grants) > len(table) and sorted({g["why"] for g in grants}) == list(
        range(len(table))
    )
    bootstrap = "the Kubernetes bootstrap policy's own (its roleRef, subjects and role's grants)"
    assert sum(why.startswith(bootstrap) for why in table) == 1
    read = Report.model_validate(report)
    for cluster in read.clusters:
        assert all(g.why in table for g in cluster.platform_grants)


def test_the_state_of_a_previous_run_still_matches_a_report_read_back(tmp_path):
    """State keys are (check_id, resource) with the resource in full, as every earlier version
    stored them: a finding written without its resource is the same finding."""
    original = demo_report()
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    store.save(next_state({}, original))
    read = Report.model_validate_json(original.to_json())
    stored = store.load(cluster_key(c) for c in read.clusters)
    for cluster in read.clusters:
        failing = {finding_key(f) for f in cluster.findings if f.status is Status.FAIL}
        assert failing and failing <= set(stored[cluster_key(cluster)].findings)
    assert not any(change.has_news for change in changes(stored, read))
    # A key as schema 1 runs stored it: the finding on the cluster keys by its ARN.
    legacy = next(c for c in read.clusters if c.name == "payments-legacy")
    arn = "arn:aws:eks:eu-west-1:111111111111:cluster/payments-legacy"
    assert ("eks.endpoint.public_unrestricted", arn) in stored[cluster_key(legacy)].findings


def test_a_typical_clusters_share_of_the_report_stays_small():
    sizes = [
        len(json.dumps(c, ensure_ascii=False, separators=(",", ":")).encode())
        for c in json.loads(demo_report().to_json(indent=None))["clusters"]
    ]
    assert sum(sizes) / len(sizes) <= CLUSTER_SHARE_MEAN_BYTES, sizes
    assert max(sizes) <= CLUSTER_SHARE_MAX_BYTES, sizes


def as_schema_1(report: dict) -> dict:
    """The report as mutguard wrote it with schema_version 1: every finding with its check's
    title, severity, area and remediation, and its resource; no `checks`."""
    checks = report["checks"]
    clusters = [
        {
            **cluster,
            "findings": [
                {
                    "resource": cluster["arn_or_id"],
                    **finding,
                    **{k: checks[finding["check_id"]][k] for k in ("title", "severity", "area")},
                    "remediation": checks[finding["check_id"]]["remediation"][cluster["provider"]],
                }
                for finding in cluster["findings"]
            ],
        }
        for cluster in report["clusters"]
    ]
    rest = {k: v for k, v in report.items() if k != "checks"}
    return {**rest, "schema_version": "1", "clusters": clusters}


def as_schema_2(report: dict) -> dict:
    """The report as mutguard wrote it with schema_version 2: every finding with its detail in
    full and a FAIL's mut_gain of 0, every platform grant with its why; no `platform_reasons`,
    no `pass_detail`."""
    checks = report["checks"]
    clusters = []
    for cluster in report["clusters"]:
        findings = []
        for finding in cluster["findings"]:
            resource = finding.get("resource", cluster["arn_or_id"])
            detail = finding.get("detail") or checks[finding["check_id"]]["pass_detail"]
            full = {**finding, "detail": resource + detail if detail[:2] == ": " else detail}
            if finding["status"] == Status.FAIL.value:
                full.setdefault("mut_gain", 0)
            findings.append(full)
        grants = [
            {**g, "why": report["platform_reasons"][g["why"]]} for g in cluster["platform_grants"]
        ]
        clusters.append({**cluster, "findings": findings, "platform_grants": grants})
    return {
        **{k: v for k, v in report.items() if k != "platform_reasons"},
        "schema_version": "2",
        "checks": {
            check_id: {k: v for k, v in summary.items() if k != "pass_detail"}
            for check_id, summary in checks.items()
        },
        "clusters": clusters,
    }


def test_what_schema_2_wrote_is_what_schema_3_reads_back():
    """The 2 -> 3 note's account of what schema 3 leaves out is whole: put back, it gives every
    finding and grant as a report read back holds them."""
    written = as_schema_2(demo_json())
    for cluster, raw in zip(demo_report().clusters, written["clusters"], strict=True):
        assert [
            (f.check_id, f.status, f.resource, f.detail, f.mut_gain) for f in cluster.findings
        ] == [
            (
                f["check_id"],
                f["status"],
                f.get("resource", raw["arn_or_id"]),
                f["detail"],
                f.get("mut_gain"),
            )
            for f in raw["findings"]
        ]
        assert [g.model_dump() for g in cluster.platform_grants] == raw["platform_grants"]


# The Report contract's jq example for schema 3: each finding's full detail, each grant's why.
JQ_IN_FULL = (
    ".checks as $k | .platform_reasons as $r | .clusters[] | .arn_or_id as $c"
    " | (.findings[] | (.resource // $c) as $o | .detail //= $k[.check_id].pass_detail"
    ' | .detail |= if startswith(": ") then $o + . else . end'
    ' | "\\(.check_id) \\($o): \\(.detail)")'
    ', (.platform_grants[] | "\\(.binding) \\(.subject): \\($r[.why])")'
)


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_documented_jq_gives_every_detail_and_why_in_full():
    assert f"jq -r '{JQ_IN_FULL}'" in (ROOT / "docs" / "architecture.md").read_text()
    done = subprocess.run(
        ["jq", "-r", JQ_IN_FULL], input=demo_report().to_json(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    expected = [
        line
        for cluster in demo_report().clusters
        for line in (
            *(f"{f.check_id} {f.resource}: {f.detail}" for f in cluster.findings),
            *(f"{g.binding} {g.subject}: {g.why}" for g in cluster.platform_grants),
        )
    ]
    assert done.stdout.splitlines() == expected


def grant_why(why: object):
    def change(report: dict) -> dict:
        first, *rest = report["clusters"]
        grant = {**first["platform_grants"][0], "why": why}
        grants = [grant, *first["platform_grants"][1:]]
        return {**report, "clusters": [{**first, "platform_grants": grants}, *rest]}

    return change


def pass_without_detail(report: dict) -> dict:
    """A PASS that leaves out its detail though its check declares no stock sentence."""
    first, *rest = report["clusters"]
    stockless = {k for k, c in report["checks"].items() if "pass_detail" not in c}
    findings = [
        {k: v for k, v in f.items() if k != "detail"}
        if f["status"] == Status.PASS.value and f["check_id"] in stockless
        else f
        for f in first["findings"]
    ]
    assert findings != first["findings"]
    return {**report, "clusters": [{**first, "findings": findings}, *rest]}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (as_schema_1, "schema_version '1': this mutguard reads schema_version 3"),
        (as_schema_2, "schema_version '2': this mutguard reads schema_version 3"),
        ({"checks": {}}, "its check is not in the report's checks"),
        ({"checks": {"rbac.wildcard": {"title": "t"}}}, "checks['rbac.wildcard']: not a check"),
        (out_of_range_step, "is not an index into route_steps"),
        (
            grant_why(7),
            "platform_grants: why '7' is not an index into platform_reasons (1 reasons)",
        ),
        (
            grant_why("the platform's"),
            'why "the platform\'s" is not an index into platform_reasons',
        ),
        ({"platform_reasons": "bootstrap"}, "platform_reasons: expected a list of texts"),
        (pass_without_detail, "a PASS without a detail, and its check in the report's checks"),
    ],
)
def test_a_report_it_cannot_read_is_refused_in_one_line(tmp_path, capsys, change, says):
    written = tmp_path / "report.json"
    report = change(demo_json()) if callable(change) else {**demo_json(), **change}
    written.write_text(json.dumps(report))
    assert main(["publish", str(written), "--to", "webhook", "--dry-run"]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert f"{written}: not a mutguard JSON report" in error and says in error
