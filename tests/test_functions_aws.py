"""The AWS Lambda handlers, called the way the Lambda runtime calls them: `handler(event,
context)` with EventBridge Scheduler's Input as the dispatcher's event, and for the worker the
SQS event Lambda's event source mapping builds from the messages the dispatcher really queued,
or a direct invoke's payload (`handler` and `direct_handler`).

Behind them are real local servers only: moto_server (SQS, STS, DynamoDB, Organizations), the
EKS gap server in front of it, the HTTPS Kubernetes API server and a Slack incoming webhook. The
handlers' boto3 finds them through AWS_ENDPOINT_URL(_<SERVICE>) like any boto3 program would.
"""

import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mutguard.errors import ConfigurationError
from mutguard.functions.aws_lambda import dispatcher, worker
from mutguard.functions.aws_lambda.dispatcher import DispatchError
from mutguard.functions.payload import InvokePayload, parse_payload

from builders import bootstrap_items, cluster_role_binding
from servers.aws import DEFAULT_ACCOUNT, AwsFakes
from servers.aws_clients import AwsClients
from servers.chat import ChatServer
from servers.kube import KubeApiServer
from servers.sqs_gap import SqsGapServer

ROLE_TEMPLATE = "arn:aws:iam::{account}:role/mutguard-reader"
READER_ROLE = ROLE_TEMPLATE.format(account=DEFAULT_ACCOUNT)
SLACK_HOOK = "/services/T0MUTGUARD/B0MUTGUARD/lambdaWebhookSecret0123456789"
QUEUE = "mutguard-scan"
TABLE = "mutguard-state"
PRIVATE = {"endpointPublicAccess": False, "endpointPrivateAccess": True, "publicAccessCidrs": []}
# The schedule's Input: in-cluster reads are off, as moto's cluster endpoints are fake names.
SCHEDULE_INPUT = {"action": "dispatch", "publish": True, "include_rbac": False}
DESIGN_PAYLOAD = {
    "action": "scan",
    "targets": [
        {"provider": "eks", "account": DEFAULT_ACCOUNT, "region": "eu-west-1", "cluster": "prod"}
    ],
    "publish": True,
    "sinks": ["slack"],
    "include_rbac": True,
}


@dataclass(frozen=True)
class LambdaContext:
    """The Lambda runtime's context object, with the fields Powertools reads."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str


def context(function: str) -> LambdaContext:
    return LambdaContext(
        function_name=function,
        memory_limit_in_mb=1024,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT}:function:{function}",
        aws_request_id=str(uuid.uuid4()),
    )


def dispatch(event: Any = SCHEDULE_INPUT) -> dict[str, Any]:
    return dispatcher.handler(event, context("mutguard-dispatcher"))


def work(event: Any) -> dict[str, Any]:
    return worker.handler(event, context("mutguard-worker"))


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of the event Lambda's SQS event source mapping passes to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfMessageAttributes": message.get("MD5OfMessageAttributes"),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


@dataclass
class Lambda:
    """The deployed functions' surroundings: their queue, state table and Slack webhook."""

    aws: AwsFakes
    cloud: AwsClients
    chat: ChatServer
    queue_url: str
    monkeypatch: pytest.MonkeyPatch

    def set_targets(self, *regions: str) -> None:
        targets = [{"provider": "eks", "account": DEFAULT_ACCOUNT, "region": r} for r in regions]
        self.monkeypatch.setenv("MUTGUARD_TARGETS", json.dumps(targets))

    def queued_event(self) -> dict[str, Any]:
        """Receive what is in the queue, as Lambda's poller does, and hand it over as one batch."""
        attributes = self.cloud.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )
        arn = attributes["Attributes"]["QueueArn"]
        return {"Records": [lambda_record(m, arn) for m in self.cloud.receive_all(self.queue_url)]}

    def slack_headers(self) -> list[str]:
        return [r.json()["blocks"][0]["text"]["text"] for r in self.chat.delivered(SLACK_HOOK)]

    def stored_clusters(self) -> set[str]:
        items = self.cloud.dynamodb.scan(TableName=TABLE)["Items"]
        # Keys starting with "#" are the store's own items (suppressions, publish claims).
        return {key for item in items if not (key := item["cluster_key"]["S"]).startswith("#")}


@pytest.fixture
def fn(
    aws: AwsFakes, cloud: AwsClients, chat: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> Lambda:
    queue_url = cloud.create_queue(QUEUE)
    cloud.create_state_table(TABLE)
    settings = {
        "MUTGUARD_QUEUE_URL": queue_url,
        "MUTGUARD_ROLE_ARN": ROLE_TEMPLATE,
        "MUTGUARD_SINKS": "slack",
        "MUTGUARD_SLACK_WEBHOOK_URL": chat.url + SLACK_HOOK,
        "MUTGUARD_STATE_STORE": f"dynamodb:{TABLE}",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return Lambda(aws, cloud, chat, queue_url, monkeypatch)


@pytest.fixture
def two_regions(fn: Lambda) -> Lambda:
    """A public cluster in us-east-1 and a private one in eu-west-1, both configured targets."""
    home = fn.aws.session()
    fn.aws.create_cluster(home, "us-east-1", "web", version="1.34")
    fn.aws.create_cluster(home, "eu-west-1", "payments", version="1.34", resourcesVpcConfig=PRIVATE)
    fn.set_targets("us-east-1", "eu-west-1")
    return fn


@pytest.fixture
def lambda_logs() -> Iterator[io.StringIO]:
    """What the functions write to stdout, which Lambda sends to CloudWatch line by line."""
    handler = worker.logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def scan_payloads(event: dict[str, Any]) -> list[InvokePayload]:
    return [parse_payload(record["body"]) for record in event["Records"]]


def log_lines(logs: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in logs.getvalue().splitlines()]


# The worker's two entry points for a direct invoke: the deployed function's handler, which
# takes SQS batches too, and the one that takes direct invokes only.
DIRECT_HANDLERS = [worker.handler, worker.direct_handler]


# --- A scheduled run ------------------------------------------------------------------------


def test_a_scheduled_run_queues_one_scan_per_region_and_publishes_once(two_regions: Lambda):
    fn, call = two_regions, context("mutguard-dispatcher")
    answer = dispatcher.handler(SCHEDULE_INPUT, call)
    assert answer == {"statusCode": 200, "run_id": call.aws_request_id, "dispatched": 2}

    event = fn.queued_event()
    assert sorted(b.targets[0].region for b in scan_payloads(event)) == [
        "eu-west-1",
        "us-east-1",
    ]
    assert all(
        (b.action, b.publish, b.include_rbac) == ("scan", True, False) for b in scan_payloads(event)
    )
    run_ids = {r["messageAttributes"]["run_id"]["stringValue"] for r in event["Records"]}
    assert run_ids == {call.aws_request_id}
    # The run was recorded in the state table before its parts were queued; each carries its own.
    parts = sorted((b.run.id, b.run.part, b.run.parts) for b in scan_payloads(event) if b.run)
    assert parts == [(call.aws_request_id, 1, 2), (call.aws_request_id, 2, 2)]

    assert work(event) == {"batchItemFailures": []}
    *alerts, digest = fn.slack_headers()  # the second part to finish sends the fleet digest
    assert sorted(h.split(" ")[0] for h in alerts) == ["payments", "web"]
    assert digest.startswith("mutguard fleet digest: 2 clusters, worst MUT ")
    assert len(fn.stored_clusters()) == 2

    # The next scheduled run finds nothing new: only its own fleet digest is sent.
    assert dispatch()["dispatched"] == 2
    assert work(fn.queued_event()) == {"batchItemFailures": []}
    assert [h.split(":")[0] for h in fn.slack_headers()[2:]] == ["mutguard fleet digest"] * 2


def test_only_the_message_of_a_region_that_cannot_be_read_is_retried(
    two_regions: Lambda, lambda_logs: io.StringIO
):
    fn = two_regions
    fn.aws.eks_gap.add_fault(
        "GET",
        "/clusters",
        403,
        "AccessDeniedException",
        "User is not authorized to perform: eks:ListClusters",
        region="eu-west-1",
    )
    dispatch()
    event = fn.queued_event()
    (denied,) = [r for r in event["Records"] if "eu-west-1" in r["body"]]

    lambda_logs.truncate(0)
    lambda_logs.seek(0)
    assert work(event) == {"batchItemFailures": [{"itemIdentifier": denied["messageId"]}]}
    # Every part reported once, so the fleet digest goes out, naming the region not read.
    assert [h.split(" ")[0] for h in fn.slack_headers()] == ["web", "mutguard"]
    digest = json.dumps(fn.chat.delivered(SLACK_HOOK)[-1].json()["blocks"])
    assert "1 not scanned" in digest and f"eks:{DEFAULT_ACCOUNT}:eu-west-1" in digest
    assert len(fn.stored_clusters()) == 1
    (incomplete,) = [line for line in log_lines(lambda_logs) if line["level"] == "WARNING"]
    assert incomplete["message"] == "scan incomplete"
    assert incomplete["message_id"] == denied["messageId"]
    assert incomplete["reason"].startswith("not scanned: eks:")
    assert not any("exception" in line for line in log_lines(lambda_logs))


def test_malformed_messages_are_failed_and_the_others_processed(
    two_regions: Lambda, lambda_logs: io.StringIO
):
    fn = two_regions
    dispatch()
    malformed = [
        "{not json",
        json.dumps({"action": "scan", "targets": [{"provider": "ecs", "account": "1"}]}),
        json.dumps({"action": "dispatch"}),
    ]
    for body in malformed:
        fn.cloud.sqs.send_message(QueueUrl=fn.queue_url, MessageBody=body)
    event = fn.queued_event()
    assert len(event["Records"]) == 5
    bad = {r["messageId"] for r in event["Records"] if r["body"] in malformed}

    failures = work(event)["batchItemFailures"]
    assert {f["itemIdentifier"] for f in failures} == bad
    assert sorted(h.split(" ")[0] for h in fn.slack_headers()) == ["mutguard", "payments", "web"]

    # One line each says why, naming the field; left to the queue's redrive policy, which
    # moves a message to the dead-letter queue after its maxReceiveCount.
    errors = [line for line in log_lines(lambda_logs) if line["level"] == "ERROR"]
    assert {line["message_id"] for line in errors} == bad
    assert all(line["message"].startswith("malformed scan message") for line in errors)
    assert sorted(line["field"] for line in errors) == ["", "action", "targets[0].provider"]
    assert not any("exception" in line for line in errors)


def test_a_scan_that_could_not_publish_is_retried(two_regions: Lambda):
    fn = two_regions
    fn.set_targets("us-east-1")
    fn.chat.fail(SLACK_HOOK, 404, times=10, body="no_service")
    dispatch()
    event = fn.queued_event()
    assert work(event) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
    }
    assert fn.stored_clusters() == set()  # not published, so not remembered: said next time


# --- Manual invoke ---------------------------------------------------------------------------


@pytest.fixture
def prod(fn: Lambda, kube_api: KubeApiServer) -> KubeApiServer:
    """Cluster `prod` in eu-west-1, whose API server is the local fake: it grants cluster-admin to
    anonymous requests, and knows the reader role the worker assumes."""
    fn.aws.create_cluster(fn.aws.session(), "eu-west-1", "prod", version="1.31")
    fn.aws.eks_gap.set_cluster_endpoint("eu-west-1", "prod", kube_api.url, kube_api.ca_pem)
    kube_api.sts_url = fn.aws.moto.url
    kube_api.cluster_name = "prod"
    kube_api.add_iam_identity(READER_ROLE, "mutguard", ["mutguard-readers"])
    kube_api.add_list({"kind": "List", "items": list(bootstrap_items())})
    kube_api.add(
        cluster_role_binding("anon-admin", "cluster-admin", ("Group", "system:unauthenticated"))
    )
    return kube_api


@pytest.mark.parametrize("handler", DIRECT_HANDLERS)
def test_the_design_payload_returns_the_report(fn: Lambda, prod: KubeApiServer, handler: Any):
    call = context("mutguard-worker")
    answer = handler(DESIGN_PAYLOAD, call)
    assert (answer["statusCode"], answer["run_id"]) == (200, call.aws_request_id)
    (cluster,) = answer["report"]["clusters"]
    assert (cluster["name"], cluster["location"], cluster["account"]) == (
        "prod",
        "eu-west-1",
        DEFAULT_ACCOUNT,
    )
    assert cluster["mut"] == 0
    anonymous_admin = next(
        f for f in cluster["findings"] if f["check_id"] == "rbac.anonymous_admin"
    )
    assert anonymous_admin["status"] == "FAIL"
    assert answer["failed_targets"] == [] and answer["publish_error"] is None
    assert answer["published"] == [{"sink": "slack", "ok": True, "sent": 1, "error": None}]
    assert fn.slack_headers()[0].startswith("prod")
    # The scan read the cluster as the reader role, and only read.
    assert "mutguard" in prod.identities_seen()
    assert prod.requests_seen("*", ".*") == prod.requests_seen("GET", ".*")


@pytest.mark.parametrize("handler", DIRECT_HANDLERS)
@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"include_rbca": True}, "include_rbca", "unknown field"),
        (
            {"targets": [{"provider": "ecs", "account": DEFAULT_ACCOUNT}]},
            "targets[0].provider",
            "'eks'",
        ),
        ({"targets": [{"provider": "eks", "account": "12345"}]}, "targets[0].account", "12-digit"),
        ({"action": "dispatch"}, "action", "dispatcher"),
    ],
)
def test_a_bad_payload_is_a_400_naming_the_field_and_nothing_runs(
    fn: Lambda,
    prod: KubeApiServer,
    change: dict[str, Any],
    field: str,
    says: str,
    handler: Any,
):
    eks_requests = fn.aws.eks_gap.requests_seen("*", ".*")  # creating `prod` made some
    answer = handler({**DESIGN_PAYLOAD, **change}, context("mutguard-worker"))
    assert answer["statusCode"] == 400
    assert answer["error"]["status"] == 400 and answer["error"]["field"] == field
    assert says in answer["error"]["message"]
    assert fn.aws.eks_gap.requests_seen("*", ".*") == eks_requests
    assert prod.requests_seen("*", ".*") == 0 and fn.chat.requests() == []
    assert fn.cloud.receive_all(fn.queue_url) == []


SNS_EVENT = {
    "Records": [
        {
            "EventSource": "aws:sns",
            "EventSubscriptionArn": f"arn:aws:sns:us-east-1:{DEFAULT_ACCOUNT}:mutguard:1",
            "Sns": {"Type": "Notification", "Message": json.dumps(DESIGN_PAYLOAD)},
        }
    ]
}


@pytest.mark.parametrize(
    ("handler", "event", "field"),
    [
        (worker.handler, SNS_EVENT, "Records"),
        (worker.handler, {"Records": []}, "Records"),
        (worker.handler, [DESIGN_PAYLOAD], ""),
        (worker.handler, {"Records": [{"eventSource": "aws:sqs"}]}, "Records"),
        (worker.direct_handler, {"Records": [{"eventSource": "aws:sqs"}]}, "Records"),
    ],
)
def test_an_event_of_no_known_shape_is_one_400_and_one_log_line(
    fn: Lambda,
    prod: KubeApiServer,
    lambda_logs: io.StringIO,
    handler: Any,
    event: Any,
    field: str,
):
    eks_requests = fn.aws.eks_gap.requests_seen("*", ".*")
    answer = handler(event, context("mutguard-worker"))
    assert answer["statusCode"] == 400 and answer["error"]["field"] == field
    (line,) = log_lines(lambda_logs)
    assert (line["level"], line["message"], line["field"]) == ("ERROR", "payload rejected", field)
    if field == "Records":
        assert "only `handler` takes them, as an SQS batch" in line["reason"]
    assert "exception" not in line
    assert fn.aws.eks_gap.requests_seen("*", ".*") == eks_requests
    assert prod.requests_seen("*", ".*") == 0


def test_the_direct_handler_takes_no_sqs_batch(two_regions: Lambda):
    fn = two_regions
    dispatch()
    answer = worker.direct_handler(fn.queued_event(), context("mutguard-worker"))
    assert answer["statusCode"] == 400 and answer["error"]["field"] == "Records"
    assert "`handler`" in answer["error"]["message"]
    assert fn.slack_headers() == []


BATCH_PROBE = """
import json, sys
from types import SimpleNamespace
from mutguard.functions.aws_lambda import worker
record = {"messageId": "m-1", "body": "{}", "eventSource": "aws:sqs", "messageAttributes": {}}
context = SimpleNamespace(function_name="mutguard-worker", memory_limit_in_mb=1024,
                          invoked_function_arn="arn:aws:lambda:us-east-1:1:function:w",
                          aws_request_id="r-1")
answer = worker.handler({"Records": [record]}, context)
loaded = sorted(m for m in sys.modules if m.startswith((
    "aws_lambda_powertools.utilities.batch", "aws_lambda_powertools.utilities.parser", "asyncio"
)))
print(json.dumps({"answer": answer, "loaded": loaded}))
"""


def test_a_batch_is_answered_without_powertools_batch_utility_parser_models_or_asyncio():
    # Each would be cold start time of a queued scan: the batch utility loads every event class
    # and asyncio, and Powertools' parser models are built when pydantic is already loaded.
    done = subprocess.run(
        [sys.executable, "-c", BATCH_PROBE], capture_output=True, text=True, check=True
    )
    probe = json.loads(done.stdout.splitlines()[-1])
    assert probe["answer"] == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert probe["loaded"] == []


def test_the_dispatcher_sends_a_scan_to_the_worker_and_queues_nothing(two_regions: Lambda):
    eks_requests = two_regions.aws.eks_gap.requests_seen("*", ".*")
    answer = dispatch(
        {"action": "scan", "targets": [{"provider": "eks", "account": DEFAULT_ACCOUNT}]}
    )
    assert answer["statusCode"] == 400 and answer["error"]["field"] == "action"
    assert "worker" in answer["error"]["message"]
    assert dispatch({"publish": True, "sinks": "slack"})["error"]["field"] == "sinks"
    assert two_regions.cloud.receive_all(two_regions.queue_url) == []
    assert two_regions.aws.eks_gap.requests_seen("*", ".*") == eks_requests


def test_a_manual_dispatch_of_its_own_targets(two_regions: Lambda):
    targets = [
        {"provider": "eks", "account": DEFAULT_ACCOUNT, "region": "us-east-1", "cluster": "web"},
        {"provider": "eks", "account": "210987654321", "region": "us-east-1"},
    ]
    assert dispatch({"targets": targets})["dispatched"] == 2
    bodies = scan_payloads(two_regions.queued_event())
    assert sorted(b.targets[0].account for b in bodies) == [DEFAULT_ACCOUNT, "210987654321"]
    assert not any(b.publish for b in bodies)


# --- Dispatch failures -----------------------------------------------------------------------


@pytest.fixture
def sqs_gap(fn: Lambda, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqsGapServer]:
    with SqsGapServer(fn.aws.moto.url) as gap:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", gap.url)
        yield gap


def many_regions(fn: Lambda, count: int) -> None:
    regions = [f"region-{i:02d}" for i in range(count)]
    targets = [{"provider": "eks", "account": DEFAULT_ACCOUNT, "region": r} for r in regions]
    fn.monkeypatch.setenv("MUTGUARD_TARGETS", json.dumps(targets))


def test_entries_sqs_fails_are_sent_again(fn: Lambda, sqs_gap: SqsGapServer):
    many_regions(fn, 23)
    sqs_gap.fail_entries(3)  # three entries of the first batch
    assert dispatch()["dispatched"] == 23
    regions = [b.targets[0].region for b in scan_payloads(fn.queued_event())]
    assert sorted(regions) == [f"region-{i:02d}" for i in range(23)]  # each exactly once
    assert sqs_gap.batch_calls == 3 + 1  # batches of 10, 10 and 3 entries, and one retry


def test_entries_sqs_refuses_for_good_fail_the_dispatch(fn: Lambda, sqs_gap: SqsGapServer):
    many_regions(fn, 12)
    sqs_gap.fail_entries(1, "InvalidParameterValue", "Message too long", sender_fault=True)
    with pytest.raises(DispatchError, match="refused 1 of 12 scan messages: InvalidParameterValue"):
        dispatch()
    assert len(fn.queued_event()["Records"]) == 11  # the others were queued
    assert sqs_gap.batch_calls == 2  # not retried


def test_entries_still_failing_after_the_retries_fail_the_dispatch(
    fn: Lambda, sqs_gap: SqsGapServer
):
    many_regions(fn, 2)
    sqs_gap.fail_entries(1000)
    with pytest.raises(DispatchError, match=r"refused 2 of 2 .*InternalError.*after 4 attempts"):
        dispatch()
    assert sqs_gap.batch_calls == dispatcher.SEND_RETRY.attempts


def test_a_missing_queue_or_configuration_fails_the_dispatch(two_regions: Lambda):
    fn = two_regions
    fn.cloud.sqs.delete_queue(QueueUrl=fn.queue_url)
    with pytest.raises(ClientError, match=r"NonExistentQueue|QueueDoesNotExist"):
        dispatch()
    fn.monkeypatch.delenv("MUTGUARD_TARGETS")
    with pytest.raises(ConfigurationError, match="MUTGUARD_TARGETS"):
        dispatch()
    fn.monkeypatch.delenv("MUTGUARD_QUEUE_URL")
    with pytest.raises(ConfigurationError, match="MUTGUARD_QUEUE_URL"):
        dispatch()


# --- AWS Organizations -----------------------------------------------------------------------


@pytest.fixture
def organization(fn: Lambda) -> list[str]:
    """An organization with two member accounts besides the management account, and a third
    member that was closed. Returns the active accounts."""
    orgs = fn.cloud.session.client("organizations")
    orgs.create_organization(FeatureSet="ALL")
    members = [
        orgs.create_account(Email=f"team{i}@example.com", AccountName=f"team{i}")[
            "CreateAccountStatus"
        ]["AccountId"]
        for i in range(3)
    ]
    orgs.close_account(AccountId=members[2])
    fn.monkeypatch.setenv("MUTGUARD_AWS_ORGANIZATIONS", "true")
    return sorted([DEFAULT_ACCOUNT, *members[:2]])


def test_organization_accounts_are_dispatched_per_region(fn: Lambda, organization: list[str]):
    fn.monkeypatch.setenv("MUTGUARD_REGIONS", "us-east-1,eu-west-1")
    assert dispatch()["dispatched"] == 3 * 2
    queued = {(b.targets[0].account, b.targets[0].region) for b in scan_payloads(fn.queued_event())}
    assert queued == {(a, r) for a in organization for r in ("us-east-1", "eu-west-1")}


def test_organization_accounts_without_regions_scan_every_enabled_region(
    fn: Lambda, organization: list[str]
):
    assert dispatch()["dispatched"] == 3
    bodies = scan_payloads(fn.queued_event())
    assert sorted(b.targets[0].account for b in bodies) == organization
    assert all(b.targets[0].region is None for b in bodies)


def test_configured_targets_come_before_the_organization(fn: Lambda, organization: list[str]):
    fn.set_targets("us-east-1")
    assert dispatch()["dispatched"] == 1


def test_an_organization_without_active_accounts_fails_the_dispatch(
    fn: Lambda, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MUTGUARD_AWS_ORGANIZATIONS", "true")  # moto lists no account yet
    with pytest.raises(ConfigurationError, match="no active accounts"):
        dispatch()
    monkeypatch.setenv("MUTGUARD_AWS_ORGANIZATIONS", "yes")
    with pytest.raises(ConfigurationError, match="MUTGUARD_AWS_ORGANIZATIONS is 'yes'"):
        dispatch()
    assert fn.cloud.receive_all(fn.queue_url) == []


# --- Logs ------------------------------------------------------------------------------------


def test_log_lines_are_json_share_the_run_id_and_hold_no_webhook(
    two_regions: Lambda, lambda_logs: io.StringIO
):
    fn = two_regions
    fn.chat.fail(SLACK_HOOK, 404, times=10, body="no_service")  # so mutguard.publish logs too
    call = context("mutguard-dispatcher")
    dispatcher.handler(SCHEDULE_INPUT, call)
    lambda_logs.truncate(0)
    lambda_logs.seek(0)
    assert len(work(fn.queued_event())["batchItemFailures"]) == 2

    text = lambda_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines and all(line["service"] == "mutguard" for line in lines)
    assert {line["correlation_id"] for line in lines} == {call.aws_request_id}
    assert {line["function_name"] for line in lines} == {"mutguard-worker"}
    sink_failures = [line for line in lines if line["message"].startswith("sink slack failed")]
    # std logging of mutguard.publish, in the same JSON stream: both parts' and the digest's
    assert len(sink_failures) == 3
    assert all("message_id" in line for line in sink_failures)
    assert not any("exception" in line for line in lines)
    assert SLACK_HOOK not in text and "lambdaWebhookSecret" not in text


@pytest.mark.parametrize("handler", DIRECT_HANDLERS)
def test_a_direct_invoke_logs_under_its_request_id(
    fn: Lambda, lambda_logs: io.StringIO, handler: Any
):
    call = context("mutguard-worker")
    handler({**DESIGN_PAYLOAD, "publish": "yes"}, call)
    (line,) = [json.loads(line) for line in lambda_logs.getvalue().splitlines()]
    assert line["correlation_id"] == call.aws_request_id
    assert (line["level"], line["field"]) == ("ERROR", "publish")
