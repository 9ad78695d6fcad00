"""OCSF output: every finding an OCSF Compliance Finding that py-ocsf-models (the library Prowler
writes OCSF with) parses without dropping a field, with OCSF's enumerations for class, activity,
severity and compliance status, the report's own time, and a finding uid that stays put."""

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from py_ocsf_models.events.findings.activity_id import ActivityID
from py_ocsf_models.events.findings.category_uid import CategoryUID
from py_ocsf_models.events.findings.class_uid import ClassUID
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
from py_ocsf_models.events.findings.compliance_finding_type_id import ComplianceFindingTypeID
from py_ocsf_models.events.findings.severity_id import SeverityID
from py_ocsf_models.events.findings.status_id import StatusID
from py_ocsf_models.objects.account import TypeID
from py_ocsf_models.objects.cloud import Cloud
from py_ocsf_models.objects.compliance_status import StatusID as ComplianceStatusID

from mutguard.cli import EXIT_OK, main
from mutguard.models import Area, ClusterReport, Report, Status
from mutguard.providers import snapshot
from mutguard.render import render
from mutguard.render.summary import remediation_text
from mutguard.scan import build_report
from mutguard.sources import Provider

from builders import (
    OBSERVED_AT,
    assess,
    cluster_role_binding,
    describe_cluster,
    new_finding,
    rbac_list,
)

AS_OF = "2026-06-01"
LATER = "2026-09-15"
# OCSF severity_id captions for mutguard's severities (schema: severity_id enum).
SEVERITY = {
    "critical": SeverityID.Critical,
    "high": SeverityID.High,
    "medium": SeverityID.Medium,
    "low": SeverityID.Low,
    "info": SeverityID.Informational,
}
# compliance.status_id (schema: objects/compliance.json): Warning is "did not yield a result
# due to missing information", which is what UNKNOWN means.
COMPLIANCE_STATUS = {
    "PASS": ComplianceStatusID.Pass,
    "FAIL": ComplianceStatusID.Fail,
    "UNKNOWN": ComplianceStatusID.Warning,
    "ERROR": ComplianceStatusID.Unknown,
}
HOSTILE = "evil \"name\" <x>]]>\n=cmd|' /C calc'!A0 é 中\x1b\ud800"


def demo_events(tmp_path: Path, as_of: str = AS_OF) -> list[dict]:
    target = tmp_path / f"demo-{as_of}.ocsf.json"
    assert main(["demo", "--format", "ocsf", "--as-of", as_of, "-o", str(target)]) == EXIT_OK
    return json.loads(target.read_bytes().decode("utf-8"))


def demo_report(as_of: str = AS_OF) -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(snapshot.read(demo), datetime.fromisoformat(as_of).replace(tzinfo=UTC))


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> list[dict]:
    return demo_events(tmp_path_factory.mktemp("ocsf"))


def key(event: dict) -> tuple[str, str, str]:
    """(cluster id, check, resource) of an event."""
    return (
        event["unmapped"]["cluster"]["uid"],
        event["metadata"]["event_code"],
        event["resources"][0].get("uid", event["resources"][0]["name"]),
    )


def test_every_event_parses_into_the_librarys_compliance_finding_losing_nothing(events):
    assert events
    for event in events:
        parsed = ComplianceFinding.model_validate(event)
        # The model ignores fields it does not know: equal dumps mean every field is a known one.
        # `cloud` (the cloud profile) is not on the library's ComplianceFinding: its own model.
        without_cloud = {k: v for k, v in event.items() if k != "cloud"}
        assert parsed.model_dump(mode="json", exclude_none=True) == without_cloud
        cloud = Cloud.model_validate(event["cloud"])
        assert cloud.model_dump(mode="json", exclude_none=True) == event["cloud"]


def test_class_category_activity_and_type(events):
    for event in events:
        assert event["class_uid"] == ClassUID.ComplianceFinding == 2003
        assert event["category_uid"] == CategoryUID.Findings == 2
        assert event["activity_id"] == ActivityID.Create
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
        assert event["type_uid"] == ComplianceFindingTypeID.Create
        assert event["class_name"] == "Compliance Finding"
        product = event["metadata"]["product"]
        assert (product["name"], product["vendor_name"]) == ("mutguard", "mutguard")


def test_one_event_per_finding_of_every_cluster(events):
    report = demo_report()
    assert len(events) == sum(len(c.findings) for c in report.clusters)
    assert {e["unmapped"]["cluster"]["name"] for e in events} == {c.name for c in report.clusters}
    failed = {
        (c.arn_or_id, f.check_id, f.resource)
        for c in report.clusters
        for f in c.findings
        if f.status is Status.FAIL
    }
    assert failed == {key(e) for e in events if e["status_code"] == "FAIL"}


def test_severity_and_status_follow_ocsfs_enumerations(events):
    report = demo_report()
    findings = [f for c in report.clusters for f in c.findings]
    assert {f.status for f in findings} >= {Status.PASS, Status.FAIL, Status.UNKNOWN}
    for event, f in zip(events, findings, strict=True):
        assert event["severity_id"] == SEVERITY[f.severity.value]
        assert event["severity"] == SeverityID(event["severity_id"]).name
        assert event["status_code"] == f.status.value
        assert event["compliance"]["status_id"] == COMPLIANCE_STATUS[f.status.value]
        assert event["status_id"] == StatusID.New and event["status"] == "New"
        assert event["compliance"]["control"] == f.check_id
        assert event["remediation"]["desc"] == remediation_text(f.remediation)
        assert event["unmapped"]["mut_gain"] == f.mut_gain


def test_an_error_finding_has_no_compliance_result():
    cluster = scanned("prod")
    raised = new_finding(
        "rbac.wildcard",
        Status.ERROR,
        cluster.arn_or_id,
        "the check raised KeyError",
        provider=cluster.provider,
        area=Area.PRIVILEGED_ACCESS,
    )
    report = Report(
        generated_at=OBSERVED_AT, clusters=[cluster.model_copy(update={"findings": [raised]})]
    )
    (event,) = json.loads(render(report, "ocsf"))
    assert event["compliance"]["status_id"] == ComplianceStatusID.Unknown
    assert event["status_code"] == "ERROR"
    ComplianceFinding.model_validate(event)


def test_times_are_the_reports_in_ocsf_units(events):
    # timestamp_t is milliseconds since the epoch; datetime_t is RFC 3339.
    expected = (datetime(2026, 6, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )
    for event in events:
        assert event["time"] == event["finding_info"]["created_time"] == expected
        assert datetime.fromisoformat(event["time_dt"]) == datetime(2026, 6, 1, tzinfo=UTC)


def test_finding_uids_are_unique_and_stay_put_across_scans(tmp_path, events):
    uids = [e["finding_info"]["uid"] for e in events]
    assert len(set(uids)) == len(uids)
    later = {key(e): e["finding_info"]["uid"] for e in demo_events(tmp_path, LATER)}
    first = {key(e): e["finding_info"]["uid"] for e in events}
    shared = first.keys() & later.keys()
    assert len(shared) > len(first) // 2
    assert all(first[k] == later[k] for k in shared)
    assert {e["time"] for e in demo_events(tmp_path, LATER)} != {e["time"] for e in events}


def scanned(name: str, *bindings: dict) -> ClusterReport:
    return assess(describe_cluster(name), rbac=rbac_list(*bindings), access_entries=[])


def test_one_resource_reported_twice_by_a_check_gets_two_uids():
    binding = cluster_role_binding(
        "ops", "cluster-admin", ("User", "alice"), ("Group", "system:masters")
    )
    report = Report(generated_at=OBSERVED_AT, clusters=[scanned("prod", binding)])
    events = json.loads(render(report, "ocsf"))
    wildcard = [e for e in events if e["metadata"]["event_code"] == "rbac.wildcard"]
    assert len({key(e) for e in wildcard}) == 1 < len(wildcard)
    assert len({e["finding_info"]["uid"] for e in wildcard}) == len(wildcard)


def test_the_same_check_and_resource_on_two_clusters_are_two_findings():
    first = scanned("prod")
    other = first.model_copy(update={"arn_or_id": first.arn_or_id.replace("123456789012", "2")})
    events = json.loads(render(Report(generated_at=OBSERVED_AT, clusters=[first, other]), "ocsf"))
    uids = [e["finding_info"]["uid"] for e in events]
    assert len(set(uids)) == len(uids) == 2 * len(first.findings)


def test_cloud_names_the_provider_account_and_region(events):
    report = demo_report()
    clusters = {c.arn_or_id: c for c in report.clusters}
    providers = {"eks": ("aws", TypeID.AWS_Account), "gke": ("gcp", TypeID.GCP_Account)}
    providers["aks"] = ("azure", TypeID.Azure_AD_Account)
    seen = set()
    for event in events:
        cluster = clusters[event["unmapped"]["cluster"]["uid"]]
        provider, account_type = providers[cluster.provider.value]
        assert event["cloud"]["provider"] == provider
        assert event["cloud"]["account"]["uid"] == cluster.account
        assert event["cloud"]["account"]["type_id"] == account_type
        assert event["cloud"]["region"] == cluster.location
        assert event["metadata"]["profiles"] == ["cloud", "datetime"]
        seen.add(provider)
    assert seen == {"aws", "gcp", "azure"}


def test_a_kubeconfig_cluster_has_no_cloud():
    cluster = scanned("lab").model_copy(
        update={"provider": Provider.KUBERNETES, "account": "", "arn_or_id": "https://[::1]:6443"}
    )
    events = json.loads(render(Report(generated_at=OBSERVED_AT, clusters=[cluster]), "ocsf"))
    for event in events:
        assert "cloud" not in event and event["metadata"]["profiles"] == ["datetime"]
        ComplianceFinding.model_validate(event)


def test_attacker_chosen_names_come_back_exactly():
    binding = cluster_role_binding(HOSTILE, "cluster-admin", ("User", HOSTILE))
    report = Report(generated_at=OBSERVED_AT, clusters=[scanned(HOSTILE, binding)])
    text = render(report, "ocsf")
    assert text.isascii()
    events = json.loads(text)
    (cluster,) = report.clusters
    assert [e["unmapped"]["cluster"]["name"] for e in events] == [HOSTILE] * len(cluster.findings)
    assert [e["status_detail"] for e in events] == [f.detail for f in cluster.findings]
    assert [e["resources"][0]["name"] for e in events] == [
        cluster.name if f.resource == cluster.arn_or_id else f.resource for f in cluster.findings
    ]
    assert any(HOSTILE in e["status_detail"] for e in events)
    for event in events:
        ComplianceFinding.model_validate(event)
    assert render(report, "ocsf") == text
