"""One fleet digest per scheduled run, on every store kind's local server (SQLite file,
moto_server's DynamoDB, the GCS fake, Azurite's Table service).

A run here is the bundled demo split into three parts by provider (EKS, GKE, AKS), plus, where
a test says so, a fourth part whose account could not be read. Each part finishes through
`fleet.finish_part` with a store object of its own (as separate workers have), and the digest
goes to a generic webhook sink on the local receiver (servers/chat.py), which counts what
arrived. Dates are fixed in 2026: the run starts at START, its parts are dated after it.
"""

from __future__ import annotations

import datetime
import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources
from pathlib import Path

import pytest
from conftest import MakeStore

from mutguard.functions.payload import PayloadError, RunPart, parse_payload
from mutguard.functions.runtime import DispatchError, Settings, fan_out
from mutguard.models import Report, cluster_key
from mutguard.providers import snapshot
from mutguard.publish import SinkSpec
from mutguard.publish.base import SinkContext
from mutguard.publish.fleet import (
    FleetDigest,
    assemble,
    digest_subject,
    finish_part,
    part_summary,
)
from mutguard.publish.pipeline import build_sinks
from mutguard.publish.secrets import Redactor, SecretRefs
from mutguard.publish.stores.sqlite import SqliteStateStore
from mutguard.scan import build_report
from mutguard.sources import ScanError
from mutguard.state import ClusterState, Mut, MutPoint
from mutguard.store import RunProgress

from servers.chat import ChatServer

START = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
HOOK = "/hook/fleetHookSecret0123456789"
DENIED = "eks:123456789012:eu-west-1"
WEBHOOK = [SinkSpec("webhook")]


@pytest.fixture
def hook(chat: ChatServer, monkeypatch: pytest.MonkeyPatch) -> ChatServer:
    monkeypatch.setenv("MUTGUARD_WEBHOOK_URL", chat.url + HOOK)
    monkeypatch.setenv("MUTGUARD_WEBHOOK_SECRET", "fleet-hmac-key-0123456789")
    return chat


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(snapshot.read(demo), START + datetime.timedelta(minutes=5))


def parts(with_denied: bool = False) -> list[Report]:
    """The demo by provider, one report per part; optionally a part that read nothing."""
    report = demo_report()
    by_provider: dict[str, list] = {}
    for cluster in report.clusters:
        by_provider.setdefault(cluster.provider.value, []).append(cluster)
    reports = [report.model_copy(update={"clusters": c}) for c in by_provider.values()]
    if with_denied:
        denied = ScanError(scope=DENIED, message="AccessDeniedException: eks:ListClusters")
        reports.append(build_report([denied], START + datetime.timedelta(minutes=6)))
    return reports


def digests(chat: ChatServer) -> list[dict]:
    return [request.json() for request in chat.delivered(HOOK)]


def run_all(new_store: MakeStore, run_id: str, reports: list[Report], order: list[int]) -> list:
    new_store().begin_run(run_id, len(reports), START)
    return [finish_part(new_store(), run_id, i, START, reports[i - 1], WEBHOOK) for i in order]


# --- Exactly once ---------------------------------------------------------------------------


def test_parts_finishing_in_any_order_send_one_digest(new_store: MakeStore, hook: ChatServer):
    reports = parts()
    for number, order in enumerate(itertools.permutations([1, 2, 3])):
        sent = run_all(new_store, f"run-{number}", reports, list(order))
        # Only the last part to finish sends, once, to the one sink.
        assert [s is not None for s in sent] == [False, False, True]
        assert [(r.sink, r.ok, r.sent) for r in sent[-1]] == [("webhook", True, 1)]
    bodies = digests(hook)
    assert [b["run_id"] for b in bodies] == [f"run-{n}" for n in range(6)]
    body = bodies[0]
    assert body["type"] == "fleet_digest" and body["parts"] == 3
    assert body["counts"] == {
        "clusters": 6,
        "worse": 0,
        "better": 0,
        "not_scanned": 0,
        "parts_not_finished": 0,
    }
    assert body["parts_not_finished"] == []
    # The demo's lowest MUT per cluster, as scanned: each value with how many clusters have it.
    lowest = [min(c.mut, c.mut_workload, c.mut_credential) for c in parts_clusters()]
    assert body["distribution"] == {str(v): lowest.count(v) for v in sorted(set(lowest))}
    assert body["worst"][0]["name"] == "payments-legacy"


def parts_clusters() -> list:
    return [c for report in parts() for c in report.clusters]


def test_a_run_of_many_parts_in_a_shuffled_order_sends_once_with_every_part(
    new_store: MakeStore, hook: ChatServer
):
    count = 20  # more than the GCS store reads at a time once every part is there
    reports = [
        build_report(
            [ScanError(scope=f"eks:{100000000000 + i}:eu-west-1", message="denied")],
            START + datetime.timedelta(minutes=i),
        )
        for i in range(1, count + 1)
    ]
    order = [i * 7 % count + 1 for i in range(count)]  # 7 and 20 are coprime: a permutation
    sent = run_all(new_store, "many", reports, order)
    assert [i for i, s in zip(order, sent, strict=True) if s is not None] == [order[-1]]
    (body,) = digests(hook)
    assert (body["parts"], body["counts"]["not_scanned"]) == (count, count)


def test_concurrent_finishers_send_one_digest(new_store: MakeStore, hook: ChatServer):
    reports = parts()
    for round_number in range(5):
        run_id = f"together-{round_number}"
        new_store().begin_run(run_id, len(reports), START)
        barrier = threading.Barrier(len(reports))

        def finish(part: int, run_id: str = run_id, barrier: threading.Barrier = barrier):
            store = new_store()
            barrier.wait()
            return finish_part(store, run_id, part, START, reports[part - 1], WEBHOOK)

        with ThreadPoolExecutor(len(reports)) as pool:
            sent = list(pool.map(finish, [1, 2, 3]))
        # Whoever saw every part finished tried to claim; exactly one won and sent.
        assert sum(s is not None for s in sent) == 1
    assert [b["run_id"] for b in digests(hook)] == [f"together-{n}" for n in range(5)]


def test_a_redelivered_part_counts_once_and_sends_no_second_digest(
    new_store: MakeStore, hook: ChatServer
):
    reports = parts()
    store = new_store()
    store.begin_run("again", 3, START)
    assert finish_part(new_store(), "again", 1, START, reports[0], WEBHOOK) is None
    assert finish_part(new_store(), "again", 1, START, reports[0], WEBHOOK) is None  # redelivered
    progress = store.run_progress("again", every_part=True)
    assert (progress.parts, sorted(progress.finished), progress.complete) == (3, [1], False)
    assert not store.run_progress("again").complete
    assert finish_part(new_store(), "again", 2, START, reports[1], WEBHOOK) is None
    assert finish_part(new_store(), "again", 3, START, reports[2], WEBHOOK) is not None
    # Delivered again after the digest went out: recorded, counted once, nothing sent.
    assert finish_part(new_store(), "again", 2, START, reports[1], WEBHOOK) is None
    assert len(store.run_progress("again").finished) == 3
    (body,) = digests(hook)
    assert body["counts"]["clusters"] == 6


def test_a_retried_dispatch_keeps_the_first_run_record(new_store: MakeStore):
    store = new_store()
    store.begin_run("twice", 3, START)
    new_store().begin_run("twice", 5, START + datetime.timedelta(minutes=2))
    progress = store.run_progress("twice")
    assert (progress.parts, progress.started_at) == (3, START)


def test_a_failed_part_names_the_account_and_region_not_read(
    new_store: MakeStore, hook: ChatServer
):
    reports = parts(with_denied=True)
    sent = run_all(new_store, "denied", reports, [4, 1, 2, 3])
    assert sent[:3] == [None, None, None] and sent[3] is not None
    (body,) = digests(hook)
    assert body["counts"]["not_scanned"] == 1
    assert body["not_scanned"] == [
        {"scope": DENIED, "message": "AccessDeniedException: eks:ListClusters"}
    ]


def test_parts_finished_before_the_run_is_recorded_send_nothing(
    new_store: MakeStore, hook: ChatServer
):
    """Why dispatchers record the run before queueing a part (runtime.fan_out): a part cannot
    know it completes a run nobody has counted."""
    reports = parts()
    assert [
        finish_part(new_store(), "early", i, START, reports[i - 1], WEBHOOK) for i in (1, 2, 3)
    ] == [None] * 3
    assert new_store().run_progress("early").parts is None
    assert digests(hook) == []


def test_a_digest_a_sink_did_not_take_is_sent_when_the_part_comes_again(
    new_store: MakeStore, hook: ChatServer
):
    reports = parts()
    hook.fail(HOOK, 404, times=1, body="no such hook")
    (first,) = [r for r in run_all(new_store, "retry", reports, [1, 2, 3]) if r is not None]
    assert [(r.ok, r.sent) for r in first] == [(False, 0)]
    assert digests(hook) == []
    # The claim was given back: the failed part, delivered again, sends the digest.
    again = finish_part(new_store(), "retry", 3, START, reports[2], WEBHOOK)
    assert again is not None and [(r.ok, r.sent) for r in again] == [(True, 1)]
    assert [b["run_id"] for b in digests(hook)] == ["retry"]


# --- What it says ----------------------------------------------------------------------------


def test_worse_and_better_are_judged_against_the_last_mut_before_the_run(
    new_store: MakeStore, hook: ChatServer
):
    reports = parts()
    now = {c.name: c for c in parts_clusters()}
    legacy, core = now["payments-legacy"], now["platform-core"]
    earlier = START - datetime.timedelta(days=1)
    during = START + datetime.timedelta(minutes=5)  # what this run's own parts saved

    def state(cluster, before: Mut) -> ClusterState:
        points = (MutPoint(earlier, before), MutPoint(during, Mut.of(cluster)))
        return ClusterState(readable=True, mut=Mut.of(cluster), history=points)

    new_store().save(
        {
            cluster_key(legacy): state(legacy, Mut(legacy.mut + 2, legacy.mut_workload, None)),
            cluster_key(core): state(core, Mut(core.mut - 1, core.mut_workload, None)),
        }
    )
    run_all(new_store, "moves", reports, [1, 2, 3])
    (body,) = digests(hook)
    assert body["counts"]["worse"] == 1 and body["counts"]["better"] == 1
    (worse,) = body["worse"]
    assert (worse["name"], worse["before"]["mut"], worse["mut"]) == (
        "payments-legacy",
        legacy.mut + 2,
        legacy.mut,
    )
    (better,) = body["better"]
    assert (better["name"], better["before"]["mut"], better["mut"]) == (
        "platform-core",
        core.mut - 1,
        core.mut,
    )


def test_people_get_the_digest_in_words(
    tmp_path: Path, chat: ChatServer, monkeypatch: pytest.MonkeyPatch
):
    hook_path = "/services/T0FLEET/B0FLEET/fleetWebhookSecret0123456789"
    monkeypatch.setenv("MUTGUARD_SLACK_WEBHOOK_URL", chat.url + hook_path)
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    reports = parts(with_denied=True)
    store.begin_run("words", len(reports), START)
    for part, report in enumerate(reports, start=1):
        finish_part(store, "words", part, START, report, [SinkSpec("slack")])
    (message,) = [r.json() for r in chat.delivered(hook_path)]
    assert message["text"] == (
        "mutguard fleet digest: 6 clusters, worst MUT 0 (payments-legacy), 0 worse, 0 better, "
        "1 not scanned"
    )
    text = json.dumps(message["blocks"])
    assert "Clusters by lowest MUT" in text and "Worst clusters" in text
    assert "payments-legacy (eks, " in text and "MUT 0 from the internet" in text
    assert f"{DENIED}: AccessDeniedException" in text
    assert "fleetWebhookSecret" not in text


# --- The payload's run -------------------------------------------------------------------


SCAN = {"action": "scan", "targets": [{"provider": "eks", "account": "123456789012"}]}
PART = {"id": "r", "part": 1, "parts": 1}


def test_a_queued_scan_carries_its_part_of_the_run_and_reads_back_the_same():
    run = {"id": "r-1", "part": 2, "parts": 3, "started_at": "2026-12-01T06:00:00+00:00"}
    payload = parse_payload({**SCAN, "publish": True, "run": run})
    assert payload.run == RunPart("r-1", 2, 3, "2026-12-01T06:00:00+00:00")
    assert payload.run.started == datetime.datetime(2026, 12, 1, 6, tzinfo=datetime.UTC)
    assert parse_payload(payload.to_message()) == payload
    assert parse_payload({**SCAN, "publish": True}).run is None


@pytest.mark.parametrize(
    ("run", "publish", "field", "message"),
    [
        ({"id": "r", "part": 1, "parts": 1}, False, "run", "only a dispatcher's queued scans"),
        ([1], True, "run", "Input should be a valid dictionary"),
        ({"part": 1, "parts": 1}, True, "run.id", "Field required"),
        ({"id": "a|b", "part": 1, "parts": 1}, True, "run.id", "'a|b' is not a run id"),
        ({"id": "r", "parts": 1}, True, "run.part", "Field required"),
        ({"id": "r", "part": 0, "parts": 1}, True, "run.part", "a whole number from 1 to"),
        ({"id": "r", "part": True, "parts": 1}, True, "run.part", "a whole number from 1 to"),
        ({"id": "r", "part": 3, "parts": 2}, True, "run.part", "part 3 of 2 is past the last"),
        ({"id": "r", "part": 1, "parts": 1, "x": 1}, True, "run.x", "unknown field"),
        ({"id": "r", "part": 1, "parts": 1}, True, "run.started_at", "Field required"),
        ({**PART, "started_at": 1}, True, "run.started_at", "Input should be a valid string"),
        ({**PART, "started_at": "yesterday"}, True, "run.started_at", "not an ISO 8601 time"),
        # Without an offset it names no one instant.
        ({**PART, "started_at": "2026-12-01T06:00:00"}, True, "run.started_at", "with an offset"),
    ],
)
def test_a_bad_run_is_refused_naming_its_field(run, publish, field, message):
    with pytest.raises(PayloadError) as refused:
        parse_payload({**SCAN, "publish": publish, "run": run})
    assert refused.value.field == field and message in refused.value.message


# --- The dispatcher's side ---------------------------------------------------------------


TWO_REGIONS = {
    "action": "dispatch",
    "publish": True,
    "targets": [
        {"provider": "eks", "account": "123456789012", "region": region}
        for region in ("eu-west-1", "us-east-1")
    ],
}


def test_fan_out_records_the_run_before_handing_out_its_parts(tmp_path: Path):
    settings = Settings(state_store=f"sqlite:{tmp_path / 'state.sqlite3'}")
    scans = fan_out(parse_payload(TWO_REGIONS), settings, "run-a")
    progress = SqliteStateStore(tmp_path / "state.sqlite3").run_progress("run-a")
    assert (progress.parts, progress.finished) == (2, {})
    assert progress.started_at is not None
    started_at = progress.started_at.isoformat()
    assert [scan.run for scan in scans] == [
        RunPart("run-a", 1, 2, started_at),
        RunPart("run-a", 2, 2, started_at),
    ]


def test_fan_out_without_a_store_or_without_publishing_starts_no_run(tmp_path: Path):
    assert {scan.run for scan in fan_out(parse_payload(TWO_REGIONS), Settings(), "run-b")} == {None}
    quiet = {**TWO_REGIONS, "publish": False}
    settings = Settings(state_store=f"sqlite:{tmp_path / 'state.sqlite3'}")
    assert {scan.run for scan in fan_out(parse_payload(quiet), settings, "run-b")} == {None}
    assert not (tmp_path / "state.sqlite3").exists()


def test_a_run_the_store_cannot_record_queues_nothing(tmp_path: Path):
    (tmp_path / "state.sqlite3").mkdir()  # a directory where the database should be
    settings = Settings(state_store=f"sqlite:{tmp_path / 'state.sqlite3'}")
    with pytest.raises(DispatchError) as refused:
        fan_out(parse_payload(TWO_REGIONS), settings, "run-c")
    assert str(refused.value).startswith("run run-c not recorded, nothing queued: could not ")


# --- Each sink's own shape ----------------------------------------------------------------


MAIL = {"sender": "mutguard@example.com", "recipients": ["secops@example.com"]}
MESSAGE_SINKS = {
    "sqs": {"queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/mutguard"},
    "sns": {"topic_arn": "arn:aws:sns:eu-west-1:123456789012:mutguard"},
    "pubsub": {"topic": "projects/p/topics/mutguard"},
    "webhook": {},
    "azure-queue": {"queue": "mutguard"},
}


def a_digest() -> FleetDigest:
    store_reports = parts(with_denied=True)
    progress = RunProgress(
        parts=len(store_reports),
        started_at=START,
        finished={n: part_summary(r, {}, START) for n, r in enumerate(store_reports, start=1)},
    )
    return assemble("shapes", progress)


@pytest.mark.parametrize("kind", MESSAGE_SINKS)
def test_machine_sinks_carry_the_digest_as_one_json_body(kind: str):
    digest = a_digest()
    (sink,) = build_sinks([SinkSpec(kind, options=MESSAGE_SINKS[kind])], context())
    (item,) = sink.render_digest(digest)
    payload = item.payload
    body = payload.get("body") or payload.get("data") or json.loads(payload["content"])["message"]
    body = json.loads(body) if isinstance(body, str) else body
    assert (body["type"], body["run_id"]) == ("fleet_digest", "shapes")
    assert body["counts"]["not_scanned"] == 1 and body["counts"]["parts_not_finished"] == 0
    assert body["counts"]["clusters"] == 6 and body["counts"]["worse"] == 0
    assert item.summary == digest_subject(digest)


@pytest.mark.parametrize(
    ("kind", "options"), [("smtp", {**MAIL, "host": "127.0.0.1"}), ("ses", MAIL), ("teams", {})]
)
def test_people_sinks_word_the_digest(kind: str, options: dict):
    digest = a_digest()
    (sink,) = build_sinks([SinkSpec(kind, options=options)], context())
    (item,) = sink.render_digest(digest)
    text = json.dumps(item.payload)
    assert digest_subject(digest) in text and "Worst clusters" in text and DENIED in text


HUBS = {
    "securityhub": {
        "product_arn": "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"
    },
    "scc": {"source": "organizations/1/sources/2"},
}


@pytest.mark.parametrize("kind", HUBS)
def test_security_hubs_take_findings_and_no_digest(kind: str):
    options = {
        "product_arn": "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"
    }
    options = options if kind == "securityhub" else {"source": "organizations/1/sources/2"}
    (sink,) = build_sinks([SinkSpec(kind, options=options)], context())
    assert not hasattr(sink, "render_digest")


def context() -> SinkContext:
    redactor = Redactor()
    return SinkContext(SecretRefs(redactor), redactor)
