"""The Security Command Center sink against a local gRPC google.cloud.securitycenter.v2
SecurityCenter (tests/servers/scc.py): the real SecurityCenterClient writes, and what
ListFindings returns afterwards is judged by SCC's documented semantics (UpdateFinding creates
or updates by name, a finding's state is set with SetFindingState, finding ids are alphanumeric
and at most 32 characters, event_time is the detector's time).

Retry waits go through a recording sleep, never waited out.
"""

import datetime
import json
import logging
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.cloud.securitycenter_v2 import Finding as SccFinding
from google.cloud.securitycenter_v2 import SecurityCenterClient
from google.cloud.securitycenter_v2.services.security_center.transports import (
    SecurityCenterGrpcTransport,
)

from mutguard.models import ClusterReport, Finding, Report, Severity, Status
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
from mutguard.publish.stores.sqlite import SqliteStateStore
from mutguard.render.summary import remediation_text
from mutguard.scan import build_report
from mutguard.state import changes
from mutguard.suppressions import Suppression

from builders import assess, describe_cluster, kube_list, pod, varied
from servers.scc import ORGANIZATION, SOURCE, SccServer

GENERATED_AT = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
LATER = GENERATED_AT + datetime.timedelta(days=1)
SCC_NOW = GENERATED_AT + datetime.timedelta(days=30)  # the fake's clock: the tests' own
PARENT = f"{SOURCE}/locations/global"
DEMO_FAILURES = 89  # FAIL findings of the six demo clusters, all new on a first run
GKE_CLUSTER = (
    "//container.googleapis.com/projects/data-platform-prod-7731/locations/europe-west4"
    "/clusters/data-platform"
)
DB_PASSWORD = "Tr0ub4dor&3-mutguard-db"  # planted: must never reach SCC or a log
ACTIVE, INACTIVE = SccFinding.State.ACTIVE, SccFinding.State.INACTIVE
RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


class Waits:
    """Stands in for time.sleep: records each wait, never blocks."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(snapshot.read(demo), GENERATED_AT)


def context(waits: Waits | None = None) -> SinkContext:
    policy = RetryPolicy(sleep=(waits or Waits()).sleep, jitter=lambda delay: delay)
    return SinkContext(EnvSecrets({}), Redactor(), policy)


@pytest.fixture
def scc() -> Iterator[SccServer]:
    with SccServer(clock=lambda: SCC_NOW) as server:
        yield server


def scc_spec(server: SccServer, **options: Any) -> SinkSpec:
    return SinkSpec("scc", options={"source": SOURCE, "endpoint": server.endpoint, **options})


def send(
    server: SccServer,
    report: Report | None = None,
    ctx: SinkContext | None = None,
    dry_run: bool = False,
) -> SinkResult:
    ctx = ctx or context()
    report = report or demo_report()
    sinks = build_sinks([scc_spec(server)], ctx)
    (result,) = publish(report, changes({}, report), sinks, ctx, dry_run=dry_run)
    return result


def stored(server: SccServer) -> dict[str, SccFinding]:
    """Every finding of the source, by name, as an analyst lists them (ListFindings)."""
    channel = grpc.insecure_channel(server.endpoint.removeprefix("http://"))
    with channel:
        client = SecurityCenterClient(transport=SecurityCenterGrpcTransport(channel=channel))
        results = client.list_findings(request={"parent": PARENT})
        return {r.finding.name: r.finding for r in results}


def properties(finding: SccFinding) -> dict[str, Any]:
    return dict(finding.source_properties)


def named(
    findings: dict[str, SccFinding], check_id: str, resource: str, cluster: str
) -> SccFinding:
    (found,) = [
        f
        for f in findings.values()
        if f.category == check_id
        and properties(f)["resource"] == resource
        and properties(f)["cluster"] == cluster
    ]
    return found


def cluster_named(report: Report, name: str) -> ClusterReport:
    return next(c for c in report.clusters if c.name == name)


def first_failure(cluster: ClusterReport) -> Finding:
    return next(f for f in cluster.findings if f.status is Status.FAIL and f.mut_gain)


def with_cluster(report: Report, cluster: ClusterReport, **update: Any) -> Report:
    clusters = [cluster if c.name == cluster.name else c for c in report.clusters]
    return report.model_copy(update={"clusters": clusters, **update})


# --- What SCC holds -----------------------------------------------------------------------


def test_every_new_failure_is_an_active_finding_with_the_scc_fields(scc: SccServer):
    result = send(scc)
    assert (result.ok, result.planned, result.sent, result.error) == (
        True,
        DEMO_FAILURES,
        DEMO_FAILURES,
        None,
    )
    findings = stored(scc)
    assert len(findings) == DEMO_FAILURES
    assert {f.state for f in findings.values()} == {ACTIVE}
    assert {f.finding_class for f in findings.values()} == {
        SccFinding.FindingClass.MISCONFIGURATION
    }

    gke = cluster_named(demo_report(), "data-platform")
    failure = first_failure(gke)
    found = named(findings, failure.check_id, failure.resource, gke.name)
    assert found.name.startswith(f"{PARENT}/findings/")
    finding_id = found.name.rsplit("/", 1)[1]
    assert finding_id.isalnum() and finding_id.isascii() and 1 <= len(finding_id) <= 32
    assert found.category == failure.check_id
    assert found.severity.name == failure.severity.value.upper()
    # The report's time, whatever today is.
    assert found.event_time == GENERATED_AT
    assert found.resource_name == GKE_CLUSTER
    assert found.external_uri == ""
    assert found.next_steps == remediation_text(failure.remediation)
    assert found.description.startswith("data-platform (gke, europe-west4): ")
    assert failure.detail in found.description
    assert properties(found) == {
        "cluster": "data-platform",
        "provider": "gke",
        "location": "europe-west4",
        "account": "data-platform-prod-7731",
        "resource": failure.resource,
        "status": "FAIL",
        "title": failure.title,
        "area": failure.area.value,
        "severity": failure.severity.value,
        "mut_gain": failure.mut_gain,
        "mut_gain_from": failure.mut_gain_from,
        "detail": failure.detail,
        "remediation": failure.remediation.model_dump(mode="json"),
    }

    eks = cluster_named(demo_report(), "payments-legacy")
    other = first_failure(eks)
    found = named(findings, other.check_id, other.resource, eks.name)
    assert found.resource_name == "arn:aws:eks:eu-west-1:111111111111:cluster/payments-legacy"


def test_info_findings_are_written_as_scc_s_lowest_severity(scc: SccServer):
    legacy = cluster_named(demo_report(), "payments-legacy")
    failure = varied(first_failure(legacy), severity=Severity.INFO)
    report = demo_report().model_copy(
        update={"clusters": [legacy.model_copy(update={"findings": [failure]})]}
    )
    assert send(scc, report).ok
    (found,) = stored(scc).values()
    assert found.severity == SccFinding.Severity.LOW
    assert properties(found)["severity"] == "info"


def test_a_second_run_updates_the_same_findings_instead_of_adding_more(scc: SccServer):
    assert send(scc).ok
    first = stored(scc)
    assert send(scc).ok
    assert stored(scc) == first

    assert send(scc, demo_report().model_copy(update={"generated_at": LATER})).ok
    updated = stored(scc)
    assert updated.keys() == first.keys()
    assert {f.event_time for f in updated.values()} == {LATER}
    assert all(updated[n].create_time == first[n].create_time for n in first)
    assert scc.calls["UpdateFinding"] == scc.calls["SetFindingState"] == 3 * DEMO_FAILURES


def test_a_fixed_finding_becomes_inactive_and_active_again_when_it_fails_again(
    scc: SccServer, tmp_path: Path
):
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    ctx = context()
    sinks = build_sinks([scc_spec(scc)], ctx)
    assert notify(demo_report(), store, sinks, ctx).ok

    legacy = cluster_named(demo_report(), "payments-legacy")
    failing = [f for f in legacy.findings if f.status is Status.FAIL]
    fixed, deleted = failing[0], failing[1]
    findings = [
        f.model_copy(update={"status": Status.PASS}) if f is fixed else f
        for f in legacy.findings
        if f is not deleted
    ]
    report = with_cluster(
        demo_report(), legacy.model_copy(update={"findings": findings}), generated_at=LATER
    )
    calls = scc.calls.copy()
    outcome = notify(report, store, sinks, ctx)
    assert outcome.ok and outcome.state_saved
    assert scc.calls - calls == {"UpdateFinding": 2, "SetFindingState": 2}

    held = stored(scc)
    assert len(held) == DEMO_FAILURES
    resolved = named(held, fixed.check_id, fixed.resource, legacy.name)
    assert resolved.state == INACTIVE
    assert resolved.event_time == LATER  # when it was seen resolved
    assert resolved.severity.name == fixed.severity.value.upper()
    assert properties(resolved)["status"] == "PASS"
    gone = named(held, deleted.check_id, deleted.resource, legacy.name)
    assert (gone.state, properties(gone)["status"]) == (INACTIVE, "gone")
    assert [f.state for f in held.values()].count(ACTIVE) == DEMO_FAILURES - 2

    calls = scc.calls.copy()
    again = notify(report, store, sinks, ctx)
    assert again.ok and again.results[0].planned == 0
    assert scc.calls == calls

    later_still = LATER + datetime.timedelta(days=1)
    assert notify(
        demo_report().model_copy(update={"generated_at": later_still}), store, sinks, ctx
    ).ok
    back = named(stored(scc), fixed.check_id, fixed.resource, legacy.name)
    assert (back.state, back.event_time, properties(back)["status"]) == (
        ACTIVE,
        later_still,
        "FAIL",
    )
    assert len(stored(scc)) == DEMO_FAILURES


def test_a_severity_rise_updates_the_finding(scc: SccServer, tmp_path: Path):
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    ctx = context()
    sinks = build_sinks([scc_spec(scc)], ctx)
    assert notify(demo_report(), store, sinks, ctx).ok
    legacy = cluster_named(demo_report(), "payments-legacy")
    lower = next(
        f
        for f in legacy.findings
        if f.status is Status.FAIL and f.severity is not Severity.CRITICAL
    )
    findings = [varied(f, severity=Severity.CRITICAL) if f is lower else f for f in legacy.findings]
    report = with_cluster(
        demo_report(), legacy.model_copy(update={"findings": findings}), generated_at=LATER
    )
    assert notify(report, store, sinks, ctx).ok
    found = named(stored(scc), lower.check_id, lower.resource, legacy.name)
    assert (found.state, found.severity, found.event_time) == (
        ACTIVE,
        SccFinding.Severity.CRITICAL,
        LATER,
    )
    assert len(stored(scc)) == DEMO_FAILURES


def test_a_suppressed_finding_is_never_sent(scc: SccServer, tmp_path: Path):
    legacy = cluster_named(demo_report(), "payments-legacy")
    failure = first_failure(legacy)
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
    sinks = build_sinks([scc_spec(scc)], ctx)
    assert notify(demo_report(), store, sinks, ctx, suppressions=[accepted]).ok
    held = stored(scc)
    assert len(held) == DEMO_FAILURES - 1
    assert not any(
        f.category == failure.check_id
        and properties(f)["resource"] == failure.resource
        and properties(f)["cluster"] == "payments-legacy"
        for f in held.values()
    )


# --- Failures -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", RETRYABLE, ids=[c.name for c in RETRYABLE])
def test_retryable_statuses_are_retried_then_delivered(scc: SccServer, code: grpc.StatusCode):
    scc.fail(code, times=2)
    waits = Waits()
    result = send(scc, ctx=context(waits))
    assert (result.ok, result.sent, result.error) == (True, DEMO_FAILURES, None)
    assert waits.seconds == [0.5, 1.0]
    assert scc.calls["UpdateFinding"] == DEMO_FAILURES + 2
    assert len(stored(scc)) == DEMO_FAILURES
    assert {f.state for f in stored(scc).values()} == {ACTIVE}


def test_a_failed_state_change_is_retried_with_its_finding(scc: SccServer):
    scc.fail_on("SetFindingState", grpc.StatusCode.UNAVAILABLE, times=1)
    waits = Waits()
    result = send(scc, ctx=context(waits))
    assert (result.ok, result.sent) == (True, DEMO_FAILURES)
    assert waits.seconds == [0.5]
    assert scc.calls == {"UpdateFinding": DEMO_FAILURES + 1, "SetFindingState": DEMO_FAILURES + 1}
    assert {f.state for f in stored(scc).values()} == {ACTIVE}


def test_a_permanent_error_fails_the_sink_with_one_redacted_line(scc: SccServer):
    ctx = context()
    secret = ctx.redactor.add("https://hooks.example.com/services/T000/B000/XXXXsecretXXXX")
    scc.fault_message = f"Permission denied on resource\nrequest from {secret}\n(trace 42)"
    scc.fail(grpc.StatusCode.PERMISSION_DENIED, times=1)
    result = send(scc, ctx=ctx)
    assert not result.ok and result.sent == 0
    assert "\n" not in result.error
    assert secret not in result.error and "XXXXsecretXXXX" not in result.error
    assert result.error.startswith(
        "scc scc: UpdateFinding answered PERMISSION_DENIED: Permission denied on resource "
    )
    assert scc.calls["UpdateFinding"] == 1  # not retried
    assert stored(scc) == {}


def test_an_unknown_source_is_not_found_and_not_retried(scc: SccServer):
    ctx = context()
    other = f"organizations/{ORGANIZATION}/sources/999"
    spec = SinkSpec("scc", options={"source": other, "endpoint": scc.endpoint})
    report = demo_report()
    (result,) = publish(report, changes({}, report), build_sinks([spec], ctx), ctx)
    assert not result.ok
    assert result.error == (f"scc scc: UpdateFinding answered NOT_FOUND: source {other} not found")
    assert scc.calls["UpdateFinding"] == 1


def test_a_report_from_the_future_is_refused_not_stamped_with_another_time(scc: SccServer):
    future = SCC_NOW + datetime.timedelta(minutes=1)
    result = send(scc, demo_report().model_copy(update={"generated_at": future}))
    assert not result.ok
    assert result.error == (
        "scc scc: UpdateFinding answered INVALID_ARGUMENT: "
        "event_time must not be later than the current time"
    )
    assert scc.calls["UpdateFinding"] == 1 and stored(scc) == {}


def test_a_service_that_stays_down_fails_the_sink_after_the_runs_retries(scc: SccServer):
    scc.fail(grpc.StatusCode.UNAVAILABLE, times=100)
    waits = Waits()
    result = send(scc, ctx=context(waits))
    assert not result.ok and result.sent == 0
    assert result.error == (
        "scc scc: UpdateFinding answered UNAVAILABLE: the service is unavailable (test fault) "
        "(gave up after 4 attempts)"
    )
    assert waits.seconds == [0.5, 1.0, 2.0]
    assert scc.calls["UpdateFinding"] == 4


# --- Dry run, secrets, ids, configuration -------------------------------------------------


def test_a_dry_run_shows_the_findings_and_calls_nothing(scc: SccServer):
    result = send(scc, dry_run=True)
    assert (result.ok, result.dry_run, result.planned, result.sent) == (
        True,
        True,
        DEMO_FAILURES,
        0,
    )
    assert not scc.calls
    assert {item.payload["state"] for item in result.outgoing} == {"ACTIVE"}
    gke = cluster_named(demo_report(), "data-platform")
    failure = first_failure(gke)
    (shown,) = [
        item
        for item in result.outgoing
        if item.payload["finding"]["category"] == failure.check_id
        and item.payload["finding"]["resource_name"] == GKE_CLUSTER
    ]
    assert shown.summary == f"active {failure.check_id} on data-platform: {failure.resource}"
    assert shown.payload["finding"]["event_time"] == "2026-03-01T08:00:00Z"

    assert send(scc).ok  # what a real run writes is what the dry run showed
    assert stored(scc).keys() == {item.payload["finding"]["name"] for item in result.outgoing}


def test_no_secret_reaches_the_findings_or_the_logs(
    scc: SccServer, caplog: pytest.LogCaptureFixture
):
    env = [{"name": "DB_PASSWORD", "value": DB_PASSWORD}]
    container = {"name": "app", "image": "registry.example.com/app:1.4.2", "env": env}
    cluster = assess(
        describe_cluster("leaky"), workloads=kube_list(pod("web", containers=[container]))
    )
    assert any(
        f.check_id == "workloads.secret_env" and f.status is Status.FAIL for f in cluster.findings
    )
    report = Report(generated_at=GENERATED_AT, clusters=[cluster])
    caplog.set_level(logging.DEBUG)
    # The client library logs each request and response at DEBUG to the "google" logger, which
    # it keeps from propagating to the root logger: listen there too.
    google = logging.getLogger("google")
    google.addHandler(caplog.handler)
    try:
        dry = send(scc, report, dry_run=True)
        assert send(scc, report).ok
    finally:
        google.removeHandler(caplog.handler)
    assert "Sending request for /google.cloud.securitycenter.v2.SecurityCenter/UpdateFinding" in (
        caplog.text
    )
    held = stored(scc)
    texts = {
        "outgoing": json.dumps([item.payload for item in dry.outgoing]),
        "stored": json.dumps([SccFinding.to_dict(f) for f in held.values()]),
        "logs": caplog.text,
        # The requests and responses themselves are in each record's extra fields.
        "log records": json.dumps([vars(r) for r in caplog.records], default=str),
    }
    for name, text in texts.items():
        assert DB_PASSWORD not in text, name
    # The finding names the variable, never its value.
    assert "DB_PASSWORD" in texts["stored"] and "DB_PASSWORD" in texts["log records"]


def test_ids_are_stable_per_cluster_check_and_resource(scc: SccServer):
    def names() -> list[str]:
        return [item.payload["finding"]["name"] for item in send(scc, dry_run=True).outgoing]

    first = names()
    assert len(set(first)) == len(first) == DEMO_FAILURES
    assert names() == first
    for name in first:
        finding_id = name.removeprefix(f"{PARENT}/findings/")
        assert finding_id.isascii() and finding_id.isalnum() and len(finding_id) == 32


def test_a_source_with_a_location_writes_there(scc: SccServer):
    spec = SinkSpec("scc", options={"source": f"{SOURCE}/locations/eu", "endpoint": scc.endpoint})
    ctx = context()
    report = demo_report()
    (result,) = publish(report, changes({}, report), build_sinks([spec], ctx), ctx)
    assert result.ok
    assert stored(scc) == {}  # nothing in global
    assert len(scc.findings) == DEMO_FAILURES
    assert all(n.startswith(f"{SOURCE}/locations/eu/findings/") for n in scc.findings)


BAD_OPTIONS = {
    "no source": ({}, "source: Field required"),
    "project source": (
        {"source": "projects/p/sources/1"},
        "source: String should match pattern",
    ),
    "finding instead of source": (
        {"source": f"{SOURCE}/findings/abc"},
        "source: String should match pattern",
    ),
    "plain text far away": (
        {"source": SOURCE, "endpoint": "http://scc.example.com:443"},
        "endpoint: Value error, http:// \\(plain text\\) is only for a server on this machine",
    ),
    "unknown option": ({"source": SOURCE, "topic": "x"}, "topic: Extra inputs"),
}


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_options_are_refused_before_anything_is_sent(options: dict[str, str], message: str):
    with pytest.raises(ConfigurationError, match=f"sink scc: {message}"):
        build_sinks([SinkSpec("scc", options=options)], context())
