"""A region whose EKS endpoint accepts connections but never answers costs the scan the region
deadline (--region-timeout), not botocore's timeouts times its retries: the region is an error
naming it, the other regions' clusters are reported. The same deadline bounds a GCP project's
and an Azure subscription's cluster list. The hung endpoint is a real socket (servers/hang.py)
in front of the cloud fakes."""

import copy
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from google.auth.credentials import AnonymousCredentials

from mutguard.cli import EXIT_PARTIAL, EXIT_USAGE
from mutguard.providers.aks_live import AksCollector, AzureOptions
from mutguard.providers.eks_live import AwsOptions, EksCollector
from mutguard.providers.gke_live import GcpOptions, GkeCollector
from mutguard.providers.tasks import Deadline, run_tasks
from mutguard.sources import ClusterSource, Provider, ScanError

from builders import FIXTURES, gke_cluster
from servers.aks import ArmServer
from servers.aws import DEFAULT_ACCOUNT, AwsFakes
from servers.gke import GkeServer
from servers.hang import HangingProxy

HUNG = "eu-west-3"
REGIONS = ("us-east-1", "eu-west-1", HUNG)
# Long enough for a region that answers to be read on a busy machine.
DEADLINE = 2
# What a scan may take beyond the deadline: the other regions' reads, and for the CLI the
# interpreter starting and importing boto3. Without the deadline it would take minutes.
MARGIN = 3


@pytest.fixture
def fleet(aws: AwsFakes):
    session = aws.session()
    aws.create_cluster(session, "us-east-1", "web", version="1.34")
    aws.create_cluster(session, "eu-west-1", "payments", version="1.34")
    aws.create_cluster(session, HUNG, "reports", version="1.34")
    aws.create_cluster(session, HUNG, "stuck", version="1.34")
    return aws


def hanging(fleet: AwsFakes, monkeypatch, **kwargs) -> HangingProxy:
    """EKS reached through a proxy that leaves the hung region's requests unanswered."""
    proxy = HangingProxy(fleet.eks_gap.url, regions=(HUNG,), **kwargs).start()
    monkeypatch.setitem(fleet.env, "AWS_ENDPOINT_URL_EKS", proxy.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EKS", proxy.url)
    return proxy


def collect(**options):
    options.setdefault("in_cluster", False)  # moto's endpoints are fake names: never dial them
    options.setdefault("max_attempts", 2)  # the abandoned calls give up soon after the test
    started = time.monotonic()
    items = list(EksCollector(AwsOptions(regions=REGIONS, **options)).collect())
    return items, time.monotonic() - started


def clusters(items):
    return {(item.name, item.location) for item in items if isinstance(item, ClusterSource)}


def errors(items):
    return [item for item in items if isinstance(item, ScanError)]


def test_cli_a_region_that_never_answers_costs_only_its_deadline(fleet, monkeypatch, tmp_path):
    proxy = hanging(fleet, monkeypatch)
    try:
        started = time.monotonic()
        done = subprocess.run(
            [
                *(sys.executable, "-m", "mutguard.cli", "scan", "--provider", "aws"),
                *("--skip-in-cluster", "--regions", ",".join(REGIONS)),
                *("--region-timeout", str(DEADLINE), "--format", "json"),
            ],
            env={**os.environ, **fleet.env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        took = time.monotonic() - started
    finally:
        proxy.stop()
    assert done.returncode == EXIT_PARTIAL, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert {(c["name"], c["location"]) for c in report["clusters"]} == {
        ("web", "us-east-1"),
        ("payments", "eu-west-1"),
    }
    assert report["errors"] == [
        {
            "scope": f"eks:{DEFAULT_ACCOUNT}:{HUNG}",
            "message": f"region {HUNG} did not answer within {DEADLINE} s",
        }
    ]
    assert proxy.requests_seen(HUNG) >= 1  # it was asked, and did not answer
    assert took < DEADLINE + MARGIN, f"the scan took {took:.1f} s"


def test_the_cli_hands_on_each_cluster_as_it_is_read(fleet, monkeypatch, tmp_path):
    """`mutguard snapshot` writes (and `mutguard scan` assesses) a cluster as soon as it is
    read: a region that keeps the scan waiting does not hold back the clusters already read."""
    proxy = hanging(fleet, monkeypatch)
    waiting = 60  # the hung region's deadline: the scan runs at least this long
    try:
        scan = subprocess.Popen(
            [
                *(sys.executable, "-m", "mutguard.cli", "snapshot", "--provider", "aws"),
                *("--skip-in-cluster", "--regions", ",".join(REGIONS)),
                *("--region-timeout", str(waiting), "--output", str(tmp_path)),
            ],
            env={**os.environ, **fleet.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            until = time.monotonic() + waiting / 2
            while time.monotonic() < until and len(list(tmp_path.glob("*/cluster.json"))) < 2:
                time.sleep(0.1)
            written = sorted(p.parent.name for p in tmp_path.glob("*/cluster.json"))
            assert scan.poll() is None  # still waiting for the hung region
        finally:
            scan.kill()
            scan.wait(timeout=30)
    finally:
        proxy.stop()
    assert len(written) == 2 and any("web" in name for name in written), written
    assert any("payments" in name for name in written), written


def test_clusters_read_before_the_region_hung_stay_reported(fleet, monkeypatch):
    """ListClusters and `reports` answer; every read of `stuck` hangs."""
    proxy = hanging(fleet, monkeypatch, path="/clusters/stuck(/.*)?")
    try:
        items, took = collect(region_timeout=DEADLINE)
    finally:
        proxy.stop()
    assert clusters(items) == {("web", "us-east-1"), ("payments", "eu-west-1"), ("reports", HUNG)}
    assert errors(items) == [
        ScanError(
            f"eks:{DEFAULT_ACCOUNT}:{HUNG}",
            f"region {HUNG} did not answer within {DEADLINE} s (1 of 2 cluster(s) read)",
        )
    ]
    assert took < DEADLINE + MARGIN


def test_a_trickling_region_is_cut_off_too(fleet, monkeypatch):
    """One header byte every 0.2 s keeps botocore's read timeout from ever firing."""
    proxy = hanging(fleet, monkeypatch, mode="trickle")
    try:
        items, took = collect(region_timeout=DEADLINE)
    finally:
        proxy.stop()
    assert clusters(items) == {("web", "us-east-1"), ("payments", "eu-west-1")}
    assert [error.scope for error in errors(items)] == [f"eks:{DEFAULT_ACCOUNT}:{HUNG}"]
    assert took < DEADLINE + MARGIN


@pytest.mark.parametrize("seconds", ["0", "-1", "nan"])
def test_the_region_timeout_must_be_more_than_zero(aws, seconds):
    done = subprocess.run(
        [
            *(sys.executable, "-m", "mutguard.cli", "scan", "--provider", "aws"),
            f"--region-timeout={seconds}",
        ],
        env={**os.environ, **aws.env},
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stderr, done.stdout) == (
        EXIT_USAGE,
        "mutguard: --region-timeout must be a number of seconds more than 0\n",
        "",
    )
    assert aws.eks_gap.requests_seen("*", ".*") == 0


def test_the_region_timeout_is_in_the_help():
    done = subprocess.run(
        [sys.executable, "-m", "mutguard.cli", "scan", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--region-timeout SECONDS" in done.stdout and "(default 60)" in done.stdout


@pytest.fixture
def no_proxy(monkeypatch):
    """A proxy configured on the machine must never see requests meant for 127.0.0.1."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def test_a_gke_project_that_trickles_is_named_and_the_others_reported(no_proxy):
    shop, hung = "shop-prod-1234", "hung-prod-5678"
    with GkeServer() as fake:
        fake.add_cluster(shop, gke_cluster("web", project=shop))
        fake.add_cluster(hung, gke_cluster("stuck", project=hung))
        with HangingProxy(fake.url, path=f"/v1/projects/{hung}/.*", mode="trickle") as proxy:
            options = GcpOptions(
                projects=(shop, hung),
                credentials=AnonymousCredentials(),
                container_client_options={"api_endpoint": proxy.url},
                in_cluster=False,
                project_timeout=1,
            )
            started = time.monotonic()
            items = list(GkeCollector(options).collect())
            took = time.monotonic() - started
    assert clusters(items) == {("web", "europe-west1-b")}
    assert errors(items) == [ScanError(f"gke:{hung}", f"project {hung} did not answer within 1 s")]
    assert took < 1 + MARGIN


class StaticToken:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("mutguard-test-token", int(time.time()) + 3600)


def test_an_azure_subscription_that_never_answers_is_named_and_the_others_reported(
    no_proxy, test_ca, tmp_path
):
    """azure-core would wait 300 s per read, and retry."""
    good, hung = "00000000-0000-0000-0000-000000000001", "9b3c1d2e-4f5a-4b6c-8d7e-0f1a2b3c4d5e"
    resource = json.loads((FIXTURES / "aks" / "managed-cluster.arm.json").read_text())
    moved = copy.deepcopy(resource)
    moved["id"], moved["name"] = resource["id"].replace(good, hung), "stuck"
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(test_ca.ca_pem)
    with ArmServer(test_ca, "mutguard-test-token") as arm:
        arm.add_cluster(good, resource)
        arm.add_cluster(hung, moved)
        with HangingProxy(arm.url, path=f"/subscriptions/{hung}/.*", tls=test_ca) as proxy:
            options = AzureOptions(
                subscriptions=(good, hung),
                credential=StaticToken(),
                base_url=proxy.url,
                connection_verify=str(ca_file),
                in_cluster=False,
                subscription_timeout=1,
            )
            started = time.monotonic()
            items = list(AksCollector(options).collect())
            took = time.monotonic() - started
    assert clusters(items) == {(resource["name"], resource["location"])}
    assert errors(items) == [
        ScanError(f"aks:{hung}", f"subscription {hung} did not answer within 1 s")
    ]
    assert took < 1 + MARGIN


# The pool itself, with tasks that wait on events instead of sockets.


def cluster(name):
    return ClusterSource(Provider.EKS, name)


def returning(*items, follow_ups=()):
    return lambda: (list(follow_ups), list(items))


def hanging_task(release: threading.Event, ran: list[str] | None = None, name: str = "hung"):
    def run():
        if ran is not None:
            ran.append(name)
        release.wait()
        return [], [cluster(name)]

    return run


def late(name):
    return lambda: [ScanError(name, "late")]


def test_a_late_task_costs_the_pool_neither_a_worker_nor_the_other_tasks():
    """One worker: the hung task's worker is replaced, the task queued behind it still runs,
    and the hung deadline's queued task is skipped."""
    release, ran = threading.Event(), []
    deadline = Deadline(0.3, late("region"))
    tasks = [
        deadline.bind(hanging_task(release, ran, "first")),
        returning(cluster("other")),
        deadline.bind(hanging_task(release, ran, "second")),
    ]
    try:
        started = time.monotonic()
        items = list(run_tasks(tasks, concurrency=1))
        took = time.monotonic() - started
    finally:
        release.set()
    assert items == [ScanError("region", "late"), cluster("other")]
    assert ran == ["first"]
    assert 0.3 <= took < 2


def test_time_spent_queued_does_not_count_against_a_deadline():
    deadline = Deadline(0.3, late("region"))

    def slow():
        time.sleep(0.5)
        return [], [cluster("slow")]

    tasks = [slow, deadline.bind(returning(cluster("quick")))]
    assert list(run_tasks(tasks, concurrency=1)) == [cluster("slow"), cluster("quick")]


def test_follow_ups_share_the_deadline_they_are_bound_to():
    release = threading.Event()
    deadline = Deadline(0.3, late("region"))
    listing = returning(
        follow_ups=[deadline.bind(returning(cluster("read"))), deadline.bind(hanging_task(release))]
    )
    progress = []
    try:
        items = list(
            run_tasks([deadline.bind(listing)], 4, lambda done, known: progress.append(done))
        )
    finally:
        release.set()
    assert sorted(map(repr, items)) == sorted(
        map(repr, [cluster("read"), ScanError("region", "late")])
    )
    assert progress[-1] == 3


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf")])
def test_a_deadline_is_a_finite_number_of_seconds(seconds):
    with pytest.raises(ValueError):
        Deadline(seconds, late("region"))
