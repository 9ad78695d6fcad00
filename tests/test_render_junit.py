"""JUnit XML output: well-formed for any names, read alike by junitparser and the stdlib, a
testsuite per cluster and a testcase per check, FAIL a <failure>, ERROR an <error>, UNKNOWN
<skipped> (docs/formats.md gives the CI conventions behind that)."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from mutguard.cli import EXIT_OK, main
from mutguard.models import ClusterReport, Finding, Report, Status
from mutguard.providers import snapshot
from mutguard.render import render
from mutguard.render.summary import remediation_text
from mutguard.scan import build_report, evaluate
from mutguard.sources import ClusterSource, Provider, ScanError

from builders import (
    OBSERVED_AT,
    assess,
    cluster_role_binding,
    describe_cluster,
    new_finding,
    rbac_list,
)

AS_OF = "2026-06-01"
EXPECTED_RESULT = {Status.FAIL: Failure, Status.ERROR: Error, Status.UNKNOWN: Skipped}
HOSTILE_CLUSTER = 'prod "eu" <b>&amp; ]]> é\x1b\ud800'
HOSTILE_BINDING = "x]]><testcase name='injected'/><![CDATA["
HOSTILE_USER = '"/><failure message="forged'


def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(snapshot.read(demo), datetime.fromisoformat(AS_OF).replace(tzinfo=UTC))


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("junit") / "demo.xml"
    assert main(["demo", "--format", "junit", "--as-of", AS_OF, "-o", str(target)]) == EXIT_OK
    return target


def by_check(cluster: ClusterReport) -> dict[str, list[Finding]]:
    checks: dict[str, list[Finding]] = {}
    for finding in cluster.findings:
        checks.setdefault(finding.check_id, []).append(finding)
    return checks


def expected_result(findings: list[Finding]):
    """The worst status of a check's findings decides its testcase."""
    for status in (Status.FAIL, Status.ERROR, Status.UNKNOWN):
        if any(f.status is status for f in findings):
            return EXPECTED_RESULT[status]
    return None


def result_type(case):
    (result,) = case.result or [None]
    return type(result) if result is not None else None


def finding(check_id: str, status: Status, resource: str, detail: str) -> Finding:
    return new_finding(
        check_id, status, resource, detail, mut_gain=0 if status is Status.FAIL else None
    )


def scanned(name: str = "prod", *bindings: dict) -> ClusterReport:
    return assess(describe_cluster(name), rbac=rbac_list(*bindings), access_entries=[])


def test_the_demo_is_a_suite_per_cluster_and_a_case_per_check(demo_path):
    report = demo_report()
    ET.parse(demo_path)  # noqa: S314 - our own output, parsed to prove it well-formed
    xml = JUnitXml.fromfile(str(demo_path))
    suites = list(xml)
    assert [s.name for s in suites] == [c.name for c in report.clusters]
    for suite, cluster in zip(suites, report.clusters, strict=True):
        checks = by_check(cluster)
        cases = list(suite)
        assert [c.name for c in cases] == [f"{i}: {f[0].title}" for i, f in checks.items()]
        assert {c.classname for c in cases} == {cluster.name}
        for case, findings in zip(cases, checks.values(), strict=True):
            assert result_type(case) is expected_result(findings), case.name
        properties = {p.name: p.value for p in suite.properties()}
        assert properties["cluster_id"] == cluster.arn_or_id
        assert properties["provider"] == cluster.provider.value
        assert suite.timestamp == "2026-06-01T00:00:00"


def test_counts_add_up_from_the_cases(demo_path):
    xml = JUnitXml.fromfile(str(demo_path))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in xml:
        cases = list(suite)
        counts = {
            "tests": len(cases),
            "failures": sum(result_type(c) is Failure for c in cases),
            "errors": sum(result_type(c) is Error for c in cases),
            "skipped": sum(result_type(c) is Skipped for c in cases),
        }
        assert {k: getattr(suite, k) for k in counts} == counts, suite.name
        totals = {k: totals[k] + counts[k] for k in totals}
    assert {k: getattr(xml, k) for k in totals} == totals
    assert totals["failures"] and totals["skipped"] and totals["tests"] > totals["failures"]


def test_every_fail_is_in_its_cases_failure(demo_path):
    report = demo_report()
    cases = {(c.classname, c.name): c for suite in JUnitXml.fromfile(str(demo_path)) for c in suite}
    assert len(cases) == sum(len(by_check(c)) for c in report.clusters)  # no name twice
    failed = 0
    for cluster in report.clusters:
        for check_id, findings in by_check(cluster).items():
            case = cases[(cluster.name, f"{check_id}: {findings[0].title}")]
            for f in findings:
                if f.status is Status.FAIL:
                    (result,) = case.result
                    assert f.resource in result.text and f.detail in result.text
                    assert f"fix: {remediation_text(f.remediation)}" in result.text
                    failed += 1
    assert failed == sum(f.status is Status.FAIL for c in report.clusters for f in c.findings)


def test_status_mapping_fail_error_unknown_pass():
    cluster = scanned().model_copy(
        update={
            "findings": [
                finding("a.passes", Status.PASS, "r1", "fine"),
                finding("b.unknown", Status.UNKNOWN, "r1", "admission.json was not collected"),
                finding("c.error", Status.ERROR, "r1", "the check raised KeyError"),
                finding("d.mixed", Status.UNKNOWN, "r1", "not read"),
                finding("d.mixed", Status.FAIL, "r2", "opens the door"),
                finding("e.mixed", Status.UNKNOWN, "r1", "not read"),
                finding("e.mixed", Status.ERROR, "r2", "raised"),
            ]
        }
    )
    xml = JUnitXml.fromstring(render(Report(generated_at=OBSERVED_AT, clusters=[cluster]), "junit"))
    (suite,) = xml
    results = {case.name.split(":")[0]: case for case in suite}
    assert results["a.passes"].is_passed and not results["a.passes"].result
    assert result_type(results["b.unknown"]) is Skipped and results["b.unknown"].is_skipped
    assert "admission.json was not collected" in results["b.unknown"].result[0].message
    assert result_type(results["c.error"]) is Error
    assert result_type(results["d.mixed"]) is Failure
    assert results["d.mixed"].result[0].message == "r2: opens the door"
    assert "not read" in results["d.mixed"].result[0].text  # every finding of the check is told
    assert result_type(results["e.mixed"]) is Error
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (5, 1, 2, 1)


def test_attacker_chosen_names_stay_text():
    binding = cluster_role_binding(
        HOSTILE_BINDING, "cluster-admin", ("User", HOSTILE_USER), ("Group", "system:masters")
    )
    report = Report(generated_at=OBSERVED_AT, clusters=[scanned(HOSTILE_CLUSTER, binding)])
    text = render(report, "junit")
    root = ET.fromstring(text)  # noqa: S314 - our own output, parsed to prove it well-formed
    assert [c.tag for c in root] == ["testsuite"]
    suite = JUnitXml.fromstring(text)
    (parsed,) = suite
    names = [case.name for case in parsed]
    assert "injected" not in names and len(names) == len(by_check(report.clusters[0]))
    # ESC and a lone surrogate cannot be in XML 1.0 at all: written as \x1b, \xd800.
    shown_name = HOSTILE_CLUSTER.replace("\x1b", "\\x1b").replace("\ud800", "\\xd800")
    assert parsed.name == shown_name
    assert {case.classname for case in parsed} == {shown_name}
    texts = [r.text or "" for case in parsed for r in case.result]
    messages = [r.message or "" for case in parsed for r in case.result]
    assert any(HOSTILE_BINDING in t and HOSTILE_USER in t for t in texts)
    assert any(m.startswith(f"ClusterRoleBinding {HOSTILE_BINDING}: ") for m in messages)
    assert any(m.endswith("(and 1 more)") for m in messages)  # one per subject of the binding
    assert all(r.type in {"FAIL", "ERROR", "UNKNOWN"} for case in parsed for r in case.result)


def test_two_clusters_of_one_name_get_two_classnames():
    cluster = scanned("orders")
    twin = cluster.model_copy(update={"arn_or_id": cluster.arn_or_id.replace("eu-west-1", "us")})
    text = render(Report(generated_at=OBSERVED_AT, clusters=[cluster, twin]), "junit")
    suites = list(JUnitXml.fromstring(text))
    assert [s.name for s in suites] == [
        f"orders ({cluster.arn_or_id})",
        f"orders ({twin.arn_or_id})",
    ]
    keys = [(case.classname, case.name) for suite in suites for case in suite]
    assert len(keys) == len(set(keys))


def test_clusters_and_regions_not_read_are_errors():
    unread = evaluate(ClusterSource(Provider.EKS, "unread", "eu-west-1", "1"), OBSERVED_AT)
    assert unread.errors and not unread.findings
    denied = ScanError("eks:123456789012:eu-west-1", "AccessDenied <listing clusters>")
    report = Report(generated_at=OBSERVED_AT, clusters=[unread], errors=[denied])
    suites = list(JUnitXml.fromstring(render(report, "junit")))
    assert [s.name for s in suites] == ["unread", "scan errors"]
    (case,) = suites[0]
    assert result_type(case) is Error and unread.errors[0] in case.result[0].text
    (case,) = suites[1]
    assert case.classname == denied.scope and result_type(case) is Error
    assert case.result[0].message == denied.message


def test_the_time_is_the_reports_and_the_output_is_stable():
    report = Report(generated_at=datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC), clusters=[scanned()])
    assert render(report, "junit") == render(report, "junit")
    (suite,) = JUnitXml.fromstring(render(report, "junit"))
    assert suite.timestamp == "2031-02-03T04:05:06"
