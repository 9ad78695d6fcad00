"""The Security Hub sink against a real moto_server: what GetFindings returns after the sink ran,
judged by Security Hub's semantics (ASFF fields, Id-based updates, archiving).

moto stores what BatchImportFindings sends (an import with a known Id updates it) and answers
GetFindings with every finding of the account and Region, ignoring filters; it never refuses a
finding for Security Hub's own reasons nor throttles, so those come from SecurityHubGapServer, a
proxy in front of it that speaks the same REST-JSON. Calls are counted with a botocore event
hook on the session the AWS sinks create their clients from. Retry waits and pacing go through
a FakeTime, never waited out.
"""

import datetime
import json
import logging
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from mutguard.models import ClusterReport, Finding, Remediation, Report, Status
from mutguard.providers import snapshot
from mutguard.publish import (
    ConfigurationError,
    EnvSecrets,
    Redactor,
    RetryPolicy,
    SinkContext,
    SinkResult,
    SinkSpec,
    build_sinks,
    notify,
    publish,
)
from mutguard.publish import aws as aws_sinks
from mutguard.publish.stores.sqlite import SqliteStateStore
from mutguard.render.summary import remediation_text
from mutguard.scan import build_report
from mutguard.state import changes
from mutguard.suppressions import Suppression

from builders import assess, describe_cluster, kube_list, pod, varied
from servers.aws import DEFAULT_ACCOUNT, DEFAULT_REGION, AwsFakes
from servers.aws_clients import AwsClients
from servers.securityhub_gap import SecurityHubGapServer

GENERATED_AT = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
PRODUCT_ARN = (
    f"arn:aws:securityhub:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:product/{DEFAULT_ACCOUNT}/default"
)
EKS_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
DEMO_FAILURES = 89  # FAIL findings of the six demo clusters, all new on a first run
DB_PASSWORD = "Tr0ub4dor&3-mutguard-db"  # planted: must never reach Security Hub or a log
SECRET_KEY = "mutguardTestSecretAccessKey0123456789"  # likewise


class FakeTime:
    """Stands in for time.sleep and time.monotonic: records each wait, never blocks."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(snapshot.read(demo), GENERATED_AT)


def context(fake_time: FakeTime | None = None) -> SinkContext:
    time = fake_time or FakeTime()
    policy = RetryPolicy(sleep=time.sleep, clock=time.clock, jitter=lambda d: d)
    return SinkContext(EnvSecrets({}), Redactor(), policy)


def hub_spec(**options: Any) -> SinkSpec:
    return SinkSpec("securityhub", options={"account_id": DEFAULT_ACCOUNT, **options})


def send(
    report: Report | None = None,
    ctx: SinkContext | None = None,
    spec: SinkSpec | None = None,
    dry_run: bool = False,
) -> SinkResult:
    ctx = ctx or context()
    report = report or demo_report()
    sinks = build_sinks([spec or hub_spec()], ctx)
    (result,) = publish(report, changes({}, report), sinks, ctx, dry_run=dry_run)
    return result


@pytest.fixture
def hub(cloud: AwsClients) -> Any:
    """A Security Hub client of moto, used as an analyst reads findings."""
    return cloud.session.client("securityhub")


def stored(hub: Any) -> dict[str, dict[str, Any]]:
    """Every finding Security Hub holds, by Id (GetFindings, page by page)."""
    findings: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"MaxResults": 100}
    while True:
        page = hub.get_findings(**params)
        findings |= {f["Id"]: f for f in page["Findings"]}
        if not page.get("NextToken"):
            return findings
        params["NextToken"] = page["NextToken"]


@pytest.fixture
def import_calls(aws: AwsFakes) -> Iterator[list[int]]:
    """The number of findings in each BatchImportFindings call any AWS sink makes from here on
    (clients copy their session's hooks when they are created)."""
    sizes: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Findings"]))

    event = "provide-client-params.securityhub.BatchImportFindings"
    events = aws_sinks._session().events
    events.register(event, count)
    yield sizes
    events.unregister(event, count)


@pytest.fixture
def gap(aws: AwsFakes, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecurityHubGapServer]:
    with SecurityHubGapServer(aws.moto.url) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECURITYHUB", server.url)
        yield server


def cluster_named(report: Report, name: str) -> ClusterReport:
    return next(c for c in report.clusters if c.name == name)


def first_failure(cluster: ClusterReport) -> Finding:
    return next(f for f in cluster.findings if f.status is Status.FAIL and f.mut_gain)


def id_of(stored_findings: dict[str, dict[str, Any]], check_id: str, resource: str) -> str:
    (found,) = [
        i
        for i, f in stored_findings.items()
        if f["GeneratorId"] == check_id and f["ProductFields"]["mutguard/resource"] == resource
    ]
    return found


def failing_cluster(count: int, **text: Any) -> ClusterReport:
    """payments-legacy with `count` failing findings (`text` overrides their fields)."""
    base = cluster_named(demo_report(), "payments-legacy")
    template = first_failure(base)
    findings = [
        varied(
            template,
            f"k8s.workload.privileged_{i:03d}",
            **{"resource": f"payments/pod-{i:03d}", **text},
        )
        for i in range(count)
    ]
    return base.model_copy(update={"findings": findings})


# --- What Security Hub holds --------------------------------------------------------------


def test_every_new_failure_is_a_finding_with_the_asff_fields(hub: Any, import_calls: list[int]):
    result = send()
    assert (result.ok, result.sent, result.error) == (True, 1, None)
    assert import_calls == [DEMO_FAILURES]

    findings = stored(hub)
    assert len(findings) == DEMO_FAILURES
    legacy = cluster_named(demo_report(), "payments-legacy")
    failure = first_failure(legacy)
    found = findings[id_of(findings, failure.check_id, failure.resource)]
    assert found["Id"].startswith(f"mutguard/{failure.check_id}/")
    assert found["SchemaVersion"] == "2018-10-08"
    assert found["ProductArn"] == PRODUCT_ARN
    assert found["AwsAccountId"] == DEFAULT_ACCOUNT
    assert found["GeneratorId"] == failure.check_id
    assert found["Types"] == [EKS_TYPE]
    # The report's time, whatever today is.
    assert found["CreatedAt"] == found["UpdatedAt"] == "2026-03-01T08:00:00.000Z"
    assert found["FirstObservedAt"] == found["LastObservedAt"] == "2026-03-01T08:00:00.000Z"
    label = failure.severity.value.upper()
    assert found["Severity"] == {"Label": label, "Original": failure.severity.value}
    assert found["FindingProviderFields"] == {
        "Severity": {"Label": label, "Original": failure.severity.value},
        "Types": [EKS_TYPE],
    }
    assert found["Compliance"] == {"Status": "FAILED"}
    assert found["RecordState"] == "ACTIVE"
    assert "Workflow" not in found  # new findings start NEW; analysts own it from there
    assert found["Title"] == failure.title
    assert found["Description"].startswith("payments-legacy (eks, eu-west-1): ")
    assert failure.detail in found["Description"]
    text = remediation_text(failure.remediation)
    assert len(text) <= 512 and found["Remediation"] == {"Recommendation": {"Text": text}}
    (resource,) = found["Resources"]
    assert resource["Type"] == "AwsEksCluster"
    assert resource["Id"] == "arn:aws:eks:eu-west-1:111111111111:cluster/payments-legacy"
    assert (resource["Partition"], resource["Region"]) == ("aws", "eu-west-1")
    assert resource["Details"]["AwsEksCluster"] == {"Arn": resource["Id"], "Name": legacy.name}
    assert resource["Details"]["Other"]["resource"] == failure.resource
    assert found["ProductFields"]["mutguard/mut_gain"] == str(failure.mut_gain)
    assert found["ProductFields"]["mutguard/mut_gain_from"] == ",".join(failure.mut_gain_from)
    assert found["ProductFields"]["mutguard/account"] == "111111111111"

    gke = cluster_named(demo_report(), "data-platform")
    other = first_failure(gke)
    found = findings[id_of(findings, other.check_id, other.resource)]
    assert found["Types"] == ["Software and Configuration Checks"]
    assert found["AwsAccountId"] == DEFAULT_ACCOUNT  # the account the findings live in
    assert found["Resources"][0]["Type"] == "Other"
    assert found["Resources"][0]["Id"] == gke.arn_or_id


def test_a_second_run_updates_the_same_findings_instead_of_adding_more(
    hub: Any, import_calls: list[int]
):
    assert send().ok
    first = stored(hub)
    assert send().ok
    assert stored(hub) == first

    later = GENERATED_AT + datetime.timedelta(days=1)
    assert send(demo_report().model_copy(update={"generated_at": later})).ok
    updated = stored(hub)
    assert updated.keys() == first.keys()
    assert {f["UpdatedAt"] for f in updated.values()} == {"2026-03-02T08:00:00.000Z"}
    assert import_calls == [DEMO_FAILURES] * 3


def test_a_fixed_finding_is_archived_as_resolved_and_an_unchanged_run_sends_nothing(
    hub: Any, import_calls: list[int], tmp_path: Path
):
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    ctx = context()
    sinks = build_sinks([hub_spec()], ctx)
    assert notify(demo_report(), store, sinks, ctx).ok

    legacy = cluster_named(demo_report(), "payments-legacy")
    failing = [f for f in legacy.findings if f.status is Status.FAIL]
    fixed, deleted = failing[0], failing[1]
    findings = [
        f.model_copy(update={"status": Status.PASS}) if f is fixed else f
        for f in legacy.findings
        if f is not deleted
    ]
    clusters = [
        c.model_copy(update={"findings": findings}) if c is legacy else c
        for c in demo_report().clusters
    ]
    later = GENERATED_AT + datetime.timedelta(days=1)
    report = demo_report().model_copy(update={"generated_at": later, "clusters": clusters})
    outcome = notify(report, store, sinks, ctx)
    assert outcome.ok and outcome.state_saved
    assert import_calls == [DEMO_FAILURES, 2]

    held = stored(hub)
    assert len(held) == DEMO_FAILURES
    resolved = held[id_of(held, fixed.check_id, fixed.resource)]
    assert resolved["RecordState"] == "ARCHIVED"
    assert resolved["Workflow"] == {"Status": "RESOLVED"}
    assert resolved["Compliance"] == {"Status": "PASSED"}
    assert resolved["Severity"]["Label"] == "INFORMATIONAL"
    assert resolved["UpdatedAt"] == "2026-03-02T08:00:00.000Z"
    gone = held[id_of(held, deleted.check_id, deleted.resource)]
    assert (gone["RecordState"], gone["Compliance"]) == ("ARCHIVED", {"Status": "NOT_AVAILABLE"})
    assert gone["Workflow"] == {"Status": "RESOLVED"}
    active = [f for f in held.values() if f["RecordState"] == "ACTIVE"]
    assert len(active) == DEMO_FAILURES - 2

    again = notify(report, store, sinks, ctx)
    assert again.ok and again.results[0].planned == 0
    assert import_calls == [DEMO_FAILURES, 2]


def test_a_suppressed_finding_is_not_imported(hub: Any, tmp_path: Path):
    failure = first_failure(cluster_named(demo_report(), "payments-legacy"))
    accepted = Suppression(
        check_id=failure.check_id,
        resource=failure.resource,
        cluster="payments-legacy",
        owner="platform@example.com",
        reason="replaced next sprint",
        expires=datetime.date(2026, 3, 31),
    )
    ctx = context()
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    sinks = build_sinks([hub_spec()], ctx)
    assert notify(demo_report(), store, sinks, ctx, suppressions=[accepted]).ok
    held = stored(hub)
    assert len(held) == DEMO_FAILURES - 1
    assert not any(
        f["GeneratorId"] == failure.check_id
        and f["ProductFields"]["mutguard/resource"] == failure.resource
        and f["ProductFields"]["mutguard/cluster"] == "payments-legacy"
        for f in held.values()
    )


# --- Limits -------------------------------------------------------------------------------


def test_more_than_100_findings_go_in_batches_of_at_most_100(hub: Any, import_calls: list[int]):
    report = demo_report().model_copy(update={"clusters": [failing_cluster(250)]})
    result = send(report)
    assert (result.ok, result.planned, result.sent) == (True, 3, 3)
    assert import_calls == [100, 100, 50]
    assert len(stored(hub)) == 250


def test_long_text_is_cut_to_the_documented_limits(hub: Any):
    long = {
        "title": "T" * 1000,
        "detail": "é" * 3000,  # two bytes each
        "remediation": Remediation(summary="r" * 3000),
        "resource": "payments/" + "x" * 5000,
    }
    report = demo_report().model_copy(update={"clusters": [failing_cluster(1, **long)]})
    assert send(report).ok

    (found,) = stored(hub).values()
    assert len(found["Title"]) <= 256 and found["Title"].endswith("…")
    assert len(found["Description"]) <= 1024 and found["Description"].endswith("é…")
    assert len(found["Description"].encode()) <= 1024
    text = found["Remediation"]["Recommendation"]["Text"]
    assert len(text) <= 512 and text.endswith("…")
    assert len(found["ProductFields"]["mutguard/resource"]) <= 2048
    assert len(found["Resources"][0]["Details"]["Other"]["resource"]) < 1024
    assert len(json.dumps(found).encode()) <= 240_000


def test_a_finding_too_large_for_security_hub_fails_the_sink_before_any_call(
    hub: Any, import_calls: list[int]
):
    huge = failing_cluster(1).model_copy(update={"arn_or_id": "cluster/" + "x" * 250_000})
    result = send(demo_report().model_copy(update={"clusters": [huge]}))
    assert not result.ok and result.sent == 0
    assert result.error.startswith(
        "the k8s.workload.privileged_000 finding on payments/pod-000 is "
    )
    assert result.error.endswith(" bytes; Security Hub takes at most 240000")
    assert import_calls == [] and stored(hub) == {}


# --- Failures -----------------------------------------------------------------------------


def test_transiently_failed_findings_are_imported_again_alone(
    hub: Any, gap: SecurityHubGapServer, import_calls: list[int]
):
    gap.fail_findings(3, "InternalException", "Internal service error")
    fake_time = FakeTime()
    result = send(ctx=context(fake_time))
    assert (result.ok, result.sent, result.error) == (True, 1, None)
    assert import_calls == [DEMO_FAILURES, 3]
    assert fake_time.waits == [0.5]
    assert len(stored(hub)) == DEMO_FAILURES


def test_refused_findings_fail_the_sink_by_count_and_code_without_the_servers_words(
    hub: Any, gap: SecurityHubGapServer, import_calls: list[int]
):
    echoed = "Title 'Control plane endpoint open to 0.0.0.0/0' is invalid"
    gap.fail_findings(1, "InvalidInput", echoed)
    gap.fail_findings(2, "InternalException", "Internal service error")
    fake_time = FakeTime()
    result = send(ctx=context(fake_time))
    assert not result.ok and result.sent == 0
    assert (
        result.error == "securityhub securityhub: 1 of 89 findings not imported (InvalidInput: 1)"
    )
    assert import_calls == [DEMO_FAILURES, 2]  # the transient two again, not the refused one
    assert fake_time.waits == [0.5]
    assert len(stored(hub)) == DEMO_FAILURES - 1


def test_findings_that_keep_failing_give_up_after_the_runs_retries(
    gap: SecurityHubGapServer, import_calls: list[int]
):
    gap.fail_findings(1000, "InternalException", "Internal service error")
    fake_time = FakeTime()
    result = send(ctx=context(fake_time))
    assert not result.ok
    assert result.error == (
        "securityhub securityhub: 89 of 89 findings not imported (InternalException: 89) "
        "(gave up after 4 attempts)"
    )
    assert import_calls == [DEMO_FAILURES] * 4
    assert fake_time.waits == [0.5, 1.0, 2.0]


def test_throttling_is_retried_with_backoff(
    hub: Any, gap: SecurityHubGapServer, import_calls: list[int]
):
    gap.throttle(2)
    fake_time = FakeTime()
    result = send(ctx=context(fake_time))
    assert (result.ok, result.sent) == (True, 1)
    assert gap.import_calls == 3
    assert fake_time.waits == [0.5, 1.0]
    assert len(stored(hub)) == DEMO_FAILURES


def test_calls_are_paced_to_ten_a_second(import_calls: list[int]):
    report = demo_report().model_copy(update={"clusters": [failing_cluster(250)]})
    fake_time = FakeTime()
    assert send(report, ctx=context(fake_time)).ok
    assert fake_time.waits == pytest.approx([0.1, 0.1])


# --- Dry run, secrets, configuration ------------------------------------------------------


def test_a_dry_run_shows_the_findings_and_calls_nothing(hub: Any, import_calls: list[int]):
    result = send(dry_run=True)
    assert (result.ok, result.dry_run, result.planned, result.sent) == (True, True, 1, 0)
    (item,) = result.outgoing
    assert item.summary == "89 findings: 89 active (batch 1/1)"
    assert len(item.payload["findings"]) == DEMO_FAILURES
    assert {f["ProductArn"] for f in item.payload["findings"]} == {PRODUCT_ARN}
    assert import_calls == [] and stored(hub) == {}

    assert send().ok  # what a real run imports is what the dry run showed
    assert stored(hub).keys() == {f["Id"] for f in item.payload["findings"]}


def test_no_secret_reaches_the_findings_or_the_logs(
    hub: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    env = [{"name": "DB_PASSWORD", "value": DB_PASSWORD}]
    container = {"name": "app", "image": "registry.example.com/app:1.4.2", "env": env}
    cluster = assess(
        describe_cluster("leaky"), workloads=kube_list(pod("web", containers=[container]))
    )
    assert any(
        f.check_id == "workloads.secret_env" and f.status is Status.FAIL for f in cluster.findings
    )
    report = Report(generated_at=GENERATED_AT, clusters=[cluster])
    caplog.set_level(logging.DEBUG)  # botocore logs every request and response body
    dry = send(report, dry_run=True)
    result = send(report)
    assert result.ok
    assert "BatchImportFindings" in caplog.text
    texts = {
        "outgoing": json.dumps([item.payload for item in dry.outgoing]),
        "stored": json.dumps(stored(hub)),
        "logs": caplog.text,
    }
    for name, text in texts.items():
        assert DB_PASSWORD not in text, name
        assert SECRET_KEY not in text, name
    assert "DB_PASSWORD" in texts["stored"]  # the finding names the variable, never its value


def test_a_default_product_arn_carries_the_account(hub: Any):
    other_account = "210987654321"
    product = (
        f"arn:aws:securityhub:{DEFAULT_REGION}:{other_account}:product/{other_account}/default"
    )
    spec = SinkSpec("securityhub", options={"product_arn": product})
    result = send(spec=spec, dry_run=True)
    findings = result.outgoing[0].payload["findings"]
    assert {(f["ProductArn"], f["AwsAccountId"]) for f in findings} == {(product, other_account)}


BAD_OPTIONS = {
    "no account": ({}, "account_id is required"),
    "short account": ({"account_id": "1234"}, "account_id: String should match pattern"),
    "partner product": (
        {"product_arn": "arn:aws:securityhub:us-east-1:999999999999:product/acme/scanner"},
        "account_id is required",
    ),
    "two regions": (
        {"account_id": DEFAULT_ACCOUNT, "region": "eu-west-1", "product_arn": PRODUCT_ARN},
        "region eu-west-1 differs from product_arn's us-east-1",
    ),
    "two accounts": (
        {"account_id": "210987654321", "product_arn": PRODUCT_ARN},
        f"account_id 210987654321 differs from product_arn's {DEFAULT_ACCOUNT}",
    ),
    "unknown option": ({"account_id": DEFAULT_ACCOUNT, "topic": "x"}, "topic: Extra inputs"),
}


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_options_are_refused_before_anything_is_sent(options: dict[str, str], message: str):
    with pytest.raises(ConfigurationError, match=message):
        build_sinks([SinkSpec("securityhub", options=options)], context())


def test_without_a_region_the_sink_says_so(aws: AwsFakes, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    result = send(dry_run=True)
    assert not result.ok
    assert (
        result.error == "securityhub securityhub: no region: set the sink's `region` or AWS_REGION"
    )
    assert send(spec=hub_spec(region="eu-west-1"), dry_run=True).ok


def test_ids_are_stable_per_cluster_check_and_resource(aws: AwsFakes):
    def ids() -> list[str]:
        (item,) = send(dry_run=True).outgoing
        return [f["Id"] for f in item.payload["findings"]]

    first = ids()
    assert len(set(first)) == len(first) == DEMO_FAILURES
    assert ids() == first
    assert all(len(i) <= 512 for i in first)
