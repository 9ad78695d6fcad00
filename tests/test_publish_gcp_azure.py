"""Google Pub/Sub and Azure Storage Queue sinks and the Azure Table state store, against real
local servers: a gRPC google.pubsub.v1.Publisher reached by the real PublisherClient through
PUBSUB_EMULATOR_HOST, and Azurite (from npm) for queues and tables.

Retry delays never pass in real time: the policy's sleep records the requested waits.
"""

import base64
import datetime
import json
import os
import shutil
import subprocess
import sys
import uuid
from functools import cache
from hashlib import sha256
from importlib import resources
from pathlib import Path

import grpc
import jsonschema
import pytest
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from mutguard.errors import InputError, StoreError
from mutguard.models import SCHEMA_VERSION, ClusterReport, Report, Severity, Status
from mutguard.providers import snapshot
from mutguard.publish import (
    ConfigurationError,
    EnvSecrets,
    Redactor,
    RetryPolicy,
    RunOutcome,
    SinkContext,
    SinkResult,
    SinkSpec,
    build_sinks,
    notify,
    publish,
)
from mutguard.publish.messages import message_size
from mutguard.publish.stores import open_store
from mutguard.publish.stores.azure_table import AzureTableStateStore, row_key
from mutguard.scan import build_report
from mutguard.state import ClusterState, FindingState, Mut, changes

from builders import NEWS_CLUSTERS, cluster_role_binding, varied
from servers.azurite import ACCOUNT_KEY, Azurite
from servers.chat import ChatServer
from servers.pubsub import TOPIC, PubSubServer

MESSAGE_SCHEMA = Path(__file__).parents[1] / "schemas" / "message.schema.json"
CONNECTION_ENV = "MUTGUARD_AZURE_STORAGE_CONNECTION_STRING"
GENERATED_AT = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
QUEUE_LIMIT = 64 * 1024


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


@cache
def schema() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(MESSAGE_SCHEMA.read_text()))


def big_cluster(count: int) -> ClusterReport:
    """payments-legacy with `count` failing findings, each with a long detail."""
    base = next(c for c in demo_report().clusters if c.name == "payments-legacy")
    template = next(f for f in base.findings if f.status is Status.FAIL)
    findings = [
        varied(
            template,
            f"k8s.workload.privileged_{i:03d}",
            severity=Severity.CRITICAL if i % 3 == 0 else Severity.HIGH,
            resource=f"payments/pod-{i:03d}-" + "x" * 120,
            detail="container runs privileged <and> mounts the host's / & more " * 8,
            mut_gain=1,
        )
        for i in range(count)
    ]
    return base.model_copy(update={"findings": findings})


def one_cluster_report(cluster: ClusterReport) -> Report:
    return demo_report().model_copy(update={"clusters": [cluster]})


def context(env: dict[str, str], waits: Waits | None = None) -> SinkContext:
    policy = RetryPolicy(sleep=(waits or Waits()).sleep, jitter=lambda delay: delay)
    return SinkContext(secrets=EnvSecrets(env), redactor=Redactor(), retry=policy)


def send(
    specs: list[SinkSpec], ctx: SinkContext, report: Report | None = None
) -> dict[str, SinkResult]:
    report = report or demo_report()
    results = publish(report, changes({}, report), build_sinks(specs, ctx), ctx)
    return {r.sink: r for r in results}


def pubsub_spec(**options) -> SinkSpec:
    return SinkSpec("pubsub", options={"topic": TOPIC, **options})


@pytest.fixture
def queue(azurite: Azurite) -> str:
    """A new, empty queue of this test's own."""
    name = f"alerts-{uuid.uuid4().hex[:12]}"
    QueueClient.from_connection_string(azurite.connection_string(), name).create_queue()
    return name


@pytest.fixture
def table_name() -> str:
    return f"state{uuid.uuid4().hex[:12]}"


def queue_spec(queue: str, **options) -> SinkSpec:
    return SinkSpec("azure-queue", options={"queue": queue, **options})


def take(azurite: Azurite, queue: str, decode: bool = True) -> list[str]:
    """Every message in the queue, in order, removed from it; as stored (Base64) unless decoded."""
    client = QueueClient.from_connection_string(
        azurite.connection_string(),
        queue,
        message_decode_policy=TextBase64DecodePolicy() if decode else None,
    )
    messages = list(client.receive_messages(messages_per_page=32))
    for message in messages:
        client.delete_message(message)
    return [m.content for m in messages]


def envelopes(azurite: Azurite, queue: str) -> list[dict]:
    return [json.loads(text) for text in take(azurite, queue)]


# --- Pub/Sub ------------------------------------------------------------------------------


def test_pubsub_publishes_each_cluster_with_string_attributes(pubsub: PubSubServer):
    result = send([pubsub_spec()], context({}))["pubsub"]
    assert (result.ok, result.sent, result.error) == (True, 6, None)
    published = pubsub.published
    assert {p.topic for p in published} == {TOPIC}
    bodies = [json.loads(p.data) for p in published]
    for body in bodies:
        schema().validate(body)
    assert [b["clusters"][0]["name"] for b in bodies] == NEWS_CLUSTERS
    legacy = published[2].attributes
    assert legacy == {
        "schema_version": SCHEMA_VERSION,
        "provider": "eks",
        "cluster": "payments-legacy",
        "account": "111111111111",
        "location": "eu-west-1",
        "severity": "critical",
        "change": "new",
        "part": "1",
        "parts": "1",
        "mut": "0",
        "mut_lowest": "0",
    }


def test_pubsub_splits_a_big_cluster_into_parts_each_a_valid_message(pubsub: PubSubServer):
    report = one_cluster_report(big_cluster(60))
    result = send([pubsub_spec(max_bytes=16 * 1024)], context({}), report)["pubsub"]
    parts = pubsub.published
    assert result.ok and result.sent == len(parts) > 1
    for part in parts:
        schema().validate(json.loads(part.data))
        assert message_size(part.data.decode(), part.attributes) <= 16 * 1024
    assert [(p.attributes["part"], p.attributes["parts"]) for p in parts] == [
        (str(i), str(len(parts))) for i in range(1, len(parts) + 1)
    ]
    assert sum(len(json.loads(p.data)["clusters"][0]["findings"]) for p in parts) == 60


def test_pubsub_retries_an_unavailable_service_then_delivers(pubsub: PubSubServer):
    waits = Waits()
    pubsub.fail(grpc.StatusCode.UNAVAILABLE, times=2)
    result = send([pubsub_spec()], context({}, waits))["pubsub"]
    assert (result.ok, result.sent) == (True, 6)
    assert len(pubsub.requests) == 8 and len(pubsub.published) == 6
    assert waits.seconds == [0.5, 1.0]  # the dispatcher's backoff, not the library's


def test_pubsub_down_fails_that_sink_while_the_others_deliver(pubsub: PubSubServer):
    waits = Waits()
    pubsub.fail(grpc.StatusCode.UNAVAILABLE, times=100)
    with ChatServer() as chat:
        env = {"MUTGUARD_WEBHOOK_URL": f"{chat.url}/hook/x", "MUTGUARD_WEBHOOK_SECRET": "k" * 16}
        results = send([pubsub_spec(), SinkSpec("webhook")], context(env, waits))
        assert len(chat.delivered("/hook/")) == 6
    down = results["pubsub"]
    assert not down.ok and down.sent == 0
    assert down.error.startswith("pubsub pubsub answered UNAVAILABLE:")
    assert down.error.endswith("(gave up after 4 attempts)")
    assert len(pubsub.requests) == 4 and pubsub.published == []
    assert results["webhook"].ok and results["webhook"].sent == 6
    assert waits.seconds == [0.5, 1.0, 2.0]


def test_pubsub_with_nobody_listening_fails_fast(monkeypatch: pytest.MonkeyPatch):
    with PubSubServer() as gone:
        host = gone.host
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", host)  # a port nothing listens on any more
    result = send([pubsub_spec()], context({}))["pubsub"]
    assert not result.ok and "UNAVAILABLE" in result.error


def test_pubsub_unknown_topic_is_not_retried(pubsub: PubSubServer):
    topic = "projects/mutguard-test/topics/nobody-made-this"
    result = send([SinkSpec("pubsub", options={"topic": topic})], context({}))["pubsub"]
    assert not result.ok and result.error.startswith("pubsub pubsub answered NOT_FOUND")
    assert len(pubsub.requests) == 1


def test_pubsub_and_azure_queue_options_are_checked():
    ctx = context({})
    with pytest.raises(ConfigurationError, match="sink pubsub: topic: String should match pattern"):
        build_sinks([SinkSpec("pubsub", options={"topic": "mutguard-alerts"})], ctx)
    with pytest.raises(
        ConfigurationError, match="sink pubsub: max_bytes: Input should be less than"
    ):
        build_sinks([pubsub_spec(max_bytes=10_000_000)], ctx)
    with pytest.raises(ConfigurationError, match="sink azure-queue: queue: Field required"):
        build_sinks([SinkSpec("azure-queue")], ctx)
    with pytest.raises(ConfigurationError, match="sink azure-queue: queue: String should match"):
        build_sinks([queue_spec("Alerts--Prod")], ctx)
    with pytest.raises(
        ConfigurationError, match="sink azure-queue: max_bytes: Input should be less"
    ):
        build_sinks([queue_spec("alerts", max_bytes=65537)], ctx)


# --- Azure Storage Queue ------------------------------------------------------------------


def test_azure_queue_gets_each_cluster_as_a_base64_envelope_with_attributes(
    azurite: Azurite, queue: str
):
    env = {CONNECTION_ENV: azurite.connection_string()}
    result = send([queue_spec(queue)], context(env))["azure-queue"]
    assert (result.ok, result.sent, result.error) == (True, 6, None)
    sent = envelopes(azurite, queue)
    assert [e["message"]["clusters"][0]["name"] for e in sent] == NEWS_CLUSTERS
    for envelope in sent:
        assert set(envelope) == {"attributes", "message"}
        schema().validate(envelope["message"])
    legacy = sent[2]["attributes"]
    assert legacy["severity"] == "critical" and legacy["change"] == "new"
    assert (legacy["mut"], legacy["part"], legacy["parts"]) == (0, 1, 1)  # numbers stay numbers


def test_azure_queue_splits_a_cluster_over_64_kb(azurite: Azurite, queue: str):
    report = one_cluster_report(big_cluster(150))
    whole = len(report.clusters[0].model_dump_json())
    assert whole > QUEUE_LIMIT  # too big for one message even before Base64
    env = {CONNECTION_ENV: azurite.connection_string()}
    result = send([queue_spec(queue)], context(env), report)["azure-queue"]
    stored = take(azurite, queue, decode=False)
    assert result.ok and result.sent == len(stored) > 1
    assert all(len(text) <= QUEUE_LIMIT for text in stored)  # as the queue counts it
    assert max(len(text) for text in stored) > QUEUE_LIMIT - 4096  # and the parts are filled
    parts = [json.loads(base64.b64decode(text)) for text in stored]
    for part in parts:
        schema().validate(part["message"])
    assert [(p["attributes"]["part"], p["message"]["part"]) for p in parts] == [
        (i, i) for i in range(1, len(stored) + 1)
    ]
    assert sum(len(p["message"]["clusters"][0]["findings"]) for p in parts) == 150


def test_an_absent_connection_string_fails_the_queue_sink_and_pubsub_still_delivers(
    azurite: Azurite, queue: str, pubsub: PubSubServer
):
    results = send([queue_spec(queue), pubsub_spec()], context({}))
    assert results["azure-queue"].error == f"environment variable {CONNECTION_ENV} is not set"
    assert take(azurite, queue) == []
    assert results["pubsub"].ok and len(pubsub.published) == 6


def test_rejected_credentials_and_a_missing_queue_are_not_retried_nor_shown(
    azurite: Azurite, queue: str
):
    waits = Waits()
    wrong_key = base64.b64encode(b"not-the-account-key-" * 3).decode()
    env = {CONNECTION_ENV: azurite.connection_string(wrong_key)}
    rejected = send([queue_spec(queue)], context(env, waits))["azure-queue"]
    assert rejected.error == "azure-queue azure-queue answered HTTP 403 AuthenticationFailed"
    env = {CONNECTION_ENV: azurite.connection_string()}
    missing = send([queue_spec("no-such-queue")], context(env, waits))["azure-queue"]
    assert missing.error == "azure-queue azure-queue answered HTTP 404 QueueNotFound"
    assert waits.seconds == [] and take(azurite, queue) == []


# --- Azure Table state store --------------------------------------------------------------


def state_with(count: int) -> ClusterState:
    """`count` findings on workloads with hash-like names, which compress about as badly as
    real pod names do."""
    findings = {
        (f"k8s.workload.check_{i % 40:02d}", f"Pod team/{sha256(str(i).encode()).hexdigest()}"): (
            FindingState(Status.FAIL if i % 2 else Status.PASS, Severity.HIGH, i % 7 == 0)
        )
        for i in range(count)
    }
    return ClusterState(readable=True, mut=Mut(1, 2, None), findings=findings)


def test_azure_table_store_round_trip_small_and_large_states(
    azurite: Azurite, table_name: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(CONNECTION_ENV, azurite.connection_string())
    store = open_store(f"azure-table:{table_name}")
    assert isinstance(store, AzureTableStateStore)
    odd_key = "kubernetes::ctx/with#odd?chars%:dev\\cluster"
    states = {
        "eks:111111111111:eu-west-1:payments-legacy": state_with(3),
        odd_key: ClusterState(readable=False, mut=Mut(None, None, None)),
        "aks:sub:westeurope:huge": state_with(6000),  # 1 MB of JSON: compressed, in parts
    }
    assert store.load(states) == {}  # no table yet: the first run
    store.save(states)
    assert store.load([*states, "gke:p:z:never-saved"]) == states

    table = TableClient.from_connection_string(azurite.connection_string(), table_name)
    entities = {e["cluster"]: e for e in table.query_entities("PartitionKey eq 'cluster'")}
    assert (
        entities[odd_key]["RowKey"]
        == row_key(odd_key)
        == ("kubernetes::ctx%2Fwith%23odd%3Fchars%25:dev%5Ccluster")
    )
    small = entities["eks:111111111111:eu-west-1:payments-legacy"]
    assert json.loads(small["state"])["mut_workload"] == 2  # readable where it fits
    huge = entities["aks:sub:westeurope:huge"]
    assert "state" not in huge and huge["state_gzip_parts"] > 1

    # A save replaces the clusters it names and keeps the others.
    store.save({odd_key: state_with(1)})
    again = AzureTableStateStore(table_name).load(states)
    assert again[odd_key] == state_with(1) and len(again) == 3


def test_azure_table_store_keeps_one_suppressions_document(
    azurite: Azurite, table_name: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(CONNECTION_ENV, azurite.connection_string())
    store = open_store(f"azure-table:{table_name}")
    assert store.load_suppressions() is None  # no table yet
    store.save({"eks:1:eu-west-1:shop": state_with(2)})
    assert store.load_suppressions() is None  # a table, but no document
    store.save_suppressions("suppressions: []\n")
    store.save_suppressions("suppressions: [] # second push replaces the first\n")
    assert store.load_suppressions() == "suppressions: [] # second push replaces the first\n"
    assert list(store.load(["eks:1:eu-west-1:shop"])) == ["eks:1:eu-west-1:shop"]
    with pytest.raises(StoreError, match="at most 32,000 characters"):
        store.save_suppressions("#" * 40_000)


def test_azure_table_store_failures_name_the_store(
    azurite: Azurite, table_name: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(CONNECTION_ENV, raising=False)
    with pytest.raises(StoreError, match=f"azure-table:{table_name}: environment variable"):
        open_store(f"azure-table:{table_name}").load(["k"])
    wrong_key = base64.b64encode(b"not-the-account-key-" * 3).decode()
    monkeypatch.setenv(CONNECTION_ENV, azurite.connection_string(wrong_key))
    with pytest.raises(StoreError) as failed:
        AzureTableStateStore(table_name).load(["k"])
    assert str(failed.value) == (
        f"could not read the state: state store azure-table:{table_name} answered HTTP 403 "
        "AuthorizationFailure"
    )
    with pytest.raises(InputError, match="needs a table name"):  # a usage error: exit 2
        open_store("azure-table:no-dashes-allowed")


# --- Whole runs: Azure Table memory, Pub/Sub and Storage Queue alerts ---------------------


class Demo:
    """A private copy of the bundled demo snapshots that a test can change and scan again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(Path(str(resources.files("mutguard") / "demo")), root)

    def scan(self) -> Report:
        return build_report(snapshot.read(self.root), GENERATED_AT)

    def add_admin_binding(self, cluster: str) -> None:
        path = self.root / cluster / "rbac.json"
        document = json.loads(path.read_text())
        binding = ("Group", "system:authenticated")
        document["items"].append(cluster_role_binding("ci-admin", "cluster-admin", binding))
        path.write_text(json.dumps(document))


@pytest.fixture
def run(azurite: Azurite, queue: str, table_name: str, pubsub: PubSubServer):
    env = {CONNECTION_ENV: azurite.connection_string()}
    store = AzureTableStateStore(table_name, EnvSecrets(env))

    def notify_once(report: Report) -> RunOutcome:
        ctx = context(env)
        sinks = build_sinks([pubsub_spec(), queue_spec(queue)], ctx)
        return notify(report, store, sinks, ctx)

    return notify_once


def test_first_run_then_unchanged_then_one_cluster_worsens(
    run, tmp_path: Path, azurite: Azurite, queue: str, pubsub: PubSubServer
):
    demo = Demo(tmp_path / "demo")
    first = run(demo.scan())
    assert first.ok and first.state_saved and [r.sent for r in first.results] == [6, 6]
    assert len(take(azurite, queue)) == 6

    again = run(demo.scan())
    assert again.state_saved and [(r.planned, r.sent) for r in again.results] == [(0, 0)] * 2
    assert len(pubsub.published) == 6 and take(azurite, queue) == []

    demo.add_admin_binding("shop-prod")
    worse = run(demo.scan())
    assert [r.sent for r in worse.results] == [1, 1]
    attributes = pubsub.published[-1].attributes
    assert (attributes["cluster"], attributes["change"], attributes["mut"]) == (
        "shop-prod",
        "worsened",
        "1",
    )
    (envelope,) = envelopes(azurite, queue)
    change = envelope["message"]["change"]
    assert change["mut_dropped"] == ["mut", "mut_workload"] and change["new"] == 1
    assert envelope["attributes"]["change"] == "worsened"


# The demo is judged on the day its alert counts were derived (a fixed clock, not today's).
AS_OF = "2026-03-01"


def test_the_cli_keeps_its_state_in_azure_table(
    azurite: Azurite, queue: str, table_name: str, tmp_path: Path
):
    config = tmp_path / "sinks.yaml"
    config.write_text(f"sinks:\n  - kind: azure-queue\n    options: {{queue: {queue}}}\n")
    env = {**os.environ, CONNECTION_ENV: azurite.connection_string()}
    command = [
        *(sys.executable, "-m", "mutguard.cli", "demo", "--format", "json", "--as-of", AS_OF),
        *("--publish", "azure-queue", "--publish-config", str(config)),
        *("--state-store", f"azure-table:{table_name}"),
    ]
    first = subprocess.run(command, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "publish azure-queue: sent 6 message(s)" in first.stderr
    second = subprocess.run(command, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "publish azure-queue: sent 0 message(s)" in second.stderr
    assert len(take(azurite, queue)) == 6
    assert ACCOUNT_KEY not in first.stderr + second.stderr
