"""Google Cloud Pub/Sub: each cluster's message (messages.py) published to a topic.

A Pub/Sub message per cluster worth telling about (per part when a cluster's message is split):
- data: the ClusterMessage JSON (schemas/message.schema.json), UTF-8;
- attributes: messages.ATTRIBUTES, every value a string (Pub/Sub attributes are a
  map<string, string>), so a subscription can filter, e.g. `attributes.severity = "critical"`.

Pub/Sub takes at most 10 MB per publish request (the client library refuses bigger ones before
sending); `max_bytes` (default: that limit less FRAMING_BYTES for the request's topic name and
protobuf framing) is where a cluster's message is split.

Options: `topic` (required, `projects/PROJECT/topics/TOPIC`), `max_bytes`.
Credentials are Application Default Credentials; with PUBSUB_EMULATOR_HOST set the client
talks to that host instead, without credentials (the emulator, or a test server).

Each publish is one attempt with a deadline: retries are the dispatcher's (bounded, with
jittered backoff), so a topic that cannot be reached fails this sink within minutes, not the
library's default ten.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mutguard.publish.base import Notice, Outgoing, SinkContext, SinkOptions, parse_options
from mutguard.publish.google_errors import google_failure
from mutguard.publish.messages import PUBSUB_LIMIT, cluster_messages
from mutguard.publish.retry import DeliveryError, RetryableError

if TYPE_CHECKING:
    from mutguard.publish.fleet import FleetDigest

# Room in the 10 MB publish request for the topic path (a 255-character topic name in a
# 30-character project: about 300 bytes) and the protobuf tags and lengths around the data and
# each attribute (a few bytes each), with a wide margin.
FRAMING_BYTES = 4096
PUBLISH_TIMEOUT_SECONDS = 30.0
# Waiting for the result also covers batching and opening the channel.
RESULT_TIMEOUT_SECONDS = PUBLISH_TIMEOUT_SECONDS + 15.0
TOPIC_PATTERN = r"^projects/[^/]+/topics/[^/]+$"
# The status codes the client library itself retries for Publish (its default retry policy).
RETRYABLE_ERRORS = (
    "Aborted",
    "Cancelled",
    "DeadlineExceeded",
    "InternalServerError",
    "ResourceExhausted",
    "ServiceUnavailable",
    "Unknown",
)


class PubSubOptions(SinkOptions):
    topic: str = Field(pattern=TOPIC_PATTERN)
    max_bytes: int = Field(
        default=PUBSUB_LIMIT - FRAMING_BYTES, ge=16 * 1024, le=PUBSUB_LIMIT - FRAMING_BYTES
    )


class PubSubSink:
    def __init__(self, name: str, options: PubSubOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._context = context

    def render(self, notice: Notice) -> list[Outgoing]:
        return [
            Outgoing(
                summary=f"{item.cluster.name} part {m.attributes['part']}/{m.attributes['parts']}",
                payload={
                    "topic": self.options.topic,
                    "attributes": {name: str(value) for name, value in m.attributes.items()},
                    "data": m.body,
                },
            )
            for item in notice.items
            for m in cluster_messages(notice.report, item.cluster, item, self.options.max_bytes)
        ]

    def render_digest(self, digest: FleetDigest) -> list[Outgoing]:
        from mutguard.publish.fleet import digest_attributes, digest_json, digest_subject

        attributes = {name: str(value) for name, value in digest_attributes(digest).items()}
        payload = {
            "topic": self.options.topic,
            "attributes": attributes,
            "data": digest_json(digest),
        }
        return [Outgoing(summary=digest_subject(digest), payload=payload)]

    def deliver(self, item: Outgoing) -> None:
        from google.cloud.pubsub_v1 import PublisherClient

        what = f"pubsub {self.name}"
        try:
            with PublisherClient() as client:
                future = client.publish(
                    self.options.topic,
                    item.payload["data"].encode(),
                    retry=None,
                    timeout=PUBLISH_TIMEOUT_SECONDS,
                    **item.payload["attributes"],
                )
                future.result(timeout=RESULT_TIMEOUT_SECONDS)
        except Exception as err:  # sorted into retryable or not; anything else is a failure
            raise _failure(what, err, self._context) from None


def _failure(what: str, err: Exception, context: SinkContext) -> DeliveryError:
    if isinstance(err, TimeoutError):  # concurrent.futures.TimeoutError is TimeoutError
        detail = f"no answer within {RESULT_TIMEOUT_SECONDS:g} s"
        return RetryableError(context.redactor.redact(f"{what}: {detail}"))
    return google_failure(what, err, context.redactor.redact, RETRYABLE_ERRORS)


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> PubSubSink:
    return PubSubSink(name, parse_options(PubSubOptions, name, options), context)
