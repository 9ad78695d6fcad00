"""The Azure Functions app (Python v2 programming model): its functions are indexed the way the
worker indexes them (FunctionApp.get_functions) and called with real azure.functions objects
(HttpRequest, QueueMessage, TimerRequest; output bindings as the worker hands them, encoded
afterwards by the SDK's own queue converter, as the worker does before the host queues them).

Behind them are real local servers: ARM over HTTPS (MUTGUARD_ARM_ENDPOINT, the test CA trusted
through REQUESTS_CA_BUNDLE, which azure-core's requests transport honours when connection_verify
is left at True), the function's managed identity as on App Service (IDENTITY_ENDPOINT and
IDENTITY_HEADER, found by DefaultAzureCredential), and a Slack incoming webhook.
"""

import inspect
import json
import logging
import os
import re
import typing
import urllib.request
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.decorators.function_app import Function
from azure.storage.blob import BlobServiceClient

from mutguard.errors import ConfigurationError
from mutguard.functions.azure.function_app import ScanIncomplete, app
from mutguard.functions.payload import PayloadError, parse_payload

from builders import FIXTURES
from servers.aks import ArmServer
from servers.azurite import ACCOUNT as AZURITE_ACCOUNT
from servers.azurite import ACCOUNT_KEY as AZURITE_KEY
from servers.chat import ChatServer
from servers.identity import ManagedIdentityServer
from servers.tls import TestCa

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.mutguard-function-identity"
ARM = "https://management.azure.com"
SUB_A = "00000000-0000-0000-0000-000000000001"
SUB_B = "9b3c1d2e-4f5a-4b6c-8d7e-0f1a2b3c4d5e"
DENIED = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
CLUSTER = "a-test-wf-aks"
ARM_RESOURCE = json.loads((FIXTURES / "aks" / "managed-cluster.arm.json").read_text())
SLACK_HOOK = "/services/T0MUTGUARD/B0MUTGUARD/azurefunctionwebhooksecret"
AUDIT_URL = "https://mutguard-func.azurewebsites.net/api/audit"
DENIED_MESSAGE = (
    "The client '0b9e7f3a-6c1d-4e2f-8a5b-9c0d1e2f3a4b' with object id "
    "'0b9e7f3a-6c1d-4e2f-8a5b-9c0d1e2f3a4b' does not have authorization to perform action "
    f"'Microsoft.ContainerService/managedClusters/read' over scope '/subscriptions/{DENIED}'."
)
MESSAGE_ID = "6f1d3c2e-7a4b-4c5d-9e8f-0a1b2c3d4e5f"
T = typing.TypeVar("T")


class Out(func.Out[T]):
    """What the worker passes for an output binding: a holder it reads after the call."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T | None:
        return self._value


@cache
def user_functions() -> dict[str, Function]:
    # Indexed once, as the worker does: a second get_functions() on the same app reports every
    # name as a duplicate.
    return {f.get_function_name(): f for f in app.get_functions()}


def call(name: str, **arguments: Any) -> Any:
    return user_functions()[name].get_user_function()(**arguments)


def queued(messages: Out) -> list[str]:
    """The messages the host would queue: the output value as the SDK's converter encodes it."""
    if messages.get() is None:
        return []
    datum = func.get_binding_registry().get("queue").encode(messages.get(), expected_type=None)
    assert datum.type == "json"
    return json.loads(datum.value)


def target(subscription: str, **more: str) -> dict[str, str]:
    return {"provider": "aks", "account": subscription, **more}


@pytest.fixture
def arm(test_ca: TestCa) -> Iterator[ArmServer]:
    """SUB_A holds the fixture cluster; listing DENIED's clusters is refused."""
    with ArmServer(test_ca, TOKEN) as server:
        server.add_subscription(SUB_A)
        server.add_cluster(SUB_A, ARM_RESOURCE)
        server.add_fault(
            rf"/subscriptions/{DENIED}/providers/Microsoft\.ContainerService/managedClusters",
            403,
            "AuthorizationFailed",
            DENIED_MESSAGE,
        )
        yield server


@pytest.fixture
def identity() -> Iterator[ManagedIdentityServer]:
    with ManagedIdentityServer({ARM: TOKEN}) as server:
        yield server


@pytest.fixture
def environment(
    arm: ArmServer,
    identity: ManagedIdentityServer,
    chat: ChatServer,
    test_ca: TestCa,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The function app's settings and identity as on Azure. Nothing of the developer's machine
    (Azure CLI sign-in, service principal variables, proxies) takes part."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(test_ca.ca_pem)
    dropped = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_", "MUTGUARD_", "HTTP_PROXY", "HTTPS_PROXY")
    for name in [n for n in os.environ if n.upper().startswith(dropped)]:
        monkeypatch.delenv(name)
    settings = {
        "IDENTITY_ENDPOINT": identity.endpoint,
        "IDENTITY_HEADER": identity.header,
        "REQUESTS_CA_BUNDLE": str(ca_file),
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
        "MUTGUARD_ARM_ENDPOINT": arm.url,
        "MUTGUARD_TARGETS": json.dumps(
            [target(SUB_A), target(SUB_A, cluster=CLUSTER), target(SUB_B, region="westeurope")]
        ),
        "MUTGUARD_SINKS": "slack",
        "MUTGUARD_SLACK_WEBHOOK_URL": f"{chat.url}{SLACK_HOOK}",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def timer_request(past_due: bool = False) -> func.TimerRequest:
    """The timer's trigger data as the host sends it, decoded by the SDK's converter."""
    data = {
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {
            "Last": "2026-11-23T06:00:00+00:00",
            "Next": "2026-11-23T12:00:00+00:00",
            "LastUpdated": "2026-11-23T06:00:00.0123456+00:00",
        },
        "IsPastDue": past_due,
    }
    converter = func.get_binding_registry().get("timerTrigger")
    return converter.decode(meta.Datum(json.dumps(data), "json"), trigger_metadata={})


def queue_message(body: str | bytes, dequeue_count: int = 1) -> func.QueueMessage:
    """A queue trigger's message as the host sends it (body and trigger metadata), decoded by
    the SDK's converter."""
    metadata = {
        "Id": meta.Datum(MESSAGE_ID, "string"),
        "DequeueCount": meta.Datum(dequeue_count, "int"),
        "PopReceipt": meta.Datum("AgAAAAMAAAAAAAAAwN5n0QZd3AE=", "string"),
        "InsertionTime": meta.Datum("2026-11-23T12:00:00+00:00", "string"),
        "ExpirationTime": meta.Datum("2026-11-30T12:00:00+00:00", "string"),
        "NextVisibleTime": meta.Datum("2026-11-23T12:10:00+00:00", "string"),
    }
    datum = meta.Datum(body, "bytes" if isinstance(body, bytes) else "string")
    return func.get_binding_registry().get("queueTrigger").decode(datum, trigger_metadata=metadata)


def post(body: Any) -> func.HttpRequest:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return func.HttpRequest(
        method="POST", url=AUDIT_URL, headers={"Content-Type": "application/json"}, body=data
    )


def slack_texts(chat: ChatServer) -> str:
    return " ".join(json.dumps(r.json()) for r in chat.delivered(SLACK_HOOK))


def test_the_app_declares_the_contracted_triggers_and_bindings():
    # The function metadata the worker sends the host (function.json of the v1 model).
    bindings = {
        name: {b["name"]: b for b in json.loads(function.get_function_json())["bindings"]}
        for name, function in user_functions().items()
    }
    assert set(bindings) == {"scheduled_dispatch", "scan_target", "audit"}
    queue_out = {
        "direction": "OUT",
        "type": "queue",
        "name": "messages",
        "queueName": "%MUTGUARD_QUEUE_NAME%",
        "connection": "AzureWebJobsStorage",
    }
    timer = bindings["scheduled_dispatch"]["timer"]
    assert (timer["type"], timer["schedule"], timer["runOnStartup"]) == (
        "timerTrigger",
        "%MUTGUARD_SCHEDULE%",
        False,
    )
    assert bindings["scheduled_dispatch"]["messages"] == queue_out
    trigger = bindings["scan_target"]["message"]
    assert (trigger["type"], trigger["queueName"], trigger["connection"]) == (
        "queueTrigger",
        "%MUTGUARD_QUEUE_NAME%",
        "AzureWebJobsStorage",
    )
    http = bindings["audit"]["request"]
    assert (http["type"], http["route"], http["authLevel"]) == ("httpTrigger", "audit", "FUNCTION")
    assert "methods" not in http  # every method reaches it, so that it can answer 405
    assert bindings["audit"]["messages"] == queue_out
    assert bindings["audit"]["$return"]["type"] == "http"


def test_every_parameter_fits_its_binding_as_the_worker_checks_when_loading():
    registry = func.get_binding_registry()
    for function in user_functions().values():
        user_function = function.get_user_function()
        hints = typing.get_type_hints(user_function)
        parameters = set(inspect.signature(user_function).parameters)
        bindings = {b.name: b for b in function.get_bindings() if b.name != "$return"}
        assert parameters == set(bindings), function.get_function_name()
        for name, binding in bindings.items():
            converter = registry.get(binding.type)
            annotation = hints[name]
            if typing.get_origin(annotation) is func.Out:
                assert binding.get_dict_repr()["direction"].name == "OUT"
                assert converter.check_output_type_annotation(typing.get_args(annotation)[0])
            else:
                assert converter.check_input_type_annotation(annotation), name
        returns = [b for b in function.get_bindings() if b.name == "$return"]
        if returns:
            assert registry.get(returns[0].type).check_output_type_annotation(hints["return"])


def test_the_timer_queues_one_scan_message_per_subscription_and_region(environment, arm, identity):
    messages = Out()
    call("scheduled_dispatch", timer=timer_request(), messages=messages)
    scans = [parse_payload(m) for m in queued(messages)]
    # SUB_A's whole-subscription target covers its named cluster.
    assert [[t.label for t in s.targets] for s in scans] == [
        [f"aks:{SUB_A}"],
        [f"aks:{SUB_B}:westeurope"],
    ]
    assert {(s.action, s.publish) for s in scans} == {("scan", True)}  # a schedule alerts
    assert arm.requests_seen() == 0 and identity.requests == []  # a dispatch scans nothing


def test_the_timer_fails_when_there_is_nothing_to_dispatch(environment, monkeypatch):
    monkeypatch.delenv("MUTGUARD_TARGETS")
    messages = Out()
    with pytest.raises(ConfigurationError, match="MUTGUARD_TARGETS is not set"):
        call("scheduled_dispatch", timer=timer_request(past_due=True), messages=messages)
    assert queued(messages) == []


def test_a_queued_scan_is_scanned_as_the_managed_identity_and_published(
    environment, arm, identity, chat, caplog
):
    caplog.set_level(logging.INFO, logger="mutguard.functions.azure")
    body = json.dumps({"targets": [target(SUB_A)], "publish": True, "include_rbac": False})
    assert call("scan_target", message=queue_message(body)) is None
    assert CLUSTER in slack_texts(chat)
    assert "scanned: 1 clusters" in caplog.text
    # The token came from the App Service identity endpoint, for ARM, and ARM was only read.
    assert {(r.resource, r.api_version, r.header_ok) for r in identity.requests} == {
        (ARM, "2019-08-01", True)
    }
    assert arm.methods_seen() == {"GET"}


def test_a_subscription_that_cannot_be_read_fails_the_message_after_the_others_published(
    environment, arm, chat, caplog
):
    body = json.dumps(
        {"targets": [target(SUB_A), target(DENIED)], "publish": True, "include_rbac": False}
    )
    with pytest.raises(ScanIncomplete, match=f"not scanned: aks:{DENIED}$"):
        call("scan_target", message=queue_message(body, dequeue_count=2))
    texts = slack_texts(chat)
    assert CLUSTER in texts and DENIED in texts  # SUB_A's findings, and the failure, went out
    assert "(try 2) incomplete" in caplog.text


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (b"", "targets", "a scan names its targets"),
        (b"\xff\xfe", "", "not JSON"),
        (json.dumps({"targets": [target("not-a-guid")]}), "targets[0].account", "GUID"),
        (json.dumps({"action": "dispatch"}), "action", "the scan queue takes scans"),
    ],
)
def test_a_malformed_queue_message_fails_so_that_it_ends_in_the_poison_queue(
    environment, arm, identity, chat, caplog, body, field, says
):
    with pytest.raises(PayloadError) as raised:
        call("scan_target", message=queue_message(body))
    assert raised.value.field == field and says in raised.value.message
    assert f"queue message {MESSAGE_ID} is malformed" in caplog.text
    assert arm.requests_seen() == 0 and identity.requests == [] and chat.requests() == []


def test_audit_scans_and_returns_the_report(environment, arm, chat):
    messages = Out()
    payload = {"targets": [target(SUB_A), target(DENIED)], "include_rbac": False}
    response = call("audit", request=post(payload), messages=messages)
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = json.loads(response.get_body())
    [cluster] = body["report"]["clusters"]
    assert (cluster["name"], cluster["account"], cluster["provider"]) == (CLUSTER, SUB_A, "aks")
    assert cluster["mut"] == 2  # public API server without allow-list; default RBAC assumed
    assert body["failed_targets"] == [f"aks:{DENIED}"]
    assert (body["published"], body["publish_error"]) == ([], None)
    assert queued(messages) == [] and chat.requests() == []


def test_audit_dispatches_through_the_queue(environment, arm):
    messages = Out()
    payload = {"action": "dispatch", "targets": [target(SUB_B)], "publish": True}
    response = call("audit", request=post(payload), messages=messages)
    assert response.status_code == 202
    body = json.loads(response.get_body())
    assert body["dispatched"] == 1 and len(body["run_id"]) == 32
    assert [json.loads(m) for m in queued(messages)] == [
        {"targets": [target(SUB_B)], "publish": True}
    ]
    assert arm.requests_seen() == 0


@pytest.mark.parametrize(
    ("payload", "field", "says"),
    [
        ({"targets": [{"provider": "azure", "account": SUB_A}]}, "targets[0].provider", "'aks'"),
        ({"targets": [target(SUB_A)], "digest": "yes"}, "digest", "boolean"),
        ({"action": "dispatch", "targets": [target(SUB_A)], "extra": 1}, "extra", "unknown"),
        (b"{", "", "not JSON"),
    ],
)
def test_audit_refuses_a_bad_payload_and_runs_nothing(
    environment, arm, identity, chat, payload, field, says
):
    messages = Out()
    response = call("audit", request=post(payload), messages=messages)
    assert response.status_code == 400
    error = json.loads(response.get_body())["error"]
    assert (error["status"], error["field"]) == (400, field) and says in error["message"]
    assert queued(messages) == []
    assert arm.requests_seen() == 0 and identity.requests == [] and chat.requests() == []


def test_audit_answers_other_methods_with_405(environment, arm):
    request = func.HttpRequest(method="GET", url=AUDIT_URL, headers={}, body=b"")
    response = call("audit", request=request, messages=Out())
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert json.loads(response.get_body())["error"]["status"] == 405
    assert arm.requests_seen() == 0


def test_audit_names_a_missing_setting(environment, monkeypatch):
    monkeypatch.delenv("MUTGUARD_TARGETS")
    messages = Out()
    response = call("audit", request=post({"action": "dispatch"}), messages=messages)
    assert response.status_code == 500
    assert "MUTGUARD_TARGETS is not set" in json.loads(response.get_body())["error"]["message"]
    assert queued(messages) == []


def test_an_identity_that_gets_no_token_fails_the_target_not_the_run(
    environment, arm, identity, monkeypatch
):
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    # After the managed identity, DefaultAzureCredential would try the developer sign-ins of
    # this machine (Azure CLI, azd, PowerShell); "prod" keeps to the deployed kinds.
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "prod")
    payload = {"targets": [target(SUB_A)], "include_rbac": False}
    response = call("audit", request=post(payload), messages=Out())
    assert response.status_code == 200
    body = json.loads(response.get_body())
    assert body["failed_targets"] == [f"aks:{SUB_A}"]
    assert arm.requests_seen() == 0  # nothing went out without a token
    assert [r.header_ok for r in identity.requests] == [False]


def test_a_published_scan_stores_its_report_and_slack_links_to_it(
    environment, arm, chat, azurite, monkeypatch
):
    # The account key (as a connection string app setting would hold it) signs a service SAS;
    # deployed, the managed identity signs a user delegation SAS instead.
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={azurite.blob_url};"
    )
    container = f"reports-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(connection).create_container(container)
    monkeypatch.setenv("MUTGUARD_AZURE_STORAGE_CONNECTION_STRING", connection)
    monkeypatch.setenv("MUTGUARD_REPORT_STORE", f"azure-blob:{azurite.blob_url}/{container}/runs")
    monkeypatch.setenv("MUTGUARD_REPORT_LINK_TTL", "900")
    body = json.dumps({"targets": [target(SUB_A)], "publish": True, "include_rbac": False})
    assert call("scan_target", message=queue_message(body)) is None

    (link,) = re.findall(r"<([^|>]+)\|Full report>", slack_texts(chat))
    assert link.startswith(f"{azurite.blob_url}/{container}/runs/") and "sig=" in link
    with urllib.request.urlopen(link, timeout=10) as answer:
        page = answer.read()
    blobs = BlobServiceClient.from_connection_string(connection).get_container_client(container)
    html, json_report = sorted(blob.name for blob in blobs.list_blobs())
    assert page == blobs.download_blob(html).readall() and CLUSTER.encode() in page
    assert json_report.endswith("/report.json") and f"_aks_{SUB_A}_" in json_report
