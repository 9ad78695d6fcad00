"""The compact report (schema_version 2): each check's summary once per report, findings with
only what is particular to their resource, read back to the same findings and state keys."""

import json
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
# A cluster's own share of a fleet's report (minified JSON; the check summaries are shared): the
# demo's clusters are typical, each with its findings, paths, blast radius and platform grants.
# Schema 1 wrote about 33 KB each; the fleet-scale goal is 8 KB, not reached yet (bench/
# report_size.py prints where it stands): these bounds keep what schema 2 gained (about 10 KB
# each, the largest 12 KB).
CLUSTER_SHARE_MEAN_BYTES = 10_500
CLUSTER_SHARE_MAX_BYTES = 12_500
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


def test_a_report_read_back_has_the_same_findings_and_writes_the_same_json():
    original = demo_report()
    text = original.to_json()
    read = Report.model_validate_json(text)
    assert read.to_json() == text
    for before, after in zip(original.clusters, read.clusters, strict=True):
        assert [
            (f.check_id, f.status, f.resource, f.detail, f.severity, f.title, f.remediation)
            for f in before.findings
        ] == [
            (f.check_id, f.status, f.resource, f.detail, f.severity, f.title, f.remediation)
            for f in after.findings
        ]


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
    for cluster in demo_json()["clusters"]:
        for finding in cluster["findings"]:
            assert finding.get("mut_gain_from", ["x"]) != []
            assert "mut_gain" not in finding or finding["mut_gain"] is not None
            assert ("mut_gain" in finding) == (finding["status"] == Status.FAIL.value)


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
    sizes = [len(c.model_dump_json(by_alias=True).encode()) for c in demo_report().clusters]
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


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (as_schema_1, "schema_version '1': this mutguard reads schema_version 2"),
        ({"checks": {}}, "its check is not in the report's checks"),
        ({"checks": {"rbac.wildcard": {"title": "t"}}}, "checks['rbac.wildcard']: not a check"),
        (out_of_range_step, "is not an index into route_steps"),
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
