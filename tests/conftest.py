"""Shared fixtures: real local servers that real SDK clients talk to over 127.0.0.1."""

import datetime
import importlib.util
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from mutguard.publish import EnvSecrets, RetryPolicy
from mutguard.store import StateStore

from servers.aws import AwsFakes, aws_env
from servers.aws_clients import AwsClients
from servers.azurite import Azurite
from servers.chat import ChatServer
from servers.eks_gap import EksGapServer
from servers.gcs import BUCKET, GcsServer
from servers.kube import KubeApiServer
from servers.moto import MotoServer
from servers.pubsub import TOPIC, PubSubServer
from servers.secretmanager import SecretManagerServer
from servers.tls import TestCa


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto_server for the session: it takes about a second to start."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[AwsFakes]:
    """A clean moto, a fresh EksGapServer in front of it, and an environment that uses both."""
    moto_server.reset()
    with EksGapServer(moto_server.url) as eks_gap:
        env = aws_env(moto_server.url, eks_gap.url, tmp_path)
        # Drop every AWS_* variable first (profiles, session tokens, CA bundles, retry modes,
        # per-service endpoints) so nothing from the developer's machine changes the result.
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield AwsFakes(moto=moto_server, eks_gap=eks_gap, env=env)


@pytest.fixture
def cloud(aws: AwsFakes) -> AwsClients:
    """The `aws` environment plus boto3 clients of moto, used as a consumer or operator would."""
    return AwsClients(aws)


@pytest.fixture(scope="session")
def test_ca() -> TestCa:
    """One throwaway CA per session; HTTPS fakes present server certificates it signed."""
    return TestCa()


@pytest.fixture
def kube_api(test_ca: TestCa) -> Iterator[KubeApiServer]:
    """A fresh Kubernetes API server: no objects, no tokens, anonymous auth "enabled"."""
    with KubeApiServer(test_ca) as server:
        yield server


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite (Storage Queue and Table) for the session: it takes about a second to start.
    Tests keep apart by using queues and tables of their own."""
    with Azurite() as server:
        yield server


@pytest.fixture
def pubsub(monkeypatch: pytest.MonkeyPatch) -> Iterator[PubSubServer]:
    """A Pub/Sub publisher endpoint with one topic (TOPIC); the real client reaches it through
    PUBSUB_EMULATOR_HOST."""
    with PubSubServer(topics=(TOPIC,)) as server:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", server.host)
        yield server


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsServer]:
    """Cloud Storage with one empty bucket (BUCKET); the real client reaches it through
    STORAGE_EMULATOR_HOST, with anonymous credentials."""
    with GcsServer(buckets=(BUCKET,)) as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        yield server


@pytest.fixture
def secret_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretManagerServer]:
    """GCP Secret Manager with no secrets; mutguard reaches it through
    MUTGUARD_GCP_SECRETMANAGER_ENDPOINT (plain-text gRPC, no credentials)."""
    with SecretManagerServer() as server:
        monkeypatch.setenv("MUTGUARD_GCP_SECRETMANAGER_ENDPOINT", server.endpoint)
        yield server


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    """The local Slack / Teams / webhook receiver (servers/chat.py)."""
    with ChatServer() as server:
        yield server


@pytest.fixture(scope="session")
def package_script() -> Iterator[ModuleType]:
    """release/package.py as a module (its dataclasses need it in sys.modules while it loads)."""
    path = Path(__file__).resolve().parent.parent / "release" / "package.py"
    spec = importlib.util.spec_from_file_location("mutguard_release_package", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


STORE_KINDS = ["sqlite", "dynamodb", "gcs", "azure-table"]
AZURE_CONNECTION_ENV = "MUTGUARD_AZURE_STORAGE_CONNECTION_STRING"
MakeStore = Callable[[], StateStore]


def no_waiting() -> RetryPolicy:
    return RetryPolicy(sleep=lambda seconds: None, jitter=lambda d: d)


@pytest.fixture(params=STORE_KINDS)
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """Opens a new store object (its own connection or client) on one store of each kind, on
    its local server: what two workers of one run, or two runs, share."""
    from mutguard.publish.stores.azure_table import AzureTableStateStore
    from mutguard.publish.stores.dynamodb import DynamoDbStateStore
    from mutguard.publish.stores.gcs import GcsStateStore
    from mutguard.publish.stores.sqlite import SqliteStateStore

    kind = request.param
    if kind == "sqlite":
        path = tmp_path / "state.sqlite3"
        return lambda: SqliteStateStore(path)
    if kind == "dynamodb":
        cloud: AwsClients = request.getfixturevalue("cloud")
        cloud.create_state_table("mutguard-state")
        return lambda: DynamoDbStateStore("mutguard-state", retry=no_waiting())
    if kind == "gcs":
        request.getfixturevalue("gcs")
        prefix = f"store-{uuid.uuid4().hex[:8]}"
        return lambda: GcsStateStore(f"{BUCKET}/{prefix}", retry=no_waiting())
    azurite: Azurite = request.getfixturevalue("azurite")
    table = f"store{uuid.uuid4().hex[:12]}"
    secrets = EnvSecrets({AZURE_CONNECTION_ENV: azurite.connection_string()})
    return lambda: AzureTableStateStore(table, secrets=secrets, retry=no_waiting())


@pytest.fixture
def stuck_run(environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A run of two parts, an hour old, whose second part never finished, in a SQLite state
    store the function's environment names; the `finish_run` follow-up message for it. Each
    function's test module defines the `environment` it runs in."""
    from mutguard import clock
    from mutguard.publish.stores.sqlite import SqliteStateStore

    path = tmp_path / "state.sqlite3"
    monkeypatch.setenv("MUTGUARD_STATE_STORE", f"sqlite:{path}")
    store = SqliteStateStore(path)
    store.begin_run("stuck-run", 2, clock.now() - datetime.timedelta(hours=1))
    store.finish_part("stuck-run", 1, {"clusters": [], "not_scanned": []})
    return {"action": "finish_run", "publish": True, "run": {"id": "stuck-run"}}
