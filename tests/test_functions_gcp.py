"""The Cloud Functions entry points, served by the Functions Framework's own app (create_app) from
a root main.py like the deployed source's, and driven with real HTTP requests: CloudEvents of
Pub/Sub messages (binary and structured mode) for on_message, JSON POSTs for audit.

Behind them are real local servers: the Pub/Sub publisher (PUBSUB_EMULATOR_HOST) for the
dispatch fan-out, the GKE REST API (MUTGUARD_GKE_ENDPOINT) and a Slack incoming webhook.

Application Default Credentials are an authorized_user file. google-auth sends its refresh to
https://oauth2.googleapis.com/token whatever token_uri the file names, so that one request goes
through the GKE fake acting as an HTTPS proxy (HTTPS_PROXY, REQUESTS_CA_BUNDLE), which answers
it; every other server is reached directly on 127.0.0.1 (NO_PROXY). A service account key would
not do: its credentials sign their own tokens and look up trust boundaries at
iamcredentials.googleapis.com; and the metadata server's address is read once, at import.
"""

import base64
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import functions_framework
import pytest
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent
from flask.testing import FlaskClient

from mutguard.functions.payload import parse_payload

from builders import gke_cluster
from servers.chat import ChatServer
from servers.gcs import BUCKET
from servers.gke import TEST_TOKEN, GkeServer
from servers.pubsub import PubSubServer

SHOP, DATA, DENIED = "shop-prod-1234", "data-prod-5678", "secret-prod-9999"
PROJECT = "mutguard-ops-0001"
SCAN_TOPIC = f"projects/{PROJECT}/topics/mutguard-scan"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/eventarc-europe-west1-mutguard-on-message-sub-1"
MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
SLACK_HOOK = "/services/T0MUTGUARD/B0MUTGUARD/gcpfunctionwebhooksecret"
# What `make package` writes as the source zip's main.py.
ENTRY_POINT = "from mutguard.functions.gcp.main import audit, on_message  # noqa: F401\n"
DENIED_MESSAGE = f"Permission 'container.clusters.list' denied on resource 'projects/{DENIED}'."


def target(project: str, **more: str) -> dict[str, str]:
    return {"provider": "gke", "account": project, **more}


@pytest.fixture
def pubsub(monkeypatch: pytest.MonkeyPatch) -> Iterator[PubSubServer]:
    with PubSubServer(topics=(SCAN_TOPIC,)) as server:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", server.host)
        yield server


@pytest.fixture
def gke() -> Iterator[GkeServer]:
    """SHOP has a cluster; listing DENIED's clusters is refused."""
    with GkeServer() as server:
        server.add_cluster(SHOP, gke_cluster("web", project=SHOP))
        server.add_fault("GET", f"/v1/projects/{DENIED}/locations/-/clusters", 403, DENIED_MESSAGE)
        yield server


@pytest.fixture
def environment(
    gke: GkeServer,
    chat: ChatServer,
    pubsub: PubSubServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The function's environment as deployed: its settings, and Application Default
    Credentials (an authorized_user file here, the function's service account on Google Cloud)."""
    adc = tmp_path / "application_default_credentials.json"
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "mutguard-test.apps.googleusercontent.com",
                "client_secret": "not-a-secret",
                "refresh_token": "1//mutguard-test-refresh-token",
            }
        )
    )
    dropped = ("GOOGLE_", "CLOUDSDK_", "MUTGUARD_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    for name in [n for n in os.environ if n.upper().startswith(dropped)]:
        monkeypatch.delenv(name)
    settings = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(adc),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # no gcloud configuration of the developer's
        "NO_GCE_CHECK": "True",  # google-auth: no probing for a metadata server
        "HTTPS_PROXY": gke.url,
        "https_proxy": gke.url,
        "REQUESTS_CA_BUNDLE": str(gke.ca_file),
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
        "MUTGUARD_TOPIC": SCAN_TOPIC,
        "MUTGUARD_GKE_ENDPOINT": gke.url,
        "MUTGUARD_TARGETS": json.dumps(
            [target(SHOP), target(SHOP, cluster="web"), target(DATA, region="europe-west1-b")]
        ),
        "MUTGUARD_SINKS": "slack",
        "MUTGUARD_SLACK_WEBHOOK_URL": f"{chat.url}{SLACK_HOOK}",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def serve(
    environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[str], FlaskClient]]:
    """serve(target): a test client of the Functions Framework app for that entry point, loaded
    from a main.py like the deployed one."""
    source = tmp_path / "source" / "main.py"
    source.parent.mkdir()
    source.write_text(ENTRY_POINT)
    # The framework loads the source as the module `main` and adds its directory to sys.path.
    monkeypatch.setattr(sys, "path", list(sys.path))

    def client(entry_point: str) -> FlaskClient:
        # create_app records the target and signature type in the environment.
        monkeypatch.setenv("FUNCTION_TARGET", entry_point)
        monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "http")
        return functions_framework.create_app(entry_point, str(source)).test_client()

    yield client
    sys.modules.pop("main", None)


def message_body(data: bytes, attributes: dict[str, str] | None = None) -> dict:
    """MessagePublishedData, as Eventarc delivers a Pub/Sub message."""
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes or {},
            "messageId": "17163950028301001",
            "publishTime": "2026-11-23T12:00:00.123Z",
        },
        "subscription": SUBSCRIPTION,
    }


def deliver(client: FlaskClient, data: bytes, attributes: dict[str, str] | None = None):
    """A Pub/Sub message as a CloudEvent in binary content mode (what Eventarc sends)."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "17163950028301001",
        "ce-source": f"//pubsub.googleapis.com/{SCAN_TOPIC}",
        "ce-type": MESSAGE_PUBLISHED,
        "ce-time": "2026-11-23T12:00:00.123Z",
        "Content-Type": "application/json",
    }
    return client.post("/", headers=headers, data=json.dumps(message_body(data, attributes)))


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    """The structured log entries the function wrote to stdout."""
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def slack_texts(chat: ChatServer) -> str:
    return " ".join(json.dumps(r.json()) for r in chat.delivered(SLACK_HOOK))


def test_a_dispatch_publishes_one_scan_message_per_project_and_location(serve, pubsub, gke, capsys):
    client = serve("on_message")
    response = deliver(client, b'{"action": "dispatch"}')  # what Cloud Scheduler publishes
    assert response.status_code == 200
    published = pubsub.published
    assert [p.topic for p in published] == [SCAN_TOPIC, SCAN_TOPIC]
    scans = [parse_payload(p.data) for p in published]
    assert {s.action for s in scans} == {"scan"}
    # SHOP's whole-project target covers its named cluster.
    assert [[t.label for t in s.targets] for s in scans] == [
        [f"gke:{SHOP}"],
        [f"gke:{DATA}:europe-west1-b"],
    ]
    # The dispatch message's id: delivered again, it is the same run (one fleet digest).
    run_ids = {p.attributes["run_id"] for p in published}
    assert run_ids == {"17163950028301001"}
    [entry] = logged(capsys)
    assert (entry["severity"], entry["message"]) == ("INFO", "dispatched 2 messages")
    assert {entry["run_id"]} == run_ids
    assert gke.requests_seen("*") == 0  # a dispatch scans nothing itself


def test_a_scan_message_is_scanned_and_published(serve, gke, chat, capsys):
    client = serve("on_message")
    scan = {"targets": [target(SHOP)], "publish": True, "include_rbac": False}
    # Structured content mode, built with the CloudEvents SDK, is accepted too.
    event = CloudEvent(
        {
            "type": MESSAGE_PUBLISHED,
            "source": f"//pubsub.googleapis.com/{SCAN_TOPIC}",
            "id": "17163950028301002",
        },
        message_body(json.dumps(scan).encode(), {"run_id": "5f0c" * 8}),
    )
    headers, body = to_structured(event)
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 200
    assert "web" in slack_texts(chat)
    [entry] = logged(capsys)
    assert entry["severity"] == "INFO" and entry["run_id"] == "5f0c" * 8
    assert (entry["clusters"], entry["failed_targets"]) == (1, [])
    assert entry["published"] == [{"sink": "slack", "ok": True, "sent": 1}]
    # The Application Default Credentials' token reached the API, and only GETs were made.
    assert gke.authorizations == {f"Bearer {TEST_TOKEN}"}
    assert gke.requests_seen("*") == gke.requests_seen("GET") + gke.requests_seen("POST", "/token")


def test_a_project_that_cannot_be_read_fails_the_message_after_the_others_published(
    serve, gke, chat, capsys
):
    client = serve("on_message")
    scan = {"targets": [target(SHOP), target(DENIED)], "publish": True, "include_rbac": False}
    response = deliver(client, json.dumps(scan).encode())
    # 500: Eventarc delivers the message again.
    assert response.status_code == 500
    assert response.headers["X-Google-Status"] == "crash"
    texts = slack_texts(chat)
    assert "web" in texts and DENIED in texts  # SHOP's findings, and the failure, went out
    [entry] = logged(capsys)
    assert entry["severity"] == "ERROR"
    assert entry["failed_targets"] == [f"gke:{DENIED}"]
    assert entry["message"] == f"scan incomplete, to be delivered again: not scanned: gke:{DENIED}"


def test_findings_that_did_not_reach_a_sink_fail_the_message(serve, gke, chat, capsys):
    chat.fail(SLACK_HOOK, 404, body="no_service")  # the webhook was removed
    scan = {"targets": [target(SHOP)], "publish": True, "include_rbac": False}
    response = deliver(serve("on_message"), json.dumps(scan).encode())
    assert response.status_code == 500
    [entry] = logged(capsys)
    assert entry["published"] == [{"sink": "slack", "ok": False, "sent": 0}]
    assert entry["message"].startswith("scan incomplete, to be delivered again: sink slack failed")
    assert "gcpfunctionwebhooksecret" not in entry["message"]  # the webhook URL is a secret


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        (b"", "targets", "a scan names its targets"),
        (b"not json", "", "not JSON"),
        (b'{"action": "dispatch", "targets": "all"}', "targets", "valid list"),
        (b'{"targets": [{"provider": "gke", "account": "Not_A_Project"}]}', "targets[0].account",
         "not a Google Cloud project id"),
        (b'{"action": "dispatch", "when": "now"}', "when", "unknown field"),
    ],
)  # fmt: skip
def test_a_malformed_message_is_logged_and_acknowledged(
    serve, gke, chat, pubsub, capsys, data, field, says
):
    response = deliver(serve("on_message"), data)
    assert response.status_code == 200  # a redelivery could not fix it
    [entry] = logged(capsys)
    assert entry["severity"] == "ERROR"
    assert entry["error"]["field"] == field and says in entry["error"]["message"]
    assert gke.requests_seen("*") == 0 and chat.requests() == [] and pubsub.requests == []


def test_message_data_that_is_not_base64_is_acknowledged(serve, capsys):
    body = message_body(b"")
    body["message"]["data"] = "not base64!"
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "17163950028301003",
        "ce-source": f"//pubsub.googleapis.com/{SCAN_TOPIC}",
        "ce-type": MESSAGE_PUBLISHED,
        "Content-Type": "application/json",
    }
    response = serve("on_message").post("/", headers=headers, data=json.dumps(body))
    assert response.status_code == 200
    [entry] = logged(capsys)
    assert entry["severity"] == "ERROR" and "not base64" in entry["message"]


def test_a_dispatch_whose_messages_cannot_be_published_is_delivered_again(
    serve, pubsub, monkeypatch
):
    monkeypatch.setenv("MUTGUARD_TOPIC", f"projects/{PROJECT}/topics/deleted")
    response = deliver(serve("on_message"), b'{"action": "dispatch"}')
    assert response.status_code == 500
    assert len(pubsub.requests) >= 1 and pubsub.published == []


def test_a_dispatch_with_nothing_to_dispatch_is_acknowledged_and_logged(
    serve, pubsub, monkeypatch, capsys
):
    monkeypatch.delenv("MUTGUARD_TARGETS")
    response = deliver(serve("on_message"), b'{"action": "dispatch"}')
    assert response.status_code == 200
    [entry] = logged(capsys)
    assert entry["severity"] == "ERROR" and "MUTGUARD_TARGETS is not set" in entry["message"]
    assert pubsub.requests == []


def test_audit_scans_and_returns_the_report(serve, gke, chat):
    payload = {"targets": [target(SHOP), target(DENIED)], "include_rbac": False}
    response = serve("audit").post("/", json=payload)
    assert response.status_code == 200
    body = response.get_json()
    [cluster] = body["report"]["clusters"]
    assert (cluster["name"], cluster["account"], cluster["mut"]) == ("web", SHOP, 2)
    assert body["failed_targets"] == [f"gke:{DENIED}"]
    assert [e["scope"] for e in body["report"]["errors"]] == [f"gke:{DENIED}"]
    assert (body["published"], body["publish_error"]) == ([], None)
    assert chat.requests() == []  # publish was not asked for


def test_audit_dispatches_through_the_topic(serve, pubsub, gke):
    response = serve("audit").post("/", json={"action": "dispatch", "targets": [target(DATA)]})
    assert response.status_code == 202
    body = response.get_json()
    assert body["dispatched"] == 1
    [message] = pubsub.published
    assert message.attributes == {"run_id": body["run_id"]}
    assert json.loads(message.data) == {"targets": [target(DATA)]}  # action scan is the default
    assert gke.requests_seen("*") == 0


@pytest.mark.parametrize(
    ("payload", "field", "says"),
    [
        ({"targets": [{"provider": "gcp", "account": SHOP}]}, "targets[0].provider", "'eks'"),
        ({"targets": [target(SHOP)], "sinks": ["slack"]}, "sinks", "only used with publish"),
        ({"action": "rescan"}, "action", "'scan', 'dispatch' or 'finish_run'"),
        ([target(SHOP)], "", "not list"),
    ],
)
def test_audit_refuses_a_bad_payload_and_runs_nothing(
    serve, gke, chat, pubsub, payload, field, says
):
    response = serve("audit").post("/", json=payload)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["status"], error["field"]) == (400, field) and says in error["message"]
    assert gke.requests_seen("*") == 0 and chat.requests() == [] and pubsub.requests == []


def test_audit_answers_other_methods_with_405(serve, gke):
    response = serve("audit").get("/")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.get_json()["error"]["status"] == 405
    assert gke.requests_seen("*") == 0


def test_audit_names_a_missing_setting(serve, monkeypatch):
    monkeypatch.delenv("MUTGUARD_TOPIC")
    response = serve("audit").post("/", json={"action": "dispatch"})
    assert response.status_code == 500
    assert "MUTGUARD_TOPIC is not set" in response.get_json()["error"]["message"]


def test_a_published_scan_stores_its_report_and_slack_links_to_it(
    serve, gke, chat, gcs, monkeypatch
):
    monkeypatch.setenv("MUTGUARD_REPORT_STORE", f"gcs:{BUCKET}/reports")
    monkeypatch.setenv("MUTGUARD_REPORT_LINK_TTL", "console")  # signing needs a signing identity
    payload = {"targets": [target(SHOP)], "publish": True, "include_rbac": False}
    body = serve("audit").post("/", json=payload).get_json()
    assert body["publish_error"] is None
    html, json_report = sorted(gcs.names(BUCKET))
    assert body["stored_report"] == {
        "json": f"gs://{BUCKET}/{json_report}",
        "html": f"gs://{BUCKET}/{html}",
    }
    assert html.startswith("reports/") and f"_gke_{SHOP}_" in html
    assert json.loads(gcs.stored(BUCKET, json_report).data)["clusters"][0]["name"] == "web"
    console = f"https://console.cloud.google.com/storage/browser/_details/{BUCKET}/{html}"
    assert f"<{console}|Full report>" in slack_texts(chat)
