"""Two `publish` runs of the same report at the same time send each alert once.

Both runs load the old state before either saves, so both see the same news; the claim each
run takes before sending (a conditional write in the state store) decides which one tells it.
For each store kind, on its local server (SQLite file, moto_server's DynamoDB, the GCS fake,
Azurite's Table service): 20 rounds, each a new report with news for one cluster, two notify()
runs started together (threads behind a Barrier), each with its own store object and its own
generic webhook sink delivering to the local receiver (servers/chat.py). Reports are dated in
2026 and claims are judged by the clock, so the suite runs with any date.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources
from pathlib import Path

import pytest
from azure.data.tables import TableClient
from conftest import AZURE_CONNECTION_ENV, MakeStore, no_waiting

from mutguard.cli import main
from mutguard.models import ClusterReport, Report, Status, cluster_key
from mutguard.providers import snapshot
from mutguard.publish import (
    EnvSecrets,
    Redactor,
    RunOutcome,
    SinkContext,
    SinkSpec,
    build_sinks,
    notify,
)
from mutguard.publish.pipeline import claim_keys
from mutguard.publish.stores.azure_table import AzureTableStateStore
from mutguard.publish.stores.sqlite import SqliteStateStore
from mutguard.scan import build_report
from mutguard.state import changes, next_state
from mutguard.store import ClaimKey, StateStore

from builders import varied
from servers.azurite import Azurite
from servers.chat import ChatServer
from servers.gcs import BUCKET, GcsServer

ROUNDS = 20
START = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
CLUSTER = "payments-legacy"
HOOK_SECRET = "claims-hmac-key-0123456789"


@cache
def demo_report() -> Report:
    return build_report(snapshot.read(Path(str(resources.files("mutguard") / "demo"))), START)


def demo_cluster() -> ClusterReport:
    return next(c for c in demo_report().clusters if c.name == CLUSTER)


def report_of_round(number: int) -> Report:
    """The demo's payments-legacy with one more failing finding, new in each round."""
    base = demo_cluster()
    template = next(f for f in base.findings if f.status is Status.FAIL)
    extra = varied(
        template,
        f"k8s.workload.claims_round_{number:02d}",
        resource=f"payments/pod-round-{number:02d}",
    )
    cluster = base.model_copy(update={"findings": [*base.findings, extra]})
    generated_at = START + datetime.timedelta(hours=number)
    return demo_report().model_copy(update={"clusters": [cluster], "generated_at": generated_at})


class Hook:
    """One run's webhook sink: its own route on the local receiver."""

    def __init__(self, chat: ChatServer, name: str) -> None:
        self.chat = chat
        self.path = f"/hook/{name}Secret{uuid.uuid4().hex}"

    def context(self) -> SinkContext:
        env = {
            "MUTGUARD_WEBHOOK_URL": self.chat.url + self.path,
            "MUTGUARD_WEBHOOK_SECRET": HOOK_SECRET,
        }
        return SinkContext(EnvSecrets(env), Redactor(), no_waiting())

    def sent(self, report: Report) -> list[str]:
        """Clusters of the messages delivered for this report."""
        messages = [r.json() for r in self.chat.delivered(self.path)]
        stamp = report.generated_at
        return [
            cluster["name"]
            for m in messages
            if datetime.datetime.fromisoformat(m["generated_at"]) == stamp
            for cluster in m["clusters"]
        ]


def first_claims(report: Report, digest: bool = False) -> list[ClaimKey]:
    """What a run of this report claims when the store holds no state yet."""
    return list(claim_keys(report, {}, next_state({}, report), changes({}, report), digest))


def run(store: StateStore, hook: Hook, report: Report, **options) -> RunOutcome:
    ctx = hook.context()
    return notify(report, store, build_sinks([SinkSpec("webhook")], ctx), ctx, **options)


def run_together(
    new_store: MakeStore, hooks: list[Hook], report: Report, **options
) -> list[RunOutcome]:
    """notify() in two threads released together, each with a store object of its own."""
    barrier = threading.Barrier(len(hooks))

    def one(hook: Hook) -> RunOutcome:
        store = new_store()
        barrier.wait(timeout=30)
        return run(store, hook, report, **options)

    with ThreadPoolExecutor(len(hooks)) as pool:
        return list(pool.map(one, hooks))


def test_two_runs_of_each_report_send_its_alert_once(new_store: MakeStore, chat: ChatServer):
    hooks = [Hook(chat, "runA"), Hook(chat, "runB")]
    key = cluster_key(demo_cluster())
    checker = new_store()
    left_to_the_other = 0
    for number in range(ROUNDS):
        report = report_of_round(number)
        previous = checker.load([key])
        assert any(c.has_news for c in changes(previous, report))

        outcomes = run_together(new_store, hooks, report)

        sent = [name for hook in hooks for name in hook.sent(report)]
        assert sent == [CLUSTER], f"round {number}"
        for outcome, hook in zip(outcomes, hooks, strict=True):
            assert outcome.ok and outcome.state_saved, f"round {number}"
            assert outcome.left_to_another_run in ((), (key,)), f"round {number}"
            if outcome.left_to_another_run:  # it left the alert, and sent nothing
                assert hook.sent(report) == [] and outcome.results[0].sent == 0
        left_to_the_other += sum(len(o.left_to_another_run) for o in outcomes)
        assert checker.load([key]) == next_state(previous, report), f"round {number}"
    # The runs did meet: most rounds, one of them found the alert claimed by the other.
    assert left_to_the_other > 0


def test_a_run_whose_sink_failed_releases_its_claim_and_the_next_run_sends(
    new_store: MakeStore, chat: ChatServer
):
    store = new_store()
    report = report_of_round(1)
    key = cluster_key(demo_cluster())
    hook = Hook(chat, "failing")
    chat.fail(hook.path, 400)  # refused: not retried

    failed = run(store, hook, report)
    assert not failed.ok and not failed.state_saved
    assert failed.left_to_another_run == ()
    assert hook.sent(report) == [] and store.load([key]) == {}

    again = run(new_store(), hook, report)
    assert again.ok and again.state_saved and again.left_to_another_run == ()
    assert hook.sent(report) == [CLUSTER]
    assert store.load([key]) == next_state({}, report)


def test_a_cluster_claimed_by_another_run_is_neither_sent_nor_saved(
    new_store: MakeStore, chat: ChatServer
):
    report = report_of_round(2)
    key = cluster_key(demo_cluster())
    claims = first_claims(report)
    assert [cluster for cluster, _ in claims] == [key]
    other = new_store()
    assert other.claim(claims) == set(claims)  # the other run is still sending

    hook = Hook(chat, "late")
    outcome = run(new_store(), hook, report)
    assert outcome.ok and outcome.left_to_another_run == (key,)
    assert hook.sent(report) == []
    assert other.load([key]) == {}  # the state is the other run's to save

    # Another report is another claim: the next run alerts as usual.
    later = report_of_round(3)
    outcome = run(new_store(), hook, later)
    assert outcome.left_to_another_run == () and hook.sent(later) == [CLUSTER]


def test_a_dry_run_claims_nothing(new_store: MakeStore, chat: ChatServer):
    report = report_of_round(4)
    hook = Hook(chat, "dry")
    outcome = run(new_store(), hook, report, dry_run=True)
    assert outcome.results[0].planned == 1 and outcome.results[0].sent == 0
    assert not outcome.state_saved and outcome.left_to_another_run == ()
    claims = first_claims(report)
    assert new_store().claim(claims) == set(claims)  # nobody held them


def test_a_claim_released_can_be_claimed_again_and_keys_are_independent(
    new_store: MakeStore,
):
    store = new_store()
    one = ("eks:123456789012:eu-west-1:shop/prod #1?", "2026-03-01T08:00:00+00:00")
    two = ("eks:123456789012:eu-west-1:shop/prod #1?", "2026-03-01T09:00:00+00:00")
    three = ("aks:sub:westeurope:shop", "2026-03-01T08:00:00+00:00")
    assert store.claim([one, two]) == {one, two}
    assert new_store().claim([one, two, three]) == {three}
    store.release([one])
    store.release([one])  # releasing twice is harmless
    assert new_store().claim([one, two]) == {one}
    assert store.claim([]) == set()


def test_delivered_marks_are_per_claim_and_seen_by_every_store_object(new_store: MakeStore):
    store = new_store()
    one = ("eks:123456789012:eu-west-1:shop/prod #1?", "run-0001/0123456789abcdef")
    two = ("eks:123456789012:eu-west-1:shop/prod #1?", "run-0002/0123456789abcdef")
    three = ("aks:sub:westeurope:shop", "run-0001/0123456789abcdef")
    assert store.claim([one, two, three]) == {one, two, three}
    assert new_store().delivered([one, two, three]) == set()
    store.mark_delivered([one, three])
    store.mark_delivered([one])  # marking again is harmless
    assert new_store().delivered([one, two, three]) == {one, three}
    assert new_store().delivered([]) == set()


# --- Parts of a scheduled run, delivered again -----------------------------------------------
# A Lambda worker killed (or timed out) after its sinks took the alerts but before it saved the
# states: SQS delivers the message again and another worker scans the part anew, into a report
# with a later generated_at. What the killed worker left in the store is made here with the
# store's own calls, as it made them: the claims of the part's first scan, and the mark.

RUN_PART = "4b1f0c8e-run/3"


def part_claims(report: Report, digest: bool = False) -> list[ClaimKey]:
    """What the first delivery of a part claimed, when the store held no state yet."""
    states, found = next_state({}, report), changes({}, report)
    return list(claim_keys(report, {}, states, found, digest, RUN_PART))


def killed_after_its_sinks(store: StateStore, report: Report, digest: bool = False) -> None:
    """What a part's first delivery left when it was killed after its sinks took what it sent
    and before it saved the states: its claims, marked delivered."""
    claims = part_claims(report, digest)
    assert store.claim(claims) == set(claims)
    store.mark_delivered(claims)


def scanned_later(report: Report, **later: float) -> Report:
    return report.model_copy(
        update={"generated_at": report.generated_at + datetime.timedelta(**later)}
    )


def test_a_part_delivered_again_after_its_alert_went_out_saves_without_sending(
    new_store: MakeStore, chat: ChatServer
):
    first = report_of_round(9)
    killed_after_its_sinks(new_store(), first)

    again = scanned_later(first, minutes=16)
    key = cluster_key(demo_cluster())
    hook = Hook(chat, "redelivered")
    outcome = run(new_store(), hook, again, run_part=RUN_PART)
    assert outcome.ok and outcome.state_saved and outcome.left_to_another_run == (key,)
    assert hook.sent(again) == [] and outcome.results[0].sent == 0
    assert new_store().load([key]) == next_state({}, again)

    # The run after it compares with that state: nothing new, nothing sent.
    later = scanned_later(again, days=1)
    assert run(new_store(), hook, later, run_part="next-run/3").results[0].sent == 0


def test_a_part_delivered_again_while_its_alert_is_unconfirmed_leaves_it_to_the_holder(
    new_store: MakeStore, chat: ChatServer
):
    """The holder is still sending, or died before its sinks took the alert: the state is not
    saved, so if the holder never saves it, the next run alerts."""
    first = report_of_round(10)
    claims = part_claims(first)
    assert new_store().claim(claims) == set(claims)

    again = scanned_later(first, minutes=16)
    key = cluster_key(demo_cluster())
    hook = Hook(chat, "unconfirmed")
    outcome = run(new_store(), hook, again, run_part=RUN_PART)
    assert outcome.ok and outcome.left_to_another_run == (key,)
    assert hook.sent(again) == [] and new_store().load([key]) == {}

    later = scanned_later(again, days=1)
    assert run(new_store(), hook, later, run_part="next-run/3").left_to_another_run == ()
    assert hook.sent(later) == [CLUSTER]


def test_a_digest_part_delivered_again_after_its_digest_went_out_sends_nothing(
    new_store: MakeStore, chat: ChatServer
):
    """A part in digest mode sends one digest of its clusters whatever their state: delivered
    again, it must not send that digest a second time, and another part still sends its own."""
    first = report_of_round(11)
    killed_after_its_sinks(new_store(), first, digest=True)

    again = scanned_later(first, minutes=16)
    key = cluster_key(demo_cluster())
    hook = Hook(chat, "digest-redelivered")
    outcome = run(new_store(), hook, again, digest=True, run_part=RUN_PART)
    assert outcome.ok and outcome.state_saved and outcome.left_to_another_run == (key,)
    assert hook.sent(again) == [] and outcome.results[0].sent == 0
    assert new_store().load([key]) == next_state({}, again)

    other_part = run(new_store(), hook, again, digest=True, run_part="4b1f0c8e-run/4")
    assert other_part.ok and hook.sent(again) == [CLUSTER]


# --- Digests ------------------------------------------------------------------------------


def test_two_digest_runs_of_one_report_send_one_digest(tmp_path: Path, chat: ChatServer):
    path = tmp_path / "state.sqlite3"
    hooks = [Hook(chat, "digestA"), Hook(chat, "digestB")]
    for number in range(ROUNDS):
        report = report_of_round(number)
        outcomes = run_together(lambda: SqliteStateStore(path), hooks, report, digest=True)
        sent = [name for hook in hooks for name in hook.sent(report)]
        assert sent == [CLUSTER], f"round {number}"
        assert all(o.ok and o.state_saved for o in outcomes)


def test_a_digest_claimed_by_another_run_is_left_to_it(tmp_path: Path, chat: ChatServer):
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    report = report_of_round(5)
    claims = first_claims(report, digest=True)
    assert [cluster for cluster, _ in claims] == ["digest"]
    assert store.claim(claims) == set(claims)
    hook = Hook(chat, "digest")
    outcome = run(store, hook, report, digest=True)
    assert outcome.ok and outcome.left_to_another_run == (cluster_key(demo_cluster()),)
    assert [r.sent for r in outcome.results] == [0] and hook.sent(report) == []
    assert store.load([cluster_key(demo_cluster())]) == {}


def test_the_webhook_messages_are_this_reports(chat: ChatServer, tmp_path: Path):
    """The receiver tells rounds apart by the message's generated_at (Hook.sent relies on it)."""
    hook = Hook(chat, "stamp")
    report = report_of_round(6)
    run(SqliteStateStore(tmp_path / "state.sqlite3"), hook, report)
    body = json.loads(chat.delivered(hook.path)[0].body)
    assert datetime.datetime.fromisoformat(body["generated_at"]) == report.generated_at


def test_scans_that_share_a_generated_at_but_differ_do_not_contend(
    new_store: MakeStore, chat: ChatServer
):
    """`--as-of` gives every scan of a day the same generated_at: a claim also names the
    change, so a later scan with other news still alerts."""
    hook = Hook(chat, "asof")
    first = report_of_round(7)
    second = report_of_round(8).model_copy(update={"generated_at": first.generated_at})
    assert run(new_store(), hook, first).left_to_another_run == ()
    outcome = run(new_store(), hook, second)
    assert outcome.ok and outcome.left_to_another_run == ()
    assert hook.sent(first) == [CLUSTER, CLUSTER]  # one message per scan


def test_azure_table_claims_are_entities_and_week_old_ones_are_dropped(azurite: Azurite):
    table = f"claims{uuid.uuid4().hex[:12]}"
    secrets = EnvSecrets({AZURE_CONNECTION_ENV: azurite.connection_string()})
    store = AzureTableStateStore(table, secrets=secrets, retry=no_waiting())
    old = ("eks:1:eu-west-1:shop/odd#key", "2026-03-01T08:00:00+00:00/0123456789abcdef")
    recent = ("digest", "2026-03-01T09:00:00+00:00/fedcba9876543210")
    assert store.claim([old, recent]) == {old, recent}  # creates the table too

    # Age one claim by 8 days (the clock is read here as the store reads it: any date works).
    client = TableClient.from_connection_string(azurite.connection_string(), table)
    old_row = "2026-03-01T08:00:00%2B00:00%2F0123456789abcdef|eks:1:eu-west-1:shop%2Fodd%23key"
    entity = client.get_entity("claim", old_row)
    entity["claimed_at"] = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=8)
    client.update_entity(entity)

    again = AzureTableStateStore(table, secrets=secrets, retry=no_waiting())
    assert again.claim([old, recent]) == {old}  # the week-old claim was dropped first
    assert sorted(e["RowKey"] for e in client.query_entities("PartitionKey eq 'claim'")) == [
        old_row,
        "2026-03-01T09:00:00%2B00:00%2Ffedcba9876543210|digest",
    ]


def test_the_cli_says_how_many_clusters_it_left_to_another_run(
    chat: ChatServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    as_of = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)  # what `--as-of 2026-03-01` means
    report = build_report(snapshot.read(Path(str(resources.files("mutguard") / "demo"))), as_of)
    state = tmp_path / "state.sqlite3"
    claims = first_claims(report)
    assert SqliteStateStore(state).claim(claims[:2]) == set(claims[:2])  # another run's

    hook = Hook(chat, "cli")
    config = tmp_path / "sinks.yaml"
    config.write_text("sinks:\n  - kind: webhook\n")
    monkeypatch.setenv("MUTGUARD_WEBHOOK_URL", chat.url + hook.path)
    monkeypatch.setenv("MUTGUARD_WEBHOOK_SECRET", HOOK_SECRET)
    args = ["demo", "--format", "json", "--as-of", "2026-03-01", "--state", str(state)]
    code = main([*args, "--publish", "webhook", "--publish-config", str(config)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "publish: 2 cluster(s) left to another run of this report" in err
    assert f"publish webhook: sent {len(claims) - 2} message(s)" in err


def test_a_store_that_cannot_claim_stops_the_run_before_anything_is_sent(
    gcs: GcsServer,
    chat: ChatServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    gcs.fail("POST", rf"/upload/storage/v1/b/{BUCKET}/o", 403)  # reads work, writes do not
    hook = Hook(chat, "denied")
    config = tmp_path / "sinks.yaml"
    config.write_text("sinks:\n  - kind: webhook\n")
    monkeypatch.setenv("MUTGUARD_WEBHOOK_URL", chat.url + hook.path)
    monkeypatch.setenv("MUTGUARD_WEBHOOK_SECRET", HOOK_SECRET)
    args = ["demo", "--format", "json", "--as-of", "2026-03-01", "--state-store", f"gcs:{BUCKET}"]
    code = main([*args, "--publish", "webhook", "--publish-config", str(config)])
    err = capsys.readouterr().err
    assert code == 4, err  # as for a state that cannot be read or saved: run again
    assert f"mutguard: could not claim alerts in the state: state store gcs:{BUCKET} " in err
    assert chat.delivered(hook.path) == []
