"""The DynamoDB state store against a real moto_server: round trips, whole runs through
`notify` with an SQS sink, and the command line with `--state-store dynamodb:TABLE`.

The demo clusters are copied per test and changed the way a cluster changes (a
ClusterRoleBinding added), then scanned again.
"""

import datetime
import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from mutguard.cli import main
from mutguard.errors import StoreError
from mutguard.models import Report, Severity, Status, cluster_key
from mutguard.providers import snapshot
from mutguard.publish import (
    Redactor,
    RetryPolicy,
    RunOutcome,
    SecretRefs,
    SinkContext,
    SinkSpec,
    build_sinks,
    notify,
)
from mutguard.publish.stores.dynamodb import DynamoDbStateStore
from mutguard.scan import build_report
from mutguard.state import ClusterState, FindingState, Mut, next_state

from builders import cluster_role_binding
from servers.aws_clients import AwsClients
from servers.chat import ChatServer

TABLE = "mutguard-state"
HOOK_PATH = "/hook/cliHookSecret0123456789"


class Demo:
    """A private copy of the bundled demo snapshots that a test can change and scan again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(Path(str(resources.files("mutguard") / "demo")), root)

    def scan(self) -> Report:
        generated_at = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
        return build_report(snapshot.read(self.root), generated_at)

    def add_admin_binding(self, cluster: str) -> None:
        path = self.root / cluster / "rbac.json"
        document = json.loads(path.read_text())
        binding = ("Group", "system:authenticated")
        document["items"].append(cluster_role_binding("ci-admin", "cluster-admin", binding))
        path.write_text(json.dumps(document))


def no_waiting() -> RetryPolicy:
    return RetryPolicy(sleep=lambda seconds: None, jitter=lambda d: d)


@pytest.fixture
def table(cloud: AwsClients) -> DynamoDbStateStore:
    cloud.create_state_table(TABLE)
    return DynamoDbStateStore(TABLE, retry=no_waiting())


# --- The store ----------------------------------------------------------------------------


def test_the_store_round_trips_and_keeps_clusters_it_was_not_given(
    table: DynamoDbStateStore, cloud: AwsClients, tmp_path: Path
):
    report = Demo(tmp_path / "demo").scan()
    states = next_state({}, report)
    keys = list(states)
    assert table.load(keys) == {}  # first run: nothing remembered

    table.save(states)
    assert table.load(keys) == states
    changed = ClusterState(readable=False, mut=Mut(None, None, None))
    table.save({keys[0]: changed})
    assert table.load(keys) == {**states, keys[0]: changed}

    # What an operator sees in the console: the state as a map, numbers as numbers.
    legacy = next(c for c in report.clusters if c.name == "payments-legacy")
    item = cloud.dynamodb.get_item(TableName=TABLE, Key={"cluster_key": {"S": cluster_key(legacy)}})
    state = item["Item"]["state"]["M"]
    assert state["mut"] == {"N": "0"} and state["readable"] == {"BOOL": True}
    assert item["Item"]["saved_at"]["S"].endswith("+00:00")


def test_a_state_too_big_for_one_item_is_kept_compressed(
    table: DynamoDbStateStore, cloud: AwsClients
):
    findings = {
        (f"k8s.workload.check_{i % 40:02d}", f"payments/pod-{i:05d}-" + "x" * 80): FindingState(
            Status.FAIL, Severity.HIGH
        )
        for i in range(4000)
    }
    big = ClusterState(readable=True, mut=Mut(1, 0, None), findings=findings)
    table.save({"eks:1:eu-west-1:big": big})
    assert table.load(["eks:1:eu-west-1:big"]) == {"eks:1:eu-west-1:big": big}
    item = cloud.dynamodb.get_item(
        TableName=TABLE, Key={"cluster_key": {"S": "eks:1:eu-west-1:big"}}
    )
    assert "state_gzip" in item["Item"] and "state" not in item["Item"]


def test_the_suppressions_document_is_kept_beside_the_clusters(
    table: DynamoDbStateStore, tmp_path: Path
):
    states = next_state({}, Demo(tmp_path / "demo").scan())
    table.save(states)
    assert table.load_suppressions() is None
    document = "suppressions: []  # kept by mutguard suppressions push\n"
    table.save_suppressions(document)
    table.save_suppressions(document.replace("[]", "[ ]"))
    assert table.load_suppressions() == "suppressions: [ ]  # kept by mutguard suppressions push\n"
    assert table.load(states) == states  # no cluster item was touched


def test_a_missing_table_is_a_clear_error(cloud: AwsClients):
    store = DynamoDbStateStore("no-such-table", retry=no_waiting())
    with pytest.raises(StoreError) as caught:
        store.load(["eks:1:eu-west-1:shop"])
    assert str(caught.value) == (
        "could not read the state: state store dynamodb:no-such-table: "
        "ResourceNotFoundException: Requested resource not found"
    )


def test_claims_are_items_written_once_that_a_ttl_can_drop(
    table: DynamoDbStateStore, cloud: AwsClients
):
    one = ("eks:1:eu-west-1:shop", "2026-03-01T08:00:00+00:00/0123456789abcdef")
    two = ("digest", "2026-03-01T08:00:00+00:00/fedcba9876543210")
    assert table.claim([one, two, one]) == {one, two}
    assert DynamoDbStateStore(TABLE, retry=no_waiting()).claim([one, two]) == set()
    item = cloud.dynamodb.get_item(
        TableName=TABLE, Key={"cluster_key": {"S": f"#claim|{one[1]}|{one[0]}"}}
    )["Item"]
    claimed_at = datetime.datetime.fromisoformat(item["claimed_at"]["S"])
    week = claimed_at + datetime.timedelta(days=7)
    assert int(item["expires_at"]["N"]) == int(week.timestamp())  # epoch seconds, for the TTL
    assert table.load([one[0]]) == {}  # a claim is no cluster's state

    table.release([one])
    assert table.claim([one, two]) == {one}

    missing = DynamoDbStateStore("no-such-table", retry=no_waiting())
    with pytest.raises(StoreError) as caught:
        missing.claim([one])
    assert str(caught.value) == (
        "could not claim alerts in the state: state store dynamodb:no-such-table: "
        "ResourceNotFoundException: Requested resource not found"
    )


# --- Whole runs through notify ------------------------------------------------------------


class Runs:
    """notify() with the DynamoDB store and an SQS sink (its queue, unless told otherwise)."""

    def __init__(self, store: DynamoDbStateStore, queue: str) -> None:
        self.store = store
        self.queue = queue

    def __call__(self, report: Report, queue_url: str | None = None) -> RunOutcome:
        redactor = Redactor()
        ctx = SinkContext(SecretRefs(redactor, {}), redactor, no_waiting())
        spec = SinkSpec("sqs", options={"queue_url": queue_url or self.queue})
        return notify(report, self.store, build_sinks([spec], ctx), ctx)


@pytest.fixture
def run(cloud: AwsClients, table: DynamoDbStateStore) -> Runs:
    return Runs(table, cloud.create_queue("mutguard-alerts"))


def sent_clusters(cloud: AwsClients, queue: str) -> list[tuple[str, str]]:
    messages = cloud.receive_all(queue)
    return sorted(
        (
            json.loads(m["Body"])["clusters"][0]["name"],
            m["MessageAttributes"]["change"]["StringValue"],
        )
        for m in messages
    )


def test_first_run_alerts_every_cluster_then_an_unchanged_rerun_sends_nothing(
    run: Runs, cloud: AwsClients, tmp_path: Path
):
    demo = Demo(tmp_path / "demo")
    first = run(demo.scan())
    assert first.ok and first.state_saved
    assert sent_clusters(cloud, run.queue) == [
        ("data-platform", "new"),
        ("orders-aks", "new"),
        ("payments-legacy", "new"),
        ("platform-core", "new"),
        ("shop-prod", "new"),
        ("shop-staging", "new"),
    ]
    again = run(demo.scan())
    assert again.ok and again.state_saved and again.results[0].planned == 0
    assert cloud.receive_all(run.queue) == []


def test_a_cluster_that_worsens_is_the_only_one_told_about(
    run: Runs, cloud: AwsClients, tmp_path: Path
):
    demo = Demo(tmp_path / "demo")
    run(demo.scan())
    cloud.receive_all(run.queue)
    demo.add_admin_binding("shop-prod")
    worse = run(demo.scan())
    assert worse.ok and worse.results[0].sent == 1
    (message,) = cloud.receive_all(run.queue)
    body = json.loads(message["Body"])
    assert body["clusters"][0]["name"] == "shop-prod"
    assert message["MessageAttributes"]["change"]["StringValue"] == "worsened"
    assert body["change"]["mut_dropped"] == ["mut", "mut_workload"]
    assert (body["change"]["previous_mut"], body["clusters"][0]["mut"]) == (2, 1)


def test_a_failed_queue_publish_is_said_again_by_the_next_run(
    run: Runs, cloud: AwsClients, tmp_path: Path
):
    demo = Demo(tmp_path / "demo")
    gone = cloud.deleted_queue("deleted-queue")
    failed = run(demo.scan(), queue_url=gone)
    assert not failed.ok and not failed.state_saved  # the run fails: its platform retries

    retried = run(demo.scan())  # nothing was remembered, so nothing is lost
    assert retried.ok and retried.results[0].sent == 6
    assert len(cloud.receive_all(run.queue)) == 6


# --- The command line ---------------------------------------------------------------------


# The demo is judged on the day its alert counts were derived (a fixed clock, not today's).
AS_OF = "2026-03-01"


def mutguard(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`mutguard ARGS` in this process; the exit code and what it wrote to stderr."""
    code = main(list(args))
    return code, capsys.readouterr().err


def test_the_cli_keeps_state_in_dynamodb_and_reads_secrets_from_secrets_manager(
    cloud: AwsClients,
    chat: ChatServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    cloud.create_state_table(TABLE)
    queue = cloud.create_queue("mutguard-alerts")
    hook = {"url": chat.url + HOOK_PATH, "key": "whsec-cli-0123456789"}
    cloud.secrets.create_secret(Name="mutguard/hook", SecretString=json.dumps(hook))
    config = tmp_path / "sinks.yaml"
    config.write_text(
        "sinks:\n"
        f"  - kind: sqs\n    options: {{queue_url: '{queue}'}}\n"
        "  - kind: webhook\n"
        "    options:\n"
        "      url_env: aws-secretsmanager:mutguard/hook#url\n"
        "      secret_env: aws-secretsmanager:mutguard/hook#key\n"
    )
    monkeypatch.setenv("MUTGUARD_STATE_FILE", str(tmp_path / "unused.sqlite3"))
    demo = ["demo", "--format", "json", "--as-of", AS_OF]
    demo += ["--publish", "sqs,webhook", "--publish-config", str(config)]

    code, first = mutguard(capsys, *demo, "--state-store", f"dynamodb:{TABLE}")
    assert code == 0, first
    assert "publish sqs: sent 6 message(s)" in first
    assert "publish webhook: sent 6 message(s)" in first
    assert len(cloud.receive_all(queue)) == 6 and len(chat.delivered(HOOK_PATH)) == 6
    keys = [item["cluster_key"]["S"] for item in cloud.dynamodb.scan(TableName=TABLE)["Items"]]
    assert len([k for k in keys if not k.startswith("#")]) == 6  # every cluster, news or not
    assert len([k for k in keys if k.startswith("#claim|")]) == 6  # each alert, claimed
    assert not (tmp_path / "unused.sqlite3").exists()

    # $MUTGUARD_STATE_STORE does what the flag does: the same table, so nothing is new.
    monkeypatch.setenv("MUTGUARD_STATE_STORE", f"dynamodb:{TABLE}")
    code, second = mutguard(capsys, *demo)
    assert code == 0, second
    assert "publish sqs: sent 0 message(s)" in second
    assert cloud.receive_all(queue) == [] and len(chat.delivered(HOOK_PATH)) == 6
    assert "whsec-cli" not in first + second


def test_the_cli_names_a_state_store_problem(
    cloud: AwsClients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    queue = cloud.create_queue("mutguard-alerts")
    config = tmp_path / "sinks.yaml"
    config.write_text(f"sinks:\n  - kind: sqs\n    options: {{queue_url: '{queue}'}}\n")
    demo = ["demo", "--publish", "sqs", "--publish-config", str(config)]

    code, err = mutguard(capsys, *demo, "--state", "s.sqlite3", "--state-store", "dynamodb:t")
    assert code == 2
    assert "--state names a SQLite file; it cannot be combined with dynamodb:t" in err

    code, err = mutguard(capsys, *demo, "--state-store", "redis:x")
    assert code == 2 and "state store redis:x: unknown kind 'redis' (known: " in err

    code, err = mutguard(capsys, *demo, "--state-store", "dynamodb:absent")
    assert code == 4  # nothing was sent: the platform should run it again
    assert "mutguard: could not read the state: state store dynamodb:absent: " in err
    assert cloud.receive_all(queue) == []
