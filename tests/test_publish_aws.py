"""The AWS sinks (SQS, SNS, SES) and AWS Secrets Manager secrets, against a real moto_server.

boto3 reaches moto through AWS_ENDPOINT_URL (the `aws` and `cloud` fixtures); what the sinks
sent is read back with boto3 as a consumer would (ReceiveMessage, moto's /moto-api/data.json
for SES).
Retry waits are recorded by the policy's `sleep`, never waited out.
"""

import datetime
import email
import email.policy
import hashlib
import hmac
import json
import logging
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mutguard.models import ClusterReport, Report, Severity, Status, cluster_key
from mutguard.providers import snapshot
from mutguard.publish import (
    ConfigurationError,
    Redactor,
    RetryPolicy,
    SecretRefs,
    SinkContext,
    SinkResult,
    SinkSpec,
    build_sinks,
    publish,
)
from mutguard.publish.messages import SQS_SNS_LIMIT
from mutguard.publish.pipeline import notice
from mutguard.scan import build_report
from mutguard.state import changes

from builders import NEWS_CLUSTERS, varied
from servers.aws_clients import AwsClients
from servers.chat import ChatServer
from servers.ports import free_port

MESSAGE_SCHEMA = Path(__file__).parents[1] / "schemas" / "message.schema.json"
SENDER = "mutguard@example.com"
HOOK_URL_PATH = "/hook/awsHookSecret0123456789"
HMAC_KEY = "whsec-from-secrets-manager-0123456789"


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    generated_at = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
    return build_report(snapshot.read(demo), generated_at)


def schema() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(MESSAGE_SCHEMA.read_text()))


def context(waits: list[float] | None = None, env: dict[str, str] | None = None) -> SinkContext:
    policy = RetryPolicy(sleep=(waits if waits is not None else []).append, jitter=lambda d: d)
    redactor = Redactor()
    return SinkContext(SecretRefs(redactor, env or {}), redactor, policy)


def send(
    specs: list[SinkSpec], ctx: SinkContext | None = None, report: Report | None = None
) -> dict[str, SinkResult]:
    ctx = ctx or context()
    report = report or demo_report()
    results = publish(report, changes({}, report), build_sinks(specs, ctx), ctx)
    return {r.sink: r for r in results}


def attribute_values(message: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        name: (value["DataType"], value["StringValue"])
        for name, value in message.get("MessageAttributes", {}).items()
    }


def failing_cluster(count: int) -> ClusterReport:
    """payments-legacy with `count` failing findings of about 700 bytes each."""
    base = next(c for c in demo_report().clusters if c.name == "payments-legacy")
    template = next(f for f in base.findings if f.status is Status.FAIL)
    findings = [
        varied(
            template,
            f"k8s.workload.privileged_{i:03d}",
            severity=Severity.CRITICAL if i % 3 == 0 else Severity.HIGH,
            resource=f"payments/pod-{i:03d}-" + "x" * 100,
            detail="container runs privileged and mounts the host's root " * 8,
        )
        for i in range(count)
    ]
    return base.model_copy(update={"findings": findings})


# --- SQS ----------------------------------------------------------------------------------


def test_sqs_gets_one_valid_message_per_cluster_with_filterable_attributes(cloud: AwsClients):
    queue = cloud.create_queue("mutguard-alerts")
    result = send([SinkSpec("sqs", options={"queue_url": queue})])["sqs"]
    assert (result.ok, result.sent, result.error) == (True, 6, None)

    received = cloud.receive_all(queue)
    bodies = [json.loads(m["Body"]) for m in received]
    for body in bodies:
        schema().validate(body)
    assert sorted(b["clusters"][0]["name"] for b in bodies) == NEWS_CLUSTERS
    by_cluster = {
        json.loads(m["Body"])["clusters"][0]["name"]: attribute_values(m) for m in received
    }
    legacy = by_cluster["payments-legacy"]
    assert legacy["provider"] == ("String", "eks")
    assert legacy["cluster"] == ("String", "payments-legacy")
    assert legacy["severity"] == ("String", "critical")
    assert legacy["mut"] == ("Number", "0") and legacy["mut_lowest"] == ("Number", "0")
    assert legacy["change"] == ("String", "new") and legacy["parts"] == ("Number", "1")
    assert legacy["schema_version"][0] == "String" and "part" not in legacy
    # SQS takes at most ten attributes (and SNS drops raw deliveries with more).
    assert all(len(attributes) <= 10 for attributes in by_cluster.values())


def test_a_fifo_queue_keeps_each_cluster_in_its_group_and_drops_a_resent_duplicate(
    cloud: AwsClients,
):
    queue = cloud.create_queue("mutguard-alerts.fifo", FifoQueue="true")
    spec = SinkSpec("sqs", options={"queue_url": queue})
    assert send([spec])["sqs"].sent == 6
    assert send([spec])["sqs"].sent == 6  # a platform retrying the run sends it all again

    received = cloud.receive_all(queue)
    assert len(received) == 6  # same bodies, same deduplication ids: kept once
    keys = {cluster_key(c) for c in demo_report().clusters}
    for message in received:
        system = message["Attributes"]
        assert system["MessageGroupId"] in keys
        assert system["MessageGroupId"].endswith(json.loads(message["Body"])["clusters"][0]["name"])
        expected = hashlib.sha256(message["Body"].encode()).hexdigest()
        assert system["MessageDeduplicationId"] == expected


def test_a_report_too_big_for_one_message_is_split_into_valid_parts(cloud: AwsClients):
    # The queue enforces SQS's default limit, as a real queue created with defaults does.
    queue = cloud.create_queue("mutguard-alerts", MaximumMessageSize=str(SQS_SNS_LIMIT))
    report = demo_report().model_copy(update={"clusters": [failing_cluster(600)]})
    result = send([SinkSpec("sqs", options={"queue_url": queue})], report=report)["sqs"]
    assert result.ok and result.sent > 1

    received = cloud.receive_all(queue)
    parts = sorted((json.loads(m["Body"]) for m in received), key=lambda p: p["part"])
    assert [(p["part"], p["parts"]) for p in parts] == [
        (i + 1, result.sent) for i in range(result.sent)
    ]
    for part in parts:
        schema().validate(part)
        assert part["clusters"][0]["mut"] == 0  # every part carries the cluster's header
    assert sum(len(p["clusters"][0]["findings"]) for p in parts) == 600
    for message in received:
        attributes = message["MessageAttributes"].items()
        size = len(message["Body"].encode()) + sum(
            len(n) + len(v["DataType"]) + len(v["StringValue"].encode()) for n, v in attributes
        )
        assert size <= SQS_SNS_LIMIT


def test_max_bytes_goes_up_to_1_mib_only_when_configured(cloud: AwsClients):
    queue = cloud.create_queue("mutguard-large", MaximumMessageSize=str(1024 * 1024))
    report = demo_report().model_copy(update={"clusters": [failing_cluster(600)]})
    spec = SinkSpec("sqs", options={"queue_url": queue, "max_bytes": 1024 * 1024})
    result = send([spec], report=report)["sqs"]
    assert (result.ok, result.sent) == (True, 1)
    (message,) = cloud.receive_all(queue)
    assert len(message["Body"].encode()) > SQS_SNS_LIMIT

    too_big = {"queue_url": queue, "max_bytes": 1024 * 1024 + 1}
    with pytest.raises(
        ConfigurationError, match="sink sqs: max_bytes: Input should be less than or"
    ):
        build_sinks([SinkSpec("sqs", options=too_big)], context())
    with pytest.raises(ConfigurationError, match="sink sqs: queue_url: Field required"):
        build_sinks([SinkSpec("sqs")], context())


def test_an_unreachable_queue_is_retried_with_backoff_then_fails(
    cloud: AwsClients, monkeypatch: pytest.MonkeyPatch
):
    queue = cloud.create_queue("mutguard-alerts")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{free_port()}")  # nobody
    waits: list[float] = []
    result = send([SinkSpec("sqs", options={"queue_url": queue})], context(waits))["sqs"]
    assert not result.ok and result.sent == 0
    assert result.error.startswith("sqs sqs: unreachable: Could not connect to the endpoint")
    assert result.error.endswith("(gave up after 4 attempts)")
    assert waits == [0.5, 1.0, 2.0]


# --- SNS ----------------------------------------------------------------------------------


def test_sns_subscribers_filter_on_the_message_attributes(cloud: AwsClients):
    topic = cloud.sns.create_topic(Name="mutguard-findings")["TopicArn"]
    eks_critical = cloud.create_queue("eks-critical")
    mut_zero = cloud.create_queue("mut-zero")
    string_filter = {"provider": ["eks"], "severity": ["critical"]}
    cloud.subscribe(
        topic, eks_critical, RawMessageDelivery="true", FilterPolicy=json.dumps(string_filter)
    )
    numeric_filter = {"mut_lowest": [{"numeric": ["<", 1]}]}
    cloud.subscribe(topic, mut_zero, FilterPolicy=json.dumps(numeric_filter))
    result = send([SinkSpec("sns", options={"topic_arn": topic})])["sns"]
    assert (result.ok, result.sent) == (True, 6)

    raw = cloud.receive_all(eks_critical)
    names = sorted(json.loads(m["Body"])["clusters"][0]["name"] for m in raw)
    assert names == ["payments-legacy", "shop-prod", "shop-staging"]  # not the GKE or AKS one
    for message in raw:  # raw delivery: the report itself, attributes as SQS attributes
        schema().validate(json.loads(message["Body"]))
        assert attribute_values(message)["provider"] == ("String", "eks")

    envelopes = [json.loads(m["Body"]) for m in cloud.receive_all(mut_zero)]
    assert [json.loads(e["Message"])["clusters"][0]["name"] for e in envelopes] == [
        "payments-legacy"
    ]
    # Without raw delivery the SNS envelope carries the attributes with their types.
    assert envelopes[0]["MessageAttributes"]["mut_lowest"] == {"Type": "Number", "Value": "0"}


def test_a_topic_arn_is_checked_before_anything_is_sent():
    with pytest.raises(
        ConfigurationError, match="sink sns: topic_arn: String should match pattern"
    ):
        build_sinks([SinkSpec("sns", options={"topic_arn": "mutguard-findings"})], context())


# --- SES ----------------------------------------------------------------------------------


def ses_spec(**options: Any) -> SinkSpec:
    return SinkSpec(
        "ses", options={"sender": SENDER, "recipients": ["secops@example.com"], **options}
    )


def test_ses_sends_the_same_html_and_text_email_as_smtp(cloud: AwsClients):
    cloud.ses.verify_email_identity(EmailAddress=SENDER)
    result = send([ses_spec(report_url="https://reports.example.com/run/42")])["ses"]
    assert (result.ok, result.sent) == (True, 1)

    (sent,) = cloud.ses_sent()
    assert sent["source"] == SENDER
    message = email.message_from_string(sent["raw_data"], policy=email.policy.default)
    assert message["Subject"] == (
        "mutguard: 6 clusters, worst MUT 0 (payments-legacy), 6 new critical"
    )
    assert message["To"] == "secops@example.com"
    assert message.get_content_type() == "multipart/mixed"  # the body, then report.html
    assert next(message.iter_parts()).get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "payments-legacy (eks, eu-west-1): lowest MUT 0" in plain
    assert "<h2>payments-legacy (eks, eu-west-1): lowest MUT 0</h2>" in html
    assert 'href="https://reports.example.com/run/42"' in html


def test_ses_refuses_an_unverified_sender_clearly_and_at_once(cloud: AwsClients):
    waits: list[float] = []
    result = send([ses_spec()], context(waits))["ses"]
    assert not result.ok and result.sent == 0
    assert result.error == (
        "ses ses: MessageRejected: Did not have authority to send from email "
        "mutguard@example.com (is the sender mutguard@example.com verified in SES in us-east-1?)"
    )
    assert waits == [] and cloud.ses_sent() == []


# --- Failures: one sink down, dead-letter queue -------------------------------------------


def test_a_deleted_queue_fails_its_sink_while_the_others_deliver(cloud: AwsClients):
    cloud.ses.verify_email_identity(EmailAddress=SENDER)
    gone = cloud.deleted_queue("deleted-queue")
    topic = cloud.sns.create_topic(Name="mutguard-findings")["TopicArn"]
    subscriber = cloud.create_queue("subscriber")
    cloud.subscribe(topic, subscriber, RawMessageDelivery="true")
    waits: list[float] = []
    specs = [
        SinkSpec("sqs", options={"queue_url": gone}),
        SinkSpec("sns", options={"topic_arn": topic}),
        ses_spec(),
    ]
    results = send(specs, context(waits))

    assert not results["sqs"].ok and results["sqs"].sent == 0
    assert results["sqs"].error == (
        "sqs sqs: AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist."
    )
    assert waits == []  # a queue that does not exist is not retried
    assert (results["sns"].ok, results["sns"].sent) == (True, 6)
    assert (results["ses"].ok, results["ses"].sent) == (True, 1)
    assert len(cloud.receive_all(subscriber)) == 6


@pytest.mark.parametrize("kind", ["sqs", "sns"])
def test_undeliverable_messages_go_to_the_dead_letter_queue_and_the_sink_still_fails(
    cloud: AwsClients, kind: str
):
    if kind == "sqs":
        target = {"queue_url": cloud.deleted_queue("deleted-queue")}
    else:
        topic = cloud.sns.create_topic(Name="deleted-topic")["TopicArn"]
        cloud.sns.delete_topic(TopicArn=topic)
        target = {"topic_arn": topic}
    dead_letters = cloud.create_queue("mutguard-dead-letters")
    spec = SinkSpec(kind, options={**target, "dead_letter_queue_url": dead_letters})
    ctx = context()
    result = send([spec], ctx)[kind]

    assert not result.ok and (result.sent, result.parked) == (0, 6)
    assert result.error.endswith("; 6 message(s) sent to the dead-letter queue")
    parked = cloud.receive_all(dead_letters)
    # Exactly what the sink would have sent, so a redrive delivers the original messages.
    report = demo_report()
    planned = build_sinks([spec], ctx)[0].render(notice(report, changes({}, report), digest=False))
    assert sorted(m["Body"] for m in parked) == sorted(item.payload["body"] for item in planned)
    for message in parked:
        body = json.loads(message["Body"])
        expected = next(
            i.payload["attributes"]
            for i in planned
            if json.loads(i.payload["body"])["clusters"][0]["name"] == body["clusters"][0]["name"]
        )
        assert {n: v for n, (_, v) in attribute_values(message).items()} == {
            n: str(v) for n, v in expected.items()
        }


def test_a_dead_letter_queue_that_fails_too_is_reported(cloud: AwsClients):
    gone = cloud.deleted_queue("deleted-queue")
    also_gone = cloud.deleted_queue("deleted-dead-letters")
    spec = SinkSpec("sqs", options={"queue_url": gone, "dead_letter_queue_url": also_gone})
    result = send([spec])["sqs"]
    assert not result.ok and result.parked == 0
    assert result.error.endswith(
        "; the dead-letter queue took 0 of 6, then failed: sqs sqs dead-letter queue: "
        "AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist."
    )


# --- Secrets from AWS Secrets Manager -----------------------------------------------------


def test_the_webhook_reads_its_url_and_key_from_secrets_manager(
    cloud: AwsClients, chat: ChatServer, caplog: pytest.LogCaptureFixture
):
    secrets = cloud.secrets
    value = json.dumps({"url": chat.url + HOOK_URL_PATH, "key": HMAC_KEY})
    arn = secrets.create_secret(Name="prod/mutguard/webhook", SecretString=value)["ARN"]
    caplog.set_level(logging.DEBUG)  # from here on: botocore logs every response body
    options = {
        "url_env": "aws-secretsmanager:prod/mutguard/webhook#url",
        "secret_env": f"aws-secretsmanager:{arn}#key",  # by ARN: the region comes from it
    }
    result = send([SinkSpec("webhook", options=options)])["webhook"]
    assert (result.ok, result.sent) == (True, 6)

    delivered = chat.delivered(HOOK_URL_PATH)
    assert len(delivered) == 6
    for request in delivered:
        timestamp = request.headers["x-mutguard-timestamp"]
        expected = hmac.new(HMAC_KEY.encode(), f"{timestamp}.".encode() + request.body, "sha256")
        assert request.headers["x-mutguard-signature-256"] == "sha256=" + expected.hexdigest()
    assert "GetSecretValue" in caplog.text
    assert HMAC_KEY not in caplog.text and HOOK_URL_PATH not in caplog.text


def test_an_absent_secret_fails_that_sink_naming_it_and_the_others_deliver(
    cloud: AwsClients, chat: ChatServer
):
    queue = cloud.create_queue("mutguard-alerts")
    options = {"url_env": "aws-secretsmanager:prod/mutguard/absent", "secret_env": "HOOK_KEY"}
    specs = [SinkSpec("webhook", options=options), SinkSpec("sqs", options={"queue_url": queue})]
    results = send(specs, context(env={"HOOK_KEY": HMAC_KEY}))
    assert results["webhook"].error == "AWS Secrets Manager secret prod/mutguard/absent not found"
    assert chat.requests() == []
    assert (results["sqs"].ok, results["sqs"].sent) == (True, 6)


def test_secret_references_that_cannot_be_resolved_say_why(cloud: AwsClients):
    secrets = cloud.secrets
    secrets.create_secret(Name="plain", SecretString="https://hooks.example.com/T0/secretvalue")
    secrets.create_secret(Name="json", SecretString=json.dumps({"url": "https://x", "port": 1}))
    refs = SecretRefs(Redactor(), {"HOOK_URL": "from-the-environment"})
    assert refs.get("HOOK_URL") == refs.get("env:HOOK_URL") == "from-the-environment"
    problems = {
        "aws-secretsmanager:plain#url": "AWS Secrets Manager secret plain is not a JSON object, "
        "so has no url",
        "aws-secretsmanager:json#port": "AWS Secrets Manager secret json has no string value for "
        "key port",
        "NOT_SET": "environment variable NOT_SET is not set",
    }
    for reference, message in problems.items():
        with pytest.raises(LookupError) as caught:
            refs.get(reference)
        assert str(caught.value) == message
    with pytest.raises(LookupError) as caught:
        refs.get("vault:prod/hook")
    unknown = "vault:prod/hook: unknown secret source 'vault' (known: env, "
    assert str(caught.value).startswith(unknown) and "aws-secretsmanager" in str(caught.value)


def test_values_from_secrets_manager_are_redacted(cloud: AwsClients):
    secret = "https://hooks.example.com/services/T0/B0/fromSecretsManager0123"
    cloud.secrets.create_secret(Name="hook", SecretString=secret)
    redactor = Redactor()
    assert SecretRefs(redactor, {}).get("aws-secretsmanager:hook") == secret
    assert redactor.redact(f"POST {secret} failed") == "POST *** failed"
    assert redactor.redact("404 for /services/T0/B0/fromSecretsManager0123") == "404 for ***"
