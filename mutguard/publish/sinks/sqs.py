"""Amazon SQS: each cluster's message (messages.py) sent with SendMessage, one call per part.

- Body: the ClusterMessage JSON (schemas/message.schema.json), split at `max_bytes`.
- Message attributes, for consumers and SNS filter policies: QUEUE_ATTRIBUTES, i.e. every key
  of messages.ATTRIBUTES except `part` (SQS takes at most ten per message, and SNS drops a
  message with more than ten on its way to a raw-delivery SQS subscription; the part number is
  in the body). Numbers (mut, mut_lowest, parts) have DataType Number, the rest String; empty
  values (a kubeconfig cluster has no account) are left out, since SQS refuses them.
- FIFO queues (URL ending in `.fifo`): MessageGroupId is the cluster key, so a cluster's parts
  stay in order while clusters do not wait on each other; MessageDeduplicationId is the SHA-256
  of the body, so the same message sent again within SQS's five-minute window (a platform
  retrying the run) is kept once.

A send that fails for good, or after the run's retries, fails the sink: the run exits non-zero
and its state is not saved, so the next run says it again. With `dead_letter_queue_url` the
undelivered messages, unchanged, also go to that queue, where they can be inspected or redriven.

Options: `queue_url` (required); `region` (default: the one in the queue URL, else boto3's);
`max_bytes` (256 KiB; up to 1 MiB for a queue whose MaximumMessageSize allows it);
`dead_letter_queue_url`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mutguard.publish import aws
from mutguard.publish.base import Json, Notice, Outgoing, SinkContext, SinkOptions, parse_options
from mutguard.publish.messages import (
    ATTRIBUTES,
    SQS_SNS_LIMIT,
    SQS_SNS_MAX_LIMIT,
    Attributes,
    cluster_messages,
)
from mutguard.publish.secrets import Redactor

if TYPE_CHECKING:
    from mutguard.publish.fleet import FleetDigest

QUEUE_ATTRIBUTES = tuple(name for name in ATTRIBUTES if name != "part")
MIN_BYTES = 16 * 1024  # room for the report header and at least one finding
# MessageGroupId: at most 128 alphanumeric or punctuation characters.
_GROUP_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


class QueueOptions(SinkOptions):
    """What the SQS and SNS sinks share."""

    region: str | None = None
    max_bytes: int = Field(default=SQS_SNS_LIMIT, ge=MIN_BYTES, le=SQS_SNS_MAX_LIMIT)
    dead_letter_queue_url: str | None = Field(default=None, min_length=1)


class SqsOptions(QueueOptions):
    queue_url: str = Field(min_length=1)


def queue_outgoing(notice: Notice, max_bytes: int) -> list[Outgoing]:
    """One item per message part: the body, its attributes and the cluster key."""
    return [
        Outgoing(
            summary=f"{item.cluster.name} part {m.attributes['part']}/{m.attributes['parts']}",
            payload={
                "cluster_key": item.key,
                "attributes": queue_attributes(m.attributes),
                "body": m.body,
            },
        )
        for item in notice.items
        for m in cluster_messages(notice.report, item.cluster, item, max_bytes)
    ]


def queue_digest(digest: FleetDigest) -> list[Outgoing]:
    from mutguard.publish.fleet import digest_attributes, digest_json, digest_subject
    from mutguard.store import fleet_claim

    # cluster_key: the FIFO message group (fifo_parameters); the run's claim key names it.
    payload = {
        "cluster_key": fleet_claim(digest.run_id)[0],
        "attributes": digest_attributes(digest),
        "body": digest_json(digest),
    }
    return [Outgoing(summary=digest_subject(digest), payload=payload)]


def queue_attributes(attributes: Attributes) -> Attributes:
    return {
        name: value
        for name in QUEUE_ATTRIBUTES
        if (value := attributes.get(name)) is not None and value != ""
    }


def message_attributes(attributes: Attributes) -> dict[str, dict[str, str]]:
    """The MessageAttributes parameter of SQS SendMessage and SNS Publish."""
    return {
        name: {
            "DataType": "Number" if isinstance(value, int) else "String",
            "StringValue": str(value),
        }
        for name, value in attributes.items()
    }


def is_fifo(queue_or_topic: str) -> bool:
    return queue_or_topic.endswith(".fifo")


def group_id(cluster_key: str) -> str:
    """The cluster key, or its SHA-256 when the key does not fit MessageGroupId's rules."""
    if _GROUP_ID.match(cluster_key):
        return cluster_key
    return hashlib.sha256(cluster_key.encode()).hexdigest()


def fifo_parameters(payload: Json) -> dict[str, str]:
    return {
        "MessageGroupId": group_id(payload["cluster_key"]),
        "MessageDeduplicationId": hashlib.sha256(payload["body"].encode()).hexdigest(),
    }


class Queue:
    """An SQS queue that items are sent to: a sink's own queue, or a dead-letter queue."""

    def __init__(self, url: str, region: str | None, what: str, redactor: Redactor) -> None:
        self.url = url
        self._region = region or aws.region_of_queue(url)
        self._what = what
        self._redactor = redactor
        self._client: Any = None

    def deliver(self, item: Outgoing) -> None:
        params: dict[str, Any] = {
            "QueueUrl": self.url,
            "MessageBody": item.payload["body"],
            "MessageAttributes": message_attributes(item.payload["attributes"]),
        }
        if is_fifo(self.url):
            params.update(fifo_parameters(item.payload))
        aws.call(self._what, lambda: self._sqs().send_message(**params), self._redactor)

    def _sqs(self) -> Any:
        if self._client is None:
            self._client = aws.client("sqs", self._region)
        return self._client


def dead_letter_queue(name: str, options: QueueOptions, context: SinkContext) -> Queue | None:
    url = options.dead_letter_queue_url
    what = f"{name} dead-letter queue"
    return Queue(url, options.region, what, context.redactor) if url else None


class SqsSink:
    def __init__(self, name: str, options: SqsOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._queue = Queue(options.queue_url, options.region, f"sqs {name}", context.redactor)
        self.dead_letter = dead_letter_queue(f"sqs {name}", options, context)

    def render(self, notice: Notice) -> list[Outgoing]:
        return queue_outgoing(notice, self.options.max_bytes)

    def render_digest(self, digest: FleetDigest) -> list[Outgoing]:
        return queue_digest(digest)

    def deliver(self, item: Outgoing) -> None:
        self._queue.deliver(item)


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> SqsSink:
    return SqsSink(name, parse_options(SqsOptions, name, options), context)
