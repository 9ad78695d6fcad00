"""A scheduled run over a small AWS Organization, end to end as Lambda runs it: bench/fleet.py's
fleet (moto_server, the EKS gap server, the latency proxy; an organization whose members hold
clusters reached through sts:AssumeRole) and bench/lambda_sqs.py's event source mapping (worker
processes polling a real moto SQS queue with a dead-letter queue, partial batch failures,
redelivery after the visibility timeout).

4 accounts x 2 regions x 3 clusters, plus one member whose role cannot be assumed; 2 workers,
batches of 2, and worker 0 SIGKILLed at its first save of cluster states (its DynamoDB requests
go through tests/servers/holding_proxy.py, which holds that one unanswered): after the alerts of
its batch went out and before their states were stored, the worst moment for exactly once. The
other worker scans the batch again once it comes back, and must not alert those clusters again.
"""

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from fleet import FleetBench, KillAtSave, RunResult

ACCOUNTS = 4
REGIONS = ("us-east-1", "eu-west-1")
CLUSTERS_PER_REGION = 3
MAX_RECEIVE_COUNT = 2
# Longer than a batch of two scans takes on a busy machine, so that only the killed worker's
# and the failed messages come back.
VISIBILITY_TIMEOUT = 12


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    workdir = tmp_path_factory.mktemp("fleet")
    with FleetBench(ACCOUNTS, REGIONS, CLUSTERS_PER_REGION, 0.05, workdir, denied=1) as bench:
        return bench.run(
            workers=2,
            batch_size=2,
            visibility_timeout=VISIBILITY_TIMEOUT,
            max_receive_count=MAX_RECEIVE_COUNT,
            kill=KillAtSave(worker=0),
            timeout=120,
        )


def deliveries(run: RunResult) -> Counter[str]:
    """How many invocations each message reached (the killed worker's batch not counted)."""
    return Counter(m for i in run.consumption.invocations for m in i.messages)


def test_one_message_per_account_and_region_is_dispatched(run: RunResult):
    assert run.dispatched == (ACCOUNTS + 1) * len(REGIONS)
    assert len(deliveries(run)) == run.dispatched


def test_every_cluster_is_stored_and_alerted_exactly_once_despite_the_killed_worker(
    run: RunResult,
):
    # Without the kill at the save there is nothing for the claims to catch.
    assert run.save_held and run.consumption.killed, "worker 0 was not killed at its first save"
    assert len(run.expected) == ACCOUNTS * len(REGIONS) * CLUSTERS_PER_REGION
    assert run.stored == run.expected
    assert run.alerts == Counter(run.expected)
    assert not run.lost and not run.duplicates and not run.unexpected


def test_the_killed_workers_messages_were_redelivered_and_scanned_by_the_other(run: RunResult):
    killed = run.consumption.killed
    assert killed, "worker 0 was not killed holding a batch"
    for message in killed:
        later = [i for i in run.consumption.invocations if message in i.messages]
        assert later and {i.worker for i in later} == {1}
        assert min(i.receive_counts[i.messages.index(message)] for i in later) == 2
    assert run.consumption.redelivered >= len(killed)


def test_the_unassumable_accounts_messages_fail_alone_and_land_in_the_dead_letter_queue(
    run: RunResult,
):
    (denied,) = run.organization.denied
    assert run.dead_accounts() == [denied] * len(REGIONS)
    failed = Counter(m for i in run.consumption.invocations for m in i.failed)
    assert len(failed) == len(REGIONS)
    # Each failed on every delivery it got (the killed batch aside) and on no other message.
    assert all(failed[m] == deliveries(run)[m] for m in failed)
    assert all(count <= MAX_RECEIVE_COUNT for count in failed.values())
    # Reported as batch item failures, not as the function failing.
    assert not [i.error for i in run.consumption.invocations if i.error]
    for invocation in run.consumption.invocations:
        assert set(invocation.failed) <= set(failed)
    # A part whose account could not be read still finishes, its error recorded for the fleet
    # digest to name, so the run completes and its one digest goes out.
    assert run.digests == 1


def test_every_invocation_is_far_under_the_lambda_limit(run: RunResult):
    assert run.durations and max(run.durations) < 60
