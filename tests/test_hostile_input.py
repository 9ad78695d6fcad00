"""Hostile or broken input costs only what it breaks.

In a snapshot of several clusters, one cluster's bad document is that cluster's error, naming
the file (and the field where known), and every other cluster is reported as if it were alone.
A function answers a malformed payload with a 4xx, or, behind a queue, a logged rejection.
"""

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from test_functions_aws import context
from test_functions_azure import call, post, queue_message
from test_functions_gcp import ENTRY_POINT, deliver

from mutguard.cli import main
from mutguard.functions.aws_lambda import dispatcher, worker
from mutguard.models import Status

from builders import cluster_role, describe_cluster, kube_list, namespace, pod, rbac_list

EXIT_SCAN_ERRORS = 3
DEEP = 100_000
DEEPLY_NESTED = "[" * DEEP + "]" * DEEP


def good_documents(name: str) -> dict[str, Any]:
    return {
        "cluster.json": describe_cluster(name),
        "rbac.json": rbac_list(),
        "workloads.json": kube_list(pod("web"), pod("api", service_account="api")),
        "namespaces.json": kube_list(namespace("shop", enforce="baseline")),
    }


def write_cluster(root: Path, name: str) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    for file_name, document in good_documents(name).items():
        (directory / file_name).write_text(json.dumps(document))
    return directory


def replace(file_name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    def breaks(directory: Path) -> None:
        path = directory / file_name
        path.unlink(missing_ok=True)
        make(path)

    return breaks


def text(content: str | bytes) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        data = content if isinstance(content, bytes) else content.encode()
        path.write_bytes(data)

    return make


def document(content: Any) -> Callable[[Path], None]:
    return text(json.dumps(content))


def symlink_loop(path: Path) -> None:
    partner = path.with_name(f"{path.name}.loop")
    path.symlink_to(partner)
    partner.symlink_to(path)


def directory(path: Path) -> None:
    path.mkdir()


def fifo(path: Path) -> None:
    os.mkfifo(path)


def sparse_file_over_the_limit(path: Path) -> None:
    with path.open("wb") as file:
        file.truncate(257 * 1024 * 1024)  # a hole: no disk used, and never read


def unreadable(path: Path) -> None:
    path.write_text("{}")
    path.chmod(0)


def rbac_with(item: dict) -> Callable[[Path], None]:
    return document(rbac_list(item))


def workloads_with(item: dict) -> Callable[[Path], None]:
    return document(kube_list(pod("web"), item))


AGGREGATED_AS_LIST = {**cluster_role("monitoring"), "aggregationRule": [{"matchLabels": {}}]}
SECURITY_CONTEXT_LIST = pod(
    "db", containers=[{"name": "db", "image": "postgres:17", "securityContext": ["privileged"]}]
)
ROOT_SKIP = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root reads a file whatever its mode, so chmod 000 does not make it unreadable",
)

# (how one cluster is broken, the file its error names, what the error says)
OPTIONAL_DOCUMENT_CASES = [
    pytest.param(
        replace("rbac.json", text(DEEPLY_NESTED)),
        "rbac.json",
        f"nested {DEEP} levels deep",
        id="rbac-nested-100000-deep",
    ),
    pytest.param(
        replace("workloads.json", text("[" * DEEP)),
        "workloads.json",
        f"nested {DEEP} levels deep",
        id="workloads-unterminated-nesting",
    ),
    pytest.param(
        replace("rbac.json", symlink_loop),
        "rbac.json",
        "cannot be read: Too many levels of symbolic links",
        id="rbac-symlink-loop",
    ),
    pytest.param(
        replace("rbac.json", directory),
        "rbac.json",
        "not a regular file but a directory",
        id="rbac-is-a-directory",
    ),
    pytest.param(
        replace("rbac.json", unreadable),
        "rbac.json",
        "cannot be read: Permission denied",
        id="rbac-unreadable",
        marks=ROOT_SKIP,
    ),
    pytest.param(
        replace("workloads.json", sparse_file_over_the_limit),
        "workloads.json",
        "larger than 256 MiB, the limit per document",
        id="workloads-over-256-MiB",
    ),
    pytest.param(
        replace("rbac.json", text(b'{"items": ["\xff"]}')),
        "rbac.json",
        "not valid JSON (not UTF-8",
        id="rbac-not-utf8",
    ),
    pytest.param(
        replace("rbac.json", rbac_with({"kind": "ClusterRole", "metadata": "admin"})),
        "rbac.json",
        "ClusterRole items[",
        id="rbac-metadata-a-string",
    ),
    pytest.param(
        replace("rbac.json", rbac_with(AGGREGATED_AS_LIST)),
        "rbac.json",
        "ClusterRole monitoring.aggregationRule: must be an object",
        id="rbac-aggregationRule-a-list",
    ),
    pytest.param(
        replace("workloads.json", workloads_with(pod("db", containers="postgres"))),
        "workloads.json",
        "Pod shop/db: spec.containers must be a list, not a string",
        id="workloads-containers-a-string",
    ),
    pytest.param(
        replace("workloads.json", workloads_with(SECURITY_CONTEXT_LIST)),
        "workloads.json",
        "Pod shop/db: spec.containers[0].securityContext must be an object, not a list",
        id="workloads-securityContext-a-list",
    ),
    pytest.param(
        replace("workloads.json", workloads_with(pod("db", owner=("ReplicaSet", ["db"])))),
        "workloads.json",
        "metadata.ownerReferences[0].name must be a string, not a list",
        id="workloads-owner-name-a-list",
    ),
    pytest.param(
        replace(
            "namespaces.json",
            document(kube_list({"kind": "Namespace", "metadata": {"name": "a", "labels": "x"}})),
        ),
        "namespaces.json",
        "Namespace a: metadata.labels must be an object",
        id="namespaces-labels-a-string",
    ),
    pytest.param(
        replace(
            "admission.json",
            document(
                kube_list(
                    {
                        "kind": "MutatingWebhookConfiguration",
                        "metadata": {"name": "inject"},
                        "webhooks": "sidecar",
                    }
                )
            ),
        ),
        "admission.json",
        "MutatingWebhookConfiguration inject: webhooks must be a list of objects",
        id="admission-webhooks-a-string",
    ),
]
# A broken cluster.json: the cluster cannot be assessed at all, and is named in the errors.
CLUSTER_DOCUMENT_CASES = [
    pytest.param(
        replace("cluster.json", text(DEEPLY_NESTED)),
        f"nested {DEEP} levels deep",
        id="cluster-nested-100000-deep",
    ),
    pytest.param(
        replace("cluster.json", symlink_loop),
        "cannot be read: Too many levels of symbolic links",
        id="cluster-symlink-loop",
    ),
    pytest.param(
        replace("cluster.json", directory),
        "not a regular file but a directory",
        id="cluster-is-a-directory",
    ),
    pytest.param(
        replace("cluster.json", text('{"cluster": {"name": "bad", "arn": "arn:aws:eks')),
        "is not valid JSON",
        id="cluster-truncated",
    ),
    pytest.param(
        replace("cluster.json", document(["not", "a", "cluster"])),
        "is not `aws eks describe-cluster`",
        id="cluster-a-list",
    ),
]


def scan_json(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    code = main(["scan", "--snapshot", str(root), "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


@pytest.fixture
def good_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    """The good cluster's report when it is scanned on its own."""
    write_cluster(tmp_path / "alone", "good")
    code, report, _ = scan_json(tmp_path / "alone", capsys)
    assert code == 0 and report["clusters"][0]["mut"] is not None
    return report["clusters"][0]


def two_clusters(root: Path, breaks: Callable[[Path], None]) -> Path:
    write_cluster(root, "good")
    breaks(write_cluster(root, "bad"))
    return root


def assert_good_cluster_unaffected(report: dict, good_alone: dict) -> None:
    good = next(c for c in report["clusters"] if c["name"] == "good")
    assert good == good_alone


@pytest.mark.parametrize(("breaks", "file_name", "says"), OPTIONAL_DOCUMENT_CASES)
def test_a_bad_optional_document_is_that_clusters_error(
    tmp_path, capsys, good_alone, breaks, file_name, says
):
    root = two_clusters(tmp_path / "snapshot", breaks)
    code, report, stderr = scan_json(root, capsys)

    assert code == EXIT_SCAN_ERRORS
    assert "Traceback" not in stderr
    assert_good_cluster_unaffected(report, good_alone)
    bad = next(c for c in report["clusters"] if c["name"] == "bad")
    assert bad["mut"] is not None  # the rest of the cluster is still assessed
    assert any(e.startswith(f"{file_name}: ") and says in e for e in bad["errors"]), bad["errors"]
    unknown = [
        f for f in bad["findings"] if f["status"] == Status.UNKNOWN and file_name in f["detail"]
    ]
    assert unknown, f"no check says it could not judge without {file_name}"
    if file_name in ("rbac.json", "workloads.json"):
        assert bad["mut_upper_bound"]


@pytest.mark.parametrize(("breaks", "says"), CLUSTER_DOCUMENT_CASES)
def test_a_bad_cluster_document_is_named_and_the_others_reported(
    tmp_path, capsys, good_alone, breaks, says
):
    root = two_clusters(tmp_path / "snapshot", breaks)
    code, report, stderr = scan_json(root, capsys)

    assert code == EXIT_SCAN_ERRORS
    assert "Traceback" not in stderr
    assert_good_cluster_unaffected(report, good_alone)
    assert [c["name"] for c in report["clusters"]] == ["good"]
    (error,) = report["errors"]
    assert error["scope"] == f"snapshot:{root / 'bad'}"
    assert "cluster.json" in error["message"] and says in error["message"]


@pytest.mark.parametrize("file_name", ["rbac.json", "cluster.json"])
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path, file_name):
    root = two_clusters(tmp_path / "snapshot", replace(file_name, fifo))
    done = subprocess.run(
        [sys.executable, "-m", "mutguard.cli", "scan", "--snapshot", str(root), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == EXIT_SCAN_ERRORS, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert next(c for c in report["clusters"] if c["name"] == "good")["mut"] is not None
    errors = [*(e["message"] for e in report["errors"])]
    errors += [e for c in report["clusters"] if c["name"] == "bad" for e in c["errors"]]
    assert any(f"{file_name} is not a regular file but a FIFO" in e for e in errors), errors


def test_an_unreadable_errors_json_is_recorded_not_fatal(tmp_path, capsys):
    root = two_clusters(tmp_path / "snapshot", replace("errors.json", directory))
    code, report, _ = scan_json(root, capsys)
    assert code == EXIT_SCAN_ERRORS
    bad = next(c for c in report["clusters"] if c["name"] == "bad")
    assert bad["mut"] is not None
    assert "errors.json: errors.json is not a regular file but a directory" in bad["errors"]


# Function handlers: malformed input is a 4xx (or a logged rejection behind a queue), and the
# body is never logged.

NESTED_BODY = "[" * DEEP
NESTED_IN_OBJECT = '{"action": ' * DEEP


@pytest.mark.parametrize("body", [NESTED_BODY, NESTED_IN_OBJECT], ids=["array", "object"])
def test_lambda_worker_and_dispatcher_answer_deep_nesting_with_400(body):
    for answer in (
        worker.handler(body, context("mutguard-worker")),
        dispatcher.handler(body, context("mutguard-dispatcher")),
    ):
        assert answer["statusCode"] == 400
        assert "nested too deeply" in answer["error"]["message"]


def test_lambda_worker_fails_only_a_deeply_nested_queue_message():
    record = {"messageId": "m-1", "eventSource": "aws:sqs", "body": NESTED_BODY}
    odd_attributes = {**record, "messageId": "m-2", "messageAttributes": ["run_id"]}
    logs = io.StringIO()
    previous = worker.logger.registered_handler.setStream(logs)
    try:
        answer = worker.handler({"Records": [record, odd_attributes]}, context("mutguard-worker"))
    finally:
        worker.logger.registered_handler.setStream(previous)
    # Left for redelivery and, after maxReceiveCount, the dead-letter queue.
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    assert "nested too deeply" in logs.getvalue() and "[[[[" not in logs.getvalue()


@pytest.fixture
def gcp_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    source = tmp_path / "source" / "main.py"
    source.parent.mkdir()
    source.write_text(ENTRY_POINT)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def client(entry_point: str) -> Any:
        monkeypatch.setenv("FUNCTION_TARGET", entry_point)
        monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "http")
        return functions_framework.create_app(entry_point, str(source)).test_client()

    yield client
    sys.modules.pop("main", None)


def test_gcp_audit_answers_deep_nesting_with_400(gcp_client):
    response = gcp_client("audit").post("/", data=NESTED_BODY)
    assert response.status_code == 400
    assert "nested too deeply" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("data", "attributes", "says"),
    [
        pytest.param(NESTED_BODY.encode(), {}, "nested too deeply", id="nested-data"),
        pytest.param(b'{"action": "dispatch"}', ["run_id"], "attributes", id="attributes-list"),
    ],
)
def test_gcp_on_message_acknowledges_malformed_input(gcp_client, capsys, data, attributes, says):
    response = deliver(gcp_client("on_message"), data, attributes)
    assert response.status_code == 200  # acknowledged: delivering it again cannot fix it
    out = capsys.readouterr().out
    (entry,) = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert entry["severity"] == "ERROR" and says in entry["message"]
    assert base64.b64encode(data).decode()[:40] not in out


def test_azure_audit_answers_deep_nesting_with_400():
    response = call("audit", request=post(NESTED_BODY.encode()), messages=None)
    assert response.status_code == 400
    assert "nested too deeply" in json.loads(response.get_body())["error"]["message"]


def test_azure_scan_queue_refuses_deep_nesting_toward_the_poison_queue(caplog):
    from mutguard.functions.payload import PayloadError

    with pytest.raises(PayloadError, match="nested too deeply"):
        call("scan_target", message=queue_message(NESTED_BODY))
    assert "[[[[" not in caplog.text


LONE_SURROGATE = "\\ud800"  # as JSON text writes it: half a UTF-16 pair, with no other half


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "sarif", "csv", "junit", "html"])
def test_a_lone_surrogate_in_a_name_reads_as_the_replacement_character(tmp_path, fmt):
    """Go's encoding/json (the API server's, kubectl's) decodes a lone surrogate escape as
    U+FFFD; read the same way, a hostile name renders in every format instead of crashing it."""
    directory = write_cluster(tmp_path / "snapshot", "shop")
    for file_name in ("cluster.json", "rbac.json"):
        path = directory / file_name
        text = path.read_text().replace('"shop"', f'"shop{LONE_SURROGATE}"')
        text = text.replace('"cluster-admin"', f'"cluster-admin{LONE_SURROGATE}"')
        path.write_text(text)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mutguard.cli",
            "scan",
            "--snapshot",
            str(directory.parent),
            "--format",
            fmt,
            "--as-of",
            "2026-03-01",
        ],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode("utf-8")
    assert "shop\ufffd" in out or "shop\\ufffd" in out  # SARIF escapes it
