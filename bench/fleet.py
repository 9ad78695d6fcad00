"""Benchmark: one scheduled run over an AWS Organization, fanned out the way Lambda runs it.

An organization of 100 accounts (the management account and 99 members, in moto_server's
Organizations) holds 10 EKS clusters in each of 10 regions: 10,000 clusters, made with
bench/eks_scan.py's settings (a third each in authentication modes CONFIG_MAP,
API_AND_CONFIG_MAP and API, access entries, an OIDC config) in each account through
sts:AssumeRole. EKS requests go through RegionProxy, which waits 50 ms before answering, as in
eks_scan.py, and answers a read it has answered before from memory (ListClusters excepted).

The deployed functions run as Lambda runs them (bench/lambda_sqs.py): the dispatcher, with
MUTGUARD_AWS_ORGANIZATIONS=true, lists the organization's accounts and queues one scan message
per account and region (1,000) on a real moto SQS queue with a dead-letter queue; W worker
processes, each a warm Lambda environment of the worker function, consume it as the event
source mapping does (batch size, the queue's visibility timeout, partial batch failures,
redelivery, maxReceiveCount). Each worker assumes MUTGUARD_ROLE_ARN in the message's account,
scans its region, and publishes: alerts to an SQS queue (the `sqs` sink) and each cluster's
state to a DynamoDB table (MUTGUARD_STATE_STORE), both fresh for every run.

The run's results: the clusters whose state the run stored (every cluster a worker scanned and
published, with or without findings; one item per cluster, so a duplicate cannot show there),
and the alerts on the sink queue (one message per cluster with news; a cluster alerted twice is
a duplicate the consumer would see), read and deleted as they arrive, as a consumer does (a
queue that keeps them all costs moto_server time that grows with its length on every call),
and the run's fleet digests on the same queue. Exactly once: every cluster stored, none lost,
no alert twice, nothing in the dead-letter queue, one fleet digest.

One run prints, for W = 1, 2, 4, 8 workers: the wall time from the dispatcher's start until the
queue is empty, the speed-up over the fewest workers run (W = 1 unless --workers leaves it
out), and two floors: the API floor (the messages W at a
time, each taking what plain boto3 making one message's EKS calls takes, eks_scan.py's floor
scan) and the CPU floor (the workers' CPU seconds over this machine's cores). Then each
message's duration (p50/p95/max) against Lambda's 15-minute limit, and a run in which one
worker is SIGKILLed in the middle of a batch: its messages come back after the visibility
timeout and another worker scans them; clusters expected / stored / alert duplicates / lost.
`FleetBench.run` can instead kill a worker at its first save of cluster states (`KillAtSave`,
which tests/test_fleet.py uses): after its alerts went out, before their states were stored.

Targets are reported, not enforced (the exit status is 0 unless the benchmark could not run or
a run lost a cluster). Run with `make bench` or `.venv/bin/python bench/fleet.py` (--help).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from eks_scan import (
    CONCURRENCY,
    LATENCY_SECONDS,
    REGIONS,
    BenchError,
    Fleet,
    cluster_settings,
    floor_scan,
    log,
    register_access,
)
from lambda_sqs import (
    LAMBDA_TIMEOUT_SECONDS,
    Consumption,
    HarnessError,
    Kill,
    Workers,
    WorkerSpec,
    in_flight,
    invoke,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mutguard.publish.fleet import DIGEST_TYPE  # noqa: E402

from servers.aws import DEFAULT_ACCOUNT, AwsFakes, aws_env  # noqa: E402
from servers.aws_clients import AwsClients  # noqa: E402
from servers.eks_gap import EksGapServer  # noqa: E402
from servers.eks_regions import RegionProxy  # noqa: E402
from servers.forwarding import ForwardingProxy  # noqa: E402
from servers.holding_proxy import HoldingProxy  # noqa: E402
from servers.moto import MotoServer  # noqa: E402
from servers.relay import Answer  # noqa: E402

ACCOUNTS = 100
CLUSTERS_PER_REGION = 10
WORKERS = (1, 2, 4, 8)
BATCH_SIZE = 1  # the Terraform module's event source mapping
# The module sets six times the worker timeout (an hour); a short one lets a killed worker's
# messages come back within the run.
VISIBILITY_TIMEOUT = 60
MAX_RECEIVE_COUNT = 3  # the module's default
KILL_AFTER = 0.3  # seconds into a batch
SETUP_THREADS = 16
DRAIN_TIMEOUT = 3 * 3600

READER_ROLE = "arn:aws:iam::{account}:role/mutguard-reader"
WORKER = "mutguard.functions.aws_lambda.worker:handler"
DISPATCHER = "mutguard.functions.aws_lambda.dispatcher:handler"
SCHEDULE_INPUT = {"action": "dispatch", "publish": True, "include_rbac": False}
RESULTS_SINK = "results"
# STS's answer when a role's trust policy keeps the caller out (moto_server never gives it).
ACCESS_DENIED = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    "<Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole on resource: "
    "{role}</Message></Error><RequestId>{request}</RequestId></ErrorResponse>"
)


# --- a role that cannot be assumed -----------------------------------------------------------


class RoleGate(ForwardingProxy):
    """STS in front of moto that refuses AssumeRole of the roles given, as STS does when a
    role's trust policy does not let the caller in; every other request goes to moto."""

    def __init__(self, moto_url: str, denied: set[str]) -> None:
        super().__init__(moto_url)
        self.denied = denied

    def answer(
        self, command: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Answer | None:
        query = parse_qs(body.decode(errors="replace"))
        role = query.get("RoleArn", [""])[0]
        if query.get("Action") == ["AssumeRole"] and role in self.denied:
            refusal = ACCESS_DENIED.format(role=role, request=uuid.uuid4()).encode()
            return Answer(403, "Forbidden", [("Content-Type", "text/xml")], refusal)
        return super().answer(command, target, headers, body)


# --- the organization and its clusters -------------------------------------------------------


@dataclass
class Organization:
    accounts: list[str]  # the management account first
    regions: tuple[str, ...]
    clusters: dict[tuple[str, str], list[str]]  # (account, region) -> cluster names
    denied: list[str] = field(default_factory=list)  # members whose role cannot be assumed

    @property
    def size(self) -> int:
        return sum(len(names) for names in self.clusters.values())

    @property
    def messages(self) -> int:
        """Scan messages a dispatch queues: one per active account and region."""
        return (len(self.accounts) + len(self.denied)) * len(self.regions)

    @property
    def keys(self) -> set[str]:
        """The report's cluster keys (mutguard.models.cluster_key) of every cluster."""
        return {
            f"eks:{account}:{region}:{name}"
            for (account, region), names in self.clusters.items()
            for name in names
        }


def cluster_name(account_index: int, region: str, index: int) -> str:
    return f"a{account_index:03d}-{region}-c{index:02d}"


def create_organization(accounts: int, denied: int) -> tuple[list[str], list[str]]:
    """The organization: the management account and `accounts - 1` members with clusters, then
    `denied` members without; their ids."""
    organizations = boto3.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    members = [
        organizations.create_account(Email=f"team{i}@example.com", AccountName=f"team{i}")[
            "CreateAccountStatus"
        ]["AccountId"]
        for i in range(accounts - 1 + denied)
    ]
    return [DEFAULT_ACCOUNT, *members[: accounts - 1]], members[accounts - 1 :]


def create_clusters(
    fakes: AwsFakes, proxy: RegionProxy, accounts: list[str], regions: tuple[str, ...], per: int
) -> dict[tuple[str, str], list[str]]:
    """Each account's clusters, created straight in moto with the account's own credentials,
    then read once through the proxy, which keeps the answers."""
    base = boto3.Session()
    config = Config(max_pool_connections=SETUP_THREADS, retries={"mode": "standard"})
    clients: dict[tuple[str, str], tuple[Any, Any]] = {}
    for account in accounts:
        credentials = fakes.session(account).get_credentials()
        keys = {
            "aws_access_key_id": credentials.access_key,
            "aws_secret_access_key": credentials.secret_key,
            "aws_session_token": credentials.token,
        }
        for region in regions:
            direct = base.client(
                "eks", region_name=region, endpoint_url=fakes.moto.url, config=config, **keys
            )
            proxied = base.client("eks", region_name=region, config=config, **keys)
            clients[account, region] = (direct, proxied)
    clusters = {
        (account, region): [cluster_name(a, region, i) for i in range(per)]
        for a, account in enumerate(accounts)
        for region in regions
    }

    def create(account: str, region: str, index: int) -> None:
        name = clusters[account, region][index]
        clients[account, region][0].create_cluster(
            name=name, **cluster_settings(region, index, account)
        )
        register_access(fakes.eks_gap, proxy, region, name, index, account)

    def remember(account: str, region: str, index: int) -> None:
        clients[account, region][1].describe_cluster(name=clusters[account, region][index])

    proxy.remember_reads()
    every = [(a, r, i) for a in accounts for r in regions for i in range(per)]
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        for step in (create, remember):
            for future in [pool.submit(step, *cluster) for cluster in every]:
                future.result()
    return clusters


# --- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillAtSave:
    """SIGKILL worker `worker` at its first save of cluster states: its DynamoDB requests go
    through a HoldingProxy, which holds that BatchWriteItem unanswered, so the worker dies after
    its batch's alerts went out and before their states were stored."""

    worker: int = 0


@dataclass
class RunResult:
    organization: Organization
    workers: int
    dispatched: int
    consumption: Consumption
    stored: set[str]
    alerts: Counter[str]  # sink messages per cluster key
    digests: int  # fleet digests on the sink queue
    dead_letters: list[dict[str, Any]]  # the scan payloads in the dead-letter queue
    save_held: bool = False  # a KillAtSave's worker reached its first save of cluster states

    @property
    def expected(self) -> set[str]:
        return self.organization.keys

    @property
    def lost(self) -> set[str]:
        return self.expected - self.stored

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.alerts.values() if count > 1)

    @property
    def unexpected(self) -> set[str]:
        return (self.stored | set(self.alerts)) - self.expected

    @property
    def durations(self) -> list[float]:
        return [i.seconds for i in self.consumption.invocations]

    @property
    def cpu_seconds(self) -> float:
        return sum(i.cpu_seconds for i in self.consumption.invocations)

    @property
    def exactly_once(self) -> bool:
        return (
            not (self.lost or self.duplicates or self.unexpected or self.dead_letters)
            and self.digests == 1
        )

    def dead_accounts(self) -> list[str]:
        return sorted(t["account"] for body in self.dead_letters for t in body["targets"])


class FleetBench:
    """The servers, the organization and its clusters; `run()` is one scheduled run."""

    def __init__(
        self,
        accounts: int,
        regions: tuple[str, ...],
        per_region: int,
        latency: float,
        workdir: Path,
        denied: int = 0,
    ) -> None:
        self.workdir = workdir
        self._size = (accounts, regions, per_region, denied)
        self.latency = latency
        self._stack = ExitStack()
        self._runs = 0

    def __enter__(self) -> Self:
        accounts, regions, per_region, denied = self._size
        saved = dict(os.environ)
        self._stack.callback(lambda: (os.environ.clear(), os.environ.update(saved)))
        # Nothing from this machine's AWS setup (profiles, CA bundle, endpoints) may leak in.
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            del os.environ[name]
        try:
            moto = self._stack.enter_context(MotoServer())
            gap = self._stack.enter_context(EksGapServer(moto.url))
            self.proxy = self._stack.enter_context(RegionProxy(gap.url))
            self.env = aws_env(moto.url, self.proxy.url, self.workdir)
            os.environ.update(self.env)
            self.fakes = AwsFakes(moto, gap, self.env)
            self.cloud = AwsClients(self.fakes)
            started = time.monotonic()
            members, refused = create_organization(accounts, denied)
            if refused:
                roles = {READER_ROLE.format(account=account) for account in refused}
                gate = self._stack.enter_context(RoleGate(moto.url, roles))
                self.env["AWS_ENDPOINT_URL_STS"] = gate.url
            clusters = create_clusters(self.fakes, self.proxy, members, regions, per_region)
            self.organization = Organization(members, regions, clusters, refused)
            self.setup_seconds = time.monotonic() - started
            self.proxy.latency(self.latency)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run(
        self,
        workers: int,
        batch_size: int = BATCH_SIZE,
        visibility_timeout: int = VISIBILITY_TIMEOUT,
        max_receive_count: int = MAX_RECEIVE_COUNT,
        kill: Kill | KillAtSave | None = None,
        timeout: float = DRAIN_TIMEOUT,
    ) -> RunResult:
        """A scheduled run: fresh queues and state table, W workers polling, the dispatcher
        invoked, then the queue drained (killing a worker on the way if `kill` says so); what
        the run stored and alerted."""
        self._runs += 1
        label = f"run{self._runs}"
        sqs = self.cloud.sqs
        dead_letter = self.cloud.create_queue(f"scan-{label}-dlq")
        dead_letter_arn = queue_arn(sqs, dead_letter)
        redrive = {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receive_count}
        queue = self.cloud.create_queue(
            f"scan-{label}",
            VisibilityTimeout=str(visibility_timeout),
            RedrivePolicy=json.dumps(redrive),
        )
        results = self.cloud.create_queue(f"results-{label}")
        table = f"state-{label}"
        self.cloud.create_state_table(table)
        organization = self.organization
        sinks = {
            "sinks": [{"kind": "sqs", "name": RESULTS_SINK, "options": {"queue_url": results}}]
        }
        function = {
            **self.env,
            "AWS_REGION": self.env["AWS_DEFAULT_REGION"],
            "MUTGUARD_QUEUE_URL": queue,
            "MUTGUARD_ROLE_ARN": READER_ROLE,
            "MUTGUARD_AWS_ORGANIZATIONS": "true",
            "MUTGUARD_REGIONS": ",".join(organization.regions),
            "MUTGUARD_SINKS": RESULTS_SINK,
            "MUTGUARD_SINKS_CONFIG": json.dumps(sinks),
            "MUTGUARD_STATE_STORE": f"dynamodb:{table}",
        }
        logs = self.workdir / label
        logs.mkdir()
        environments = [dict(function) for _ in range(workers)]
        region, account = self.env["AWS_DEFAULT_REGION"], DEFAULT_ACCOUNT
        with ExitStack() as stack:
            holder: HoldingProxy | None = None
            if isinstance(kill, KillAtSave):
                holder = stack.enter_context(HoldingProxy(self.fakes.moto.url))
                environments[kill.worker]["AWS_ENDPOINT_URL_DYNAMODB"] = holder.url
                kill = Kill(worker=kill.worker, when=holder.held)
            specs = [
                WorkerSpec(
                    queue_url=queue,
                    queue_arn=queue_arn(sqs, queue),
                    handler=WORKER,
                    batch_size=batch_size,
                    environment=environment,
                    report=logs / f"worker{w}.jsonl",
                    log=logs / f"worker{w}.log",
                )
                for w, environment in enumerate(environments)
            ]
            pool = stack.enter_context(Workers(specs))
            sink = stack.enter_context(SinkReader(sqs, results))
            dispatch = invoke(
                DISPATCHER,
                SCHEDULE_INPUT,
                function,
                logs / "dispatcher.log",
                f"arn:aws:lambda:{region}:{account}:function:mutguard-dispatcher",
            )
            answer = dispatch["answer"]
            if answer.get("statusCode") != 200:
                raise BenchError(f"the dispatcher answered {answer}")
            consumption = pool.drain(sqs, queue, dispatch["started"], timeout, kill)
        return RunResult(
            organization=organization,
            workers=workers,
            dispatched=answer["dispatched"],
            consumption=consumption,
            stored=self.stored_clusters(table),
            alerts=sink.alerts,
            digests=sink.digests,
            dead_letters=[json.loads(m["Body"]) for m in every_message(sqs, dead_letter)],
            save_held=holder is not None and holder.held.is_set(),
        )

    def stored_clusters(self, table: str) -> set[str]:
        pages = self.cloud.dynamodb.get_paginator("scan").paginate(
            TableName=table, ProjectionExpression="cluster_key"
        )
        keys = (item["cluster_key"]["S"] for page in pages for item in page["Items"])
        # Keys starting with "#" are the store's own items (suppressions, publish claims).
        return {key for key in keys if not key.startswith("#")}

    def api_floor(self, samples: int = 5) -> float:
        """Median seconds plain boto3 takes to make one message's EKS calls (one region of the
        management account, eks_scan.py's floor scan, CONCURRENCY threads)."""
        regions = self.organization.regions[:samples]
        seconds = []
        for region in regions:
            names = self.organization.clusters[DEFAULT_ACCOUNT, region]
            seconds.append(floor_scan(Fleet((region,), {region: names}), CONCURRENCY)["calls"])
        return statistics.median(seconds)


def queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    arn: str = attributes["Attributes"]["QueueArn"]
    return arn


class SinkReader:
    """The sink queue's consumer: a thread that receives its messages as they arrive, counts
    the alerts per cluster and the fleet digests, and deletes them; on leaving, it reads until
    the queue is empty."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs, self.url = sqs, url
        self.alerts: Counter[str] = Counter()
        self.digests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="sink-reader", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise BenchError(f"reading the sink queue failed: {self._error}")

    def _read(self) -> None:
        try:
            while self._receive() or not self._stop.is_set() or in_flight(self.sqs, self.url):
                pass
        except (BotoCoreError, ClientError) as err:
            self._error = err

    def _receive(self) -> bool:
        """One receive: True when it held messages."""
        batch = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        for message in batch:
            if is_alert(message):
                self.alerts[alert_key(message)] += 1
            elif is_digest(message):
                self.digests += 1
        if batch:
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ]
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
        return bool(batch)


def every_message(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message of a queue, each once: received and kept invisible, not deleted."""
    received: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=43200,
        MessageAttributeNames=["All"],
    ).get("Messages", []):
        received += batch
    return received


def is_alert(message: dict[str, Any]) -> bool:
    """A cluster's message (mutguard.publish.messages), not some other kind the sink sends."""
    return "cluster" in message.get("MessageAttributes", {})


def is_digest(message: dict[str, Any]) -> bool:
    """A scheduled run's fleet digest (mutguard.publish.fleet)."""
    kind = message.get("MessageAttributes", {}).get("type", {})
    return kind.get("StringValue") == DIGEST_TYPE


def alert_key(message: dict[str, Any]) -> str:
    """The cluster key of a cluster's alert on the sink queue, from its message attributes."""
    attributes = message["MessageAttributes"]
    parts = ("provider", "account", "location", "cluster")
    return ":".join(attributes[name]["StringValue"] for name in parts)


# --- the report ------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def describe(result: RunResult) -> str:
    return (
        f"{len(result.expected)} expected, {len(result.stored & result.expected)} stored, "
        f"{sum(result.alerts.values())} alerts for {len(result.alerts)} clusters, "
        f"{result.duplicates} duplicate alerts, {len(result.lost)} lost, "
        f"{len(result.dead_letters)} in the dead-letter queue, {result.digests} fleet digest(s)"
    )


def check(label: str, result: RunResult, messages: int) -> None:
    problems = []
    if result.dispatched != messages:
        problems.append(f"dispatched {result.dispatched} messages, expected {messages}")
    if not result.exactly_once:
        problems.append(describe(result))
    if errors := [i.error for i in result.consumption.invocations if i.error]:
        problems.append(f"{len(errors)} invocations failed: {errors[0]}")
    if problems:
        raise BenchError(f"{label}: " + "; ".join(problems))


def run(args: argparse.Namespace) -> None:
    regions = REGIONS[: args.regions]
    with (
        tempfile.TemporaryDirectory(prefix="mutguard-fleet-") as tmp,
        FleetBench(args.accounts, regions, args.clusters_per_region, args.latency, Path(tmp)) as b,
    ):
        organization = b.organization
        log("mutguard fleet benchmark: a scheduled run over an AWS Organization")
        log(
            f"setup: {len(organization.accounts)} accounts x {len(regions)} regions x "
            f"{args.clusters_per_region} clusters = {organization.size} clusters, created through "
            f"AssumeRole into each account and read once in {b.setup_seconds:.0f} s; every EKS "
            f"request now waits {args.latency * 1000:.0f} ms"
        )
        log(
            f"each run: the dispatcher queues {organization.messages} messages (one per account "
            f"and region); workers take batches of {args.batch_size}, visibility timeout "
            f"{args.visibility_timeout} s, maxReceiveCount {MAX_RECEIVE_COUNT}"
        )
        floor = b.api_floor()
        log(f"one message's EKS calls in plain boto3 (the API floor of a message): {floor:.2f} s")
        log()
        results: dict[int, RunResult] = {}
        for workers in args.workers:
            result = b.run(workers, args.batch_size, args.visibility_timeout)
            check(f"W={workers}", result, organization.messages)
            results[workers] = result
            log(
                f"W={workers}: {result.consumption.seconds:7.1f} s wall, "
                f"{result.cpu_seconds:6.0f} s worker CPU, load average {os.getloadavg()[0]:.1f} "
                f"(the machine is shared); {describe(result)}"
            )
        kill = Kill(worker=0, after=args.kill_after)
        killed = b.run(args.kill_workers, args.batch_size, args.visibility_timeout, kill=kill)
        log(f"W={args.kill_workers}, worker 0 killed mid-batch: {describe(killed)}")
        log()

        first = min(results)
        cores = os.cpu_count() or 1
        log(f"wall time from the dispatcher's start until the queue is empty ({cores} cores):")
        # Measured against the fewest workers run, not extrapolated to W=1 from them.
        log(f"  W   wall s   speed-up over W={first}   per worker   API floor s   CPU floor s")
        for workers, result in results.items():
            wall = result.consumption.seconds
            speedup = results[first].consumption.seconds / wall
            api = math.ceil(organization.messages / workers) * floor
            cpu = result.cpu_seconds / min(workers, cores)
            log(
                f"  {workers:<3} {wall:7.1f}   {speedup:15.2f}x   {speedup * first / workers:10.0%}"
                f"   {api:10.1f}   {cpu:10.1f}"
            )
        durations = [d for r in [*results.values(), killed] for d in r.durations]
        worst = max(durations)
        log()
        log(
            f"per invocation ({args.batch_size} message(s) each), {len(durations)} invocations: "
            f"p50 {percentile(durations, 0.5):.2f} s, p95 {percentile(durations, 0.95):.2f} s, "
            f"max {worst:.2f} s; Lambda's limit {LAMBDA_TIMEOUT_SECONDS} s: the slowest used "
            f"{worst / LAMBDA_TIMEOUT_SECONDS:.2%} of it, a margin of "
            f"{LAMBDA_TIMEOUT_SECONDS - worst:.0f} s ({LAMBDA_TIMEOUT_SECONDS / worst:.0f}x)"
        )
        log()
        log(
            f"kill injection (W={args.kill_workers}, worker 0 SIGKILLed {args.kill_after} s into "
            "a batch):"
        )
        log(
            f"  killed holding {len(killed.consumption.killed)} message(s); "
            f"{killed.consumption.redelivered} redelivered after the visibility timeout"
        )
        log(
            f"  clusters expected {len(killed.expected)}, stored {len(killed.stored)}, "
            f"alert duplicates {killed.duplicates}, lost {len(killed.lost)}, "
            f"dead-lettered {len(killed.dead_letters)}: "
            + ("every cluster exactly once" if killed.exactly_once else "NOT exactly once")
        )
        check("the kill run", killed, organization.messages)
        if not killed.consumption.killed:
            raise BenchError("the worker finished its batch before it could be killed")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--regions", type=int, default=len(REGIONS), choices=range(1, 11))
    parser.add_argument("--clusters-per-region", type=int, default=CLUSTERS_PER_REGION)
    parser.add_argument("--latency", type=float, default=LATENCY_SECONDS, metavar="SECONDS")
    parser.add_argument(
        "--workers",
        type=lambda text: sorted({int(w) for w in text.split(",")}),
        default=list(WORKERS),
        help="comma-separated worker counts (default 1,2,4,8)",
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, choices=range(1, 11))
    parser.add_argument("--visibility-timeout", type=int, default=VISIBILITY_TIMEOUT)
    parser.add_argument("--kill-workers", type=int, default=None, help="default: the most W")
    parser.add_argument("--kill-after", type=float, default=KILL_AFTER, metavar="SECONDS")
    args = parser.parse_args()
    args.kill_workers = args.kill_workers or max(args.workers)
    return args


def main() -> int:
    args = parse_args()
    try:
        run(args)
    except (BenchError, HarnessError, BotoCoreError, ClientError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
