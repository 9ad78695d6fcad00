"""Each cluster's MUT over its last runs, kept with its state in every store kind (SQLite file,
DynamoDB on moto_server, the Cloud Storage fake, Azurite Table): one point per run, the oldest
dropped past HISTORY_LENGTH, the same report saved again not counted twice, and records written
before the history was kept loading with none."""

import datetime
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from mutguard.models import ClusterReport, Report, cluster_key
from mutguard.providers import snapshot
from mutguard.publish import Redactor, RetryPolicy, SecretRefs, SinkContext, notify
from mutguard.publish.stores import open_store, report_history
from mutguard.scan import build_report
from mutguard.state import HISTORY_LENGTH, ClusterState, Mut, MutPoint, changes, next_state
from mutguard.store import StateStore, histories

GENERATED_AT = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
CONNECTION_ENV = "MUTGUARD_AZURE_STORAGE_CONNECTION_STRING"
GCS_PREFIX = "history"
LEGACY_KEY = "eks:111111111111:eu-west-1:legacy"
# A cluster's state as the version before the history wrote it: no `history`.
LEGACY_STATE = {
    "readable": True,
    "mut": 1,
    "mut_workload": 2,
    "mut_credential": None,
    "findings": [
        {
            "check_id": "eks.endpoint.public_unrestricted",
            "resource": "arn:aws:eks:eu-west-1:111111111111:cluster/legacy",
            "status": "FAIL",
            "severity": "high",
            "suppressed": False,
        }
    ],
}
# The SQLite schema of that version.
LEGACY_SCHEMA = """
CREATE TABLE clusters (
    key TEXT PRIMARY KEY, readable INTEGER NOT NULL,
    mut INTEGER, mut_workload INTEGER, mut_credential INTEGER, saved_at TEXT NOT NULL
);
CREATE TABLE findings (
    cluster_key TEXT NOT NULL REFERENCES clusters(key) ON DELETE CASCADE,
    check_id TEXT NOT NULL, resource TEXT NOT NULL, status TEXT NOT NULL,
    severity TEXT NOT NULL, suppressed INTEGER NOT NULL,
    PRIMARY KEY (cluster_key, check_id, resource)
);
CREATE TABLE documents (name TEXT PRIMARY KEY, body TEXT NOT NULL, saved_at TEXT NOT NULL);
CREATE TABLE claims (
    cluster_key TEXT NOT NULL, report TEXT NOT NULL, claimed_at TEXT NOT NULL,
    PRIMARY KEY (cluster_key, report)
);
"""


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(snapshot.read(demo), GENERATED_AT)


def named(report: Report, name: str) -> ClusterReport:
    return next(c for c in report.clusters if c.name == name)


def run_at(report: Report, hours: int, **changed: Any) -> Report:
    """The report as a run `hours` later would make it, shop-prod's fields set to `changed`."""
    clusters = [
        c.model_copy(update=changed) if c.name == "shop-prod" else c for c in report.clusters
    ]
    later = report.generated_at + datetime.timedelta(hours=hours)
    return report.model_copy(update={"generated_at": later, "clusters": clusters})


def unreadable(cluster: ClusterReport) -> ClusterReport:
    return cluster.model_copy(
        update={
            "mut": None,
            "mut_workload": None,
            "mut_credential": None,
            "mut_upper_bound": [],
            "findings": [],
            "paths": [],
            "errors": ["could not be read"],
        }
    )


def legacy_report() -> Report:
    """A report of the cluster LEGACY_KEY names (the demo's payments-legacy, renamed)."""
    cluster = named(demo_report(), "payments-legacy").model_copy(update={"name": "legacy"})
    assert cluster_key(cluster) == LEGACY_KEY
    return demo_report().model_copy(update={"clusters": [cluster]})


def keys(report: Report) -> list[str]:
    return [cluster_key(c) for c in report.clusters]


def save_run(store: StateStore, report: Report) -> None:
    """What a run remembers: the state loaded, the next one saved."""
    store.save(next_state(store.load(keys(report)), report))


# --- What is kept -------------------------------------------------------------------------


def test_each_run_adds_its_point_with_its_time_and_upper_bounds():
    report = demo_report()
    prod = named(report, "shop-prod")
    first = next_state({}, report)
    (point,) = first[cluster_key(prod)].history
    assert point == MutPoint(
        GENERATED_AT,
        Mut(prod.mut, prod.mut_workload, prod.mut_credential),
        tuple(prod.mut_upper_bound),
    )
    staging = named(report, "shop-staging")
    assert staging.mut_upper_bound  # the demo's shop-staging holds no probe
    assert first[cluster_key(staging)].history[0].upper_bound == tuple(staging.mut_upper_bound)

    later = run_at(report, 24, mut_credential=prod.mut_credential - 1)
    second = next_state(first, later)
    history = second[cluster_key(prod)].history
    assert [p.generated_at for p in history] == [GENERATED_AT, later.generated_at]
    assert history[-1].mut.mut_credential == prod.mut_credential - 1
    # What changed is told with the history saved before this run.
    (change,) = [c for c in changes(first, later) if c.cluster.name == "shop-prod"]
    assert change.history == first[cluster_key(prod)].history


def test_the_same_report_again_replaces_its_point_and_an_older_one_goes_in_time_order():
    report = demo_report()
    key = cluster_key(named(report, "shop-prod"))
    state = next_state({}, report)
    assert next_state(state, report)[key].history == state[key].history
    later = next_state(state, run_at(report, 24))
    backfilled = next_state(later, run_at(report, -24))
    times = [p.generated_at for p in backfilled[key].history]
    assert times == sorted(times) and len(times) == 3


def test_the_history_keeps_the_last_runs_only():
    report = demo_report()
    key = cluster_key(named(report, "shop-prod"))
    state: dict[str, ClusterState] = {}
    for hour in range(HISTORY_LENGTH + 5):
        state = next_state(state, run_at(report, hour))
    history = state[key].history
    assert len(history) == HISTORY_LENGTH == 30
    assert history[0].generated_at == GENERATED_AT + datetime.timedelta(hours=5)
    short = next_state(state, run_at(report, 100), history_length=3)[key].history
    assert [p.generated_at - GENERATED_AT for p in short] == [
        datetime.timedelta(hours=hours) for hours in (33, 34, 100)
    ]


def test_a_run_that_could_not_read_the_cluster_adds_no_point_and_keeps_the_others():
    report = demo_report()
    key = cluster_key(named(report, "shop-prod"))
    state = next_state({}, report)
    later = run_at(report, 24)
    blind = later.model_copy(
        update={"clusters": [unreadable(c) if c.name == "shop-prod" else c for c in later.clusters]}
    )
    after = next_state(state, blind)
    assert not after[key].readable and after[key].history == state[key].history
    assert next_state({}, blind)[key].history == ()


def test_points_read_back_from_their_json_form():
    point = MutPoint(GENERATED_AT, Mut(2, None, 1), ("mut",))
    assert MutPoint.from_dict(json.loads(json.dumps(point.to_dict()))) == point
    naive = {**point.to_dict(), "generated_at": "2026-03-01T08:00:00"}  # no zone: UTC
    assert MutPoint.from_dict(naive) == point
    legacy = ClusterState.from_dict(LEGACY_STATE)
    assert legacy.history == () and legacy.mut == Mut(1, 2, None)


# --- In every store -----------------------------------------------------------------------


@dataclass
class Backend:
    store: StateStore
    # Writes a cluster's record as the previous version did, with the backend's own client.
    write_legacy: Callable[[str, dict[str, Any]], None]


def sqlite_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "state.sqlite3"

    def write_legacy(key: str, state: dict[str, Any]) -> None:
        with sqlite3.connect(path) as connection:
            connection.executescript(LEGACY_SCHEMA)
            connection.execute(
                "INSERT INTO clusters VALUES (?, ?, ?, ?, ?, ?)",
                (key, int(state["readable"]), state["mut"], state["mut_workload"],
                 state["mut_credential"], "2026-02-01T08:00:00+00:00"),
            )  # fmt: skip
            connection.executemany(
                "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (key, f["check_id"], f["resource"], f["status"], f["severity"], 0)
                    for f in state["findings"]
                ],
            )
        connection.close()

    return Backend(open_store(f"sqlite:{path}"), write_legacy)


def dynamodb_backend(request: pytest.FixtureRequest) -> Backend:
    from boto3.dynamodb.types import TypeSerializer

    from mutguard.publish.stores.dynamodb import DynamoDbStateStore

    cloud = request.getfixturevalue("cloud")
    table = f"state-{uuid.uuid4().hex[:8]}"
    cloud.create_state_table(table)

    def write_legacy(key: str, state: dict[str, Any]) -> None:
        item = {
            "cluster_key": {"S": key},
            "saved_at": {"S": "2026-02-01T08:00:00+00:00"},
            "state": TypeSerializer().serialize(state),
        }
        cloud.dynamodb.put_item(TableName=table, Item=item)

    no_waiting = RetryPolicy(sleep=lambda seconds: None, jitter=lambda d: d)
    return Backend(DynamoDbStateStore(table, retry=no_waiting), write_legacy)


def gcs_backend(request: pytest.FixtureRequest) -> Backend:
    from google.cloud import storage

    from mutguard.publish.stores.gcs import object_name

    from servers.gcs import BUCKET

    request.getfixturevalue("gcs")

    def write_legacy(key: str, state: dict[str, Any]) -> None:
        document = {"cluster": key, "saved_at": "2026-02-01T08:00:00+00:00", "state": state}
        blob = storage.Client(project=None).bucket(BUCKET).blob(f"{GCS_PREFIX}/{object_name(key)}")
        blob.upload_from_string(json.dumps(document), content_type="application/json")

    return Backend(open_store(f"gcs:{BUCKET}/{GCS_PREFIX}"), write_legacy)


def azure_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    from azure.data.tables import TableClient

    from mutguard.publish.stores.azure_table import row_key

    azurite = request.getfixturevalue("azurite")
    monkeypatch.setenv(CONNECTION_ENV, azurite.connection_string())
    table = f"history{uuid.uuid4().hex[:12]}"

    def write_legacy(key: str, state: dict[str, Any]) -> None:
        client = TableClient.from_connection_string(azurite.connection_string(), table)
        client.create_table()
        client.upsert_entity(
            {
                "PartitionKey": "cluster",
                "RowKey": row_key(key),
                "cluster": key,
                "saved_at": "2026-02-01T08:00:00+00:00",
                "state": json.dumps(state),
            }
        )

    return Backend(open_store(f"azure-table:{table}"), write_legacy)


@pytest.fixture(params=["sqlite", "dynamodb", "gcs", "azure-table"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield sqlite_backend(tmp_path)
    elif request.param == "dynamodb":
        yield dynamodb_backend(request)
    elif request.param == "gcs":
        yield gcs_backend(request)
    else:
        yield azure_backend(request, monkeypatch)


def test_the_store_keeps_the_history_with_the_state_and_counts_a_report_once(backend: Backend):
    report = demo_report()
    prod = named(report, "shop-prod")
    key = cluster_key(prod)
    save_run(backend.store, report)
    later = run_at(report, 24, mut_credential=prod.mut_credential - 1)
    save_run(backend.store, later)
    save_run(backend.store, later)  # the same report saved again

    loaded = backend.store.load(keys(report))
    history = loaded[key].history
    assert [p.generated_at for p in history] == [GENERATED_AT, later.generated_at]
    assert [p.mut.mut_credential for p in history] == [
        prod.mut_credential,
        prod.mut_credential - 1,
    ]
    staging = named(report, "shop-staging")
    assert loaded[cluster_key(staging)].history[0].upper_bound == tuple(staging.mut_upper_bound)
    assert histories(backend.store, [key, "eks:0:nowhere:never-saved"]) == {key: history}
    # Exactly what next_state made, whole, in one save per run.
    assert loaded == next_state(next_state({}, report), later)


def test_a_record_written_before_the_history_was_kept_loads_with_none(backend: Backend):
    backend.write_legacy(LEGACY_KEY, LEGACY_STATE)
    (state,) = backend.store.load([LEGACY_KEY]).values()
    assert state == ClusterState.from_dict(LEGACY_STATE)
    assert state.history == () and state.mut == Mut(1, 2, None) and len(state.findings) == 1

    # The next run's save adds the history to the record.
    backend.store.save(next_state({LEGACY_KEY: state}, legacy_report()))
    (point,) = backend.store.load([LEGACY_KEY])[LEGACY_KEY].history
    assert point.generated_at == GENERATED_AT


def test_publishing_the_same_report_twice_records_one_point(backend: Backend):
    report = demo_report()
    redactor = Redactor()
    context = SinkContext(SecretRefs(redactor, {}), redactor)
    for _ in range(2):
        outcome = notify(report, backend.store, [], context)
        assert outcome.state_saved
    for state in backend.store.load(keys(report)).values():
        assert [p.generated_at for p in state.history] == [GENERATED_AT]


def test_a_sqlite_store_keeps_the_last_30_runs(tmp_path: Path):
    store = open_store(f"sqlite:{tmp_path / 'state.sqlite3'}")
    report = demo_report()
    for hour in range(HISTORY_LENGTH + 2):
        save_run(store, run_at(report, hour))
    history = store.load([cluster_key(named(report, "shop-prod"))]).popitem()[1].history
    assert len(history) == HISTORY_LENGTH
    assert history[0].generated_at == GENERATED_AT + datetime.timedelta(hours=2)


def test_the_history_for_a_report_is_read_from_the_store_it_names(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    report = demo_report()
    spec = f"sqlite:{tmp_path / 'state.sqlite3'}"
    assert report_history(spec, report) == {}  # nothing saved yet
    save_run(open_store(spec), report)
    found = report_history(spec, report)
    assert found is not None and set(found) == set(keys(report))
    assert all(len(points) == 1 for points in found.values())

    caplog.set_level(logging.WARNING)
    assert report_history(f"sqlite:{tmp_path}", report) is None  # a folder: not a database
    assert "the MUT trend is left out: could not read the state" in caplog.text


def test_the_command_lines_html_report_shows_the_trend_of_the_state_it_names(
    chat, tmp_path, monkeypatch
):
    from mutguard.cli import EXIT_OK, main

    monkeypatch.setenv("MUTGUARD_WEBHOOK_URL", chat.url + "/hook/trend")
    monkeypatch.setenv("MUTGUARD_WEBHOOK_SECRET", "trend-test-signing-key")
    monkeypatch.delenv("MUTGUARD_STATE_STORE", raising=False)
    state = str(tmp_path / "state.sqlite3")
    first = ["demo", "-q", "--as-of", "2026-03-01", "--publish", "webhook", "--state", state]
    first += ["-o", str(tmp_path / "first.txt")]
    assert main(first) == EXIT_OK  # publishing saves the run's MUT
    page = tmp_path / "report.html"
    second = ["demo", "-q", "--as-of", "2026-03-02", "--format", "html", "-o", str(page)]
    assert main([*second, "--state", state]) == EXIT_OK
    trended = page.read_text()
    # Same clusters, same MUT a day later: every cluster unchanged since the run the state kept.
    assert trended.count('class="trend trend-same"') == 6
    assert main(second) == EXIT_OK  # no state named: no trend
    assert 'class="trend ' not in page.read_text()
