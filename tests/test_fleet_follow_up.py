"""The follow-up for a run whose part never finished: the next dispatch learns the run before it
from the store (`begin_run`), and a worker taking its `finish_run` message sends that run's
digest of what finished, once, naming the parts that did not.

The store-level tests run on every store kind's local server (the `new_store` fixture: SQLite
file, moto_server's DynamoDB, the GCS fake, Azurite's Table service); the end-to-end one goes
through the AWS dispatcher and worker on moto, as tests/test_functions_aws.py does. Runs start
an hour before the clock's now, since a follow-up leaves runs older than CLAIM_DAYS alone.
"""

from __future__ import annotations

import datetime
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import MakeStore
from test_fleet_digest import HOOK, WEBHOOK, digests, hook, parts
from test_functions_aws import (
    SLACK_HOOK,
    Lambda,
    dispatch,
    fn,
    scan_payloads,
    two_regions,
    work,
)

from mutguard import clock
from mutguard.functions.payload import PayloadError, RunToFinish, parse_payload
from mutguard.functions.runtime import Settings, fan_out
from mutguard.publish.fleet import (
    NOT_FINISHED_TITLE,
    assemble,
    digest_sections,
    digest_subject,
    finish_part,
    finish_run,
    part_summary,
)
from mutguard.publish.stores.sqlite import SqliteStateStore
from mutguard.store import CLAIM_DAYS, RunProgress

from servers.chat import ChatServer

__all__ = ["fn", "hook", "two_regions"]  # fixtures used here, defined with their own tests


def started() -> datetime.datetime:
    return clock.now() - datetime.timedelta(hours=1)


# --- The store's pointer to the run begun last ------------------------------------------------


def test_begin_run_names_the_run_before_it_while_that_digest_is_not_sent(new_store: MakeStore):
    assert new_store().begin_run("r1", 2, started()) is None  # the first run has none before it
    assert new_store().begin_run("r2", 2, started()) == "r1"
    new_store().digest_sent("r2")
    assert new_store().begin_run("r3", 2, started()) is None  # r2's digest went out
    new_store().digest_sent("r2")  # a later run has begun: nothing changes
    assert new_store().begin_run("r4", 2, started()) == "r3"


def test_a_retried_dispatch_keeps_the_pointer_to_the_run_before_it(new_store: MakeStore):
    first = started()
    new_store().begin_run("a", 3, first)
    assert new_store().begin_run("b", 3, first) == "a"
    # Retried, from another process: the same answer, and the first record stands.
    assert new_store().begin_run("b", 5, first + datetime.timedelta(minutes=2)) == "a"
    assert new_store().run_progress("b").parts == 3
    assert new_store().begin_run("c", 3, first) == "b"
    # Retried after the next run began: that run's dispatch asked about this one already.
    assert new_store().begin_run("b", 3, first) is None
    assert new_store().begin_run("d", 3, first) == "c"


def test_concurrent_dispatches_each_learn_another_run(new_store: MakeStore):
    new_store().begin_run("base", 1, started())
    runs = [f"t{i}" for i in range(4)]
    barrier = threading.Barrier(len(runs))

    def begin(run_id: str) -> str | None:
        store = new_store()
        barrier.wait()
        return store.begin_run(run_id, 1, started())

    with ThreadPoolExecutor(len(runs)) as pool:
        before = list(pool.map(begin, runs))
    # The pointer moved through every run once: each learned a different one, in one chain.
    assert len(set(before)) == len(runs) and set(before) <= {"base", *runs}
    (last,) = set(runs) - set(before)
    assert new_store().begin_run("after", 1, started()) == last


# --- The follow-up's digest -------------------------------------------------------------------


def test_a_follow_up_sends_once_naming_the_parts_that_did_not_finish(
    new_store: MakeStore, hook: ChatServer
):
    reports = parts(with_denied=True)  # four parts
    new_store().begin_run("stuck", 4, started())
    for part in (1, 3):
        assert (
            finish_part(new_store(), "stuck", part, started(), reports[part - 1], WEBHOOK) is None
        )
    sent = finish_run(new_store(), "stuck", WEBHOOK)
    assert sent is not None and [(r.ok, r.sent) for r in sent] == [(True, 1)]
    # Delivered again, and the parts that were stuck finishing late: the claim is taken.
    assert finish_run(new_store(), "stuck", WEBHOOK) is None
    assert finish_part(new_store(), "stuck", 2, started(), reports[1], WEBHOOK) is None
    assert finish_part(new_store(), "stuck", 4, started(), reports[3], WEBHOOK) is None
    (body,) = digests(hook)
    assert (body["run_id"], body["parts"]) == ("stuck", 4)
    assert body["counts"]["parts_not_finished"] == 2 and body["parts_not_finished"] == [2, 4]
    finished = [c for r in (reports[0], reports[2]) for c in r.clusters]
    assert body["counts"]["clusters"] == len(finished)
    # Its digest was sent: the next run asks for no follow-up.
    assert new_store().begin_run("next", 1, started()) is None


def test_a_follow_up_for_a_run_whose_digest_went_out_sends_nothing(
    new_store: MakeStore, hook: ChatServer
):
    reports = parts()
    new_store().begin_run("done", 3, started())
    sent = [
        finish_part(new_store(), "done", i, started(), reports[i - 1], WEBHOOK) for i in (1, 2, 3)
    ]
    assert sent[-1] is not None
    assert finish_run(new_store(), "done", WEBHOOK) is None
    assert [b["run_id"] for b in digests(hook)] == ["done"]
    assert digests(hook)[0]["counts"]["parts_not_finished"] == 0


def test_a_follow_up_a_sink_did_not_take_is_sent_when_delivered_again(
    new_store: MakeStore, hook: ChatServer
):
    new_store().begin_run("flaky", 2, started())
    finish_part(new_store(), "flaky", 1, started(), parts()[0], WEBHOOK)
    hook.fail(HOOK, 404, times=1, body="no such hook")
    first = finish_run(new_store(), "flaky", WEBHOOK)
    assert first is not None and [r.ok for r in first] == [False]
    again = finish_run(new_store(), "flaky", WEBHOOK)  # the claim was given back
    assert again is not None and [r.ok for r in again] == [True]
    assert [b["parts_not_finished"] for b in digests(hook)] == [[2]]


def test_a_follow_up_for_a_run_older_than_its_claims_sends_nothing(
    tmp_path: Path, hook: ChatServer
):
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    store.begin_run("old", 2, clock.now() - datetime.timedelta(days=CLAIM_DAYS, hours=1))
    assert finish_run(store, "old", WEBHOOK) is None
    assert finish_run(store, "never-recorded", WEBHOOK) is None
    assert digests(hook) == []


def test_people_read_which_parts_did_not_finish():
    numbers = range(1, 1001)
    finished = {
        part: part_summary(parts()[0], {}, started()) for part in numbers if part not in (3, 17)
    }
    digest = assemble("big", RunProgress(1000, started(), finished))
    assert digest_sections(digest)[0] == (
        NOT_FINISHED_TITLE,
        ["2 of 1000 parts did not finish: 3, 17"],
    )
    assert digest_subject(digest).endswith(", 2 of 1000 parts did not finish")


# --- The payload and the dispatcher -----------------------------------------------------------


FOLLOW_UP = {"action": "finish_run", "publish": True, "run": {"id": "run-1"}}


def test_a_follow_up_payload_reads_back_the_same():
    payload = parse_payload({**FOLLOW_UP, "sinks": ["slack"]})
    assert (payload.action, payload.run, payload.targets) == (
        "finish_run",
        RunToFinish("run-1"),
        [],
    )
    assert parse_payload(payload.to_message()) == payload


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"publish": False}, "publish", "a finish_run sends a digest: publish: true"),
        ({"run": None}, "run", "Field required"),
        ({"run": "run-1"}, "run", "Input should be a valid dictionary"),
        ({"run": {"id": "run-1", "part": 1}}, "run.part", "unknown field"),
        ({"run": {"id": "a b"}}, "run.id", "'a b' is not a run id"),
        (
            {"targets": [{"provider": "eks", "account": "123456789012"}]},
            "targets",
            "a finish_run scans nothing",
        ),
    ],
)
def test_a_bad_follow_up_is_refused_in_one_line_naming_its_field(changes, field, message):
    raw = {key: value for key, value in {**FOLLOW_UP, **changes}.items() if value is not None}
    with pytest.raises(PayloadError) as refused:
        parse_payload(raw)
    assert refused.value.field == field and message in refused.value.message
    assert "\n" not in str(refused.value)


TWO_REGIONS = {
    "action": "dispatch",
    "publish": True,
    "sinks": ["webhook"],
    "targets": [
        {"provider": "eks", "account": "123456789012", "region": region}
        for region in ("eu-west-1", "us-east-1")
    ],
}


def test_the_dispatch_after_a_stuck_run_queues_one_follow_up_after_its_scans(tmp_path: Path):
    settings = Settings(state_store=f"sqlite:{tmp_path / 'state.sqlite3'}")
    payload = parse_payload(TWO_REGIONS)
    assert [scan.action for scan in fan_out(payload, settings, "run-a")] == ["scan", "scan"]
    queued = fan_out(payload, settings, "run-b")
    assert [q.action for q in queued] == ["scan", "scan", "finish_run"]
    assert (queued[-1].run, queued[-1].sinks, queued[-1].publish) == (
        RunToFinish("run-a"),
        ["webhook"],
        True,
    )
    assert fan_out(payload, settings, "run-b")[-1].run == RunToFinish("run-a")  # retried
    SqliteStateStore(tmp_path / "state.sqlite3").digest_sent("run-b")
    assert [q.action for q in fan_out(payload, settings, "run-c")] == ["scan", "scan"]


# --- End to end on AWS ------------------------------------------------------------------------


def test_a_run_whose_part_never_finishes_gets_its_digest_from_the_next_dispatch(
    two_regions: Lambda,
):
    fn = two_regions
    assert dispatch()["dispatched"] == 2
    event = fn.queued_event()
    (lost,) = [r for r in event["Records"] if "eu-west-1" in r["body"]]
    (stuck_part,) = [p.run for p in scan_payloads({"Records": [lost]})]
    # The eu-west-1 message never finishes (it ends in the dead-letter queue); the other does.
    done = [r for r in event["Records"] if r is not lost]
    assert work({"Records": done}) == {"batchItemFailures": []}
    assert [h.split(" ")[0] for h in fn.slack_headers()] == ["web"]  # an alert, no digest

    # The next scheduled run queues its two scans and one follow-up for the stuck run.
    assert dispatch()["dispatched"] == 3
    event = fn.queued_event()
    follow_ups = [p for p in scan_payloads(event) if p.action == "finish_run"]
    assert [p.run for p in follow_ups] == [RunToFinish(stuck_part.id)]
    assert work(event) == {"batchItemFailures": []}
    sent = [h for h in fn.slack_headers() if h.startswith("mutguard fleet digest")]
    assert len(sent) == 2  # the stuck run's, and the new run's own
    (stuck,) = [h for h in sent if "did not finish" in h]
    assert stuck.endswith(", 1 of 2 parts did not finish")
    blocks = str([r.json()["blocks"] for r in fn.chat.delivered(SLACK_HOOK)])
    assert f"1 of 2 parts did not finish: {stuck_part.part}" in blocks

    # The lost message delivered after all: recorded, and the claim taken, so no second digest.
    assert work({"Records": [lost]}) == {"batchItemFailures": []}
    later = [h for h in fn.slack_headers() if h.startswith("mutguard fleet digest")]
    assert later == sent
    # Both digests went out: the dispatch after them asks for no follow-up.
    assert dispatch()["dispatched"] == 2
