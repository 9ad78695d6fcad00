"""Azure Storage Queue: each cluster's message (messages.py) sent with Put Message.

Storage Queue messages have no attributes beside the body, so the body carries them. Each
message is, Base64-encoded (the SDK's TextBase64EncodePolicy, what Azure Functions' queue
trigger and most consumers expect; it also keeps `<` and `&` in findings out of the XML request
body), the JSON envelope

    {"attributes": {...messages.ATTRIBUTES...}, "message": {...ClusterMessage...}}

where `message` is valid against schemas/message.schema.json and `attributes` keep their types
(numbers stay numbers). Queue messages may be 64 KiB as sent, Base64 included, so the envelope
gets three quarters of `max_bytes` (default and at most 64 KiB) and a cluster's message is split
to fit.

Options: `queue` (required; the queue must exist), `connection_string_env` (default
MUTGUARD_AZURE_STORAGE_CONNECTION_STRING) names the secret storage account connection string,
`max_bytes`. Retries are the dispatcher's (the SDK's own are turned off).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mutguard.models import ClusterReport, Report
from mutguard.publish import azure_storage
from mutguard.publish.base import Notice, Outgoing, SinkContext, SinkOptions, parse_options
from mutguard.publish.messages import (
    STORAGE_QUEUE_LIMIT,
    Attributes,
    Message,
    attributes,
    cluster_messages,
    message_size,
)
from mutguard.state import ClusterChange

if TYPE_CHECKING:
    from mutguard.publish.fleet import FleetDigest

# Queue names: 3-63 lowercase letters, digits and single hyphens, starting and ending with a
# letter or digit.
QUEUE_PATTERN = r"^[a-z0-9](-?[a-z0-9])+$"
# The envelope around the body and the attributes' JSON: {"attributes":,"message":}
ENVELOPE_FRAME = len('{"attributes":,"message":}')


class AzureQueueOptions(SinkOptions):
    queue: str = Field(min_length=3, max_length=63, pattern=QUEUE_PATTERN)
    connection_string_env: str = azure_storage.CONNECTION_STRING_ENV
    max_bytes: int = Field(default=STORAGE_QUEUE_LIMIT, ge=16 * 1024, le=STORAGE_QUEUE_LIMIT)


def envelope(message: Message) -> str:
    return f'{{"attributes":{_attributes_json(message.attributes)},"message":{message.body}}}'


def _attributes_json(values: Attributes) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def queue_messages(
    report: Report, cluster: ClusterReport, change: ClusterChange, max_bytes: int
) -> list[str]:
    """The cluster's envelopes, each at most `max_bytes` once Base64-encoded.

    cluster_messages() sizes the attributes as SQS counts them; the envelope holds their JSON
    instead. The difference is the same for every part (they differ only in the digits of
    `part` and `parts`, which both ways count once), so it is taken off the limit exactly."""
    decoded_limit = max_bytes // 4 * 3  # Base64 turns each 3 bytes into 4
    whole = attributes(cluster, change, 1, 1)
    json_excess = len(_attributes_json(whole).encode()) - message_size("", whole)
    limit = decoded_limit - ENVELOPE_FRAME - json_excess
    return [envelope(m) for m in cluster_messages(report, cluster, change, limit)]


class AzureQueueSink:
    def __init__(self, name: str, options: AzureQueueOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._context = context

    def render(self, notice: Notice) -> list[Outgoing]:
        outgoing = []
        for item in notice.items:
            texts = queue_messages(notice.report, item.cluster, item, self.options.max_bytes)
            outgoing += [
                Outgoing(
                    summary=f"{item.cluster.name} part {number}/{len(texts)}",
                    payload={"queue": self.options.queue, "content": text},
                )
                for number, text in enumerate(texts, start=1)
            ]
        return outgoing

    def render_digest(self, digest: FleetDigest) -> list[Outgoing]:
        from mutguard.publish.fleet import digest_attributes, digest_json, digest_subject

        # The queue has no attributes: the envelope carries them, as for a cluster's message.
        attributes = _attributes_json(digest_attributes(digest))
        content = f'{{"attributes":{attributes},"message":{digest_json(digest)}}}'
        payload = {"queue": self.options.queue, "content": content}
        return [Outgoing(summary=digest_subject(digest), payload=payload)]

    def deliver(self, item: Outgoing) -> None:
        from azure.storage.queue import QueueClient, TextBase64EncodePolicy

        redactor = self._context.redactor
        secret = self.options.connection_string_env
        connection = azure_storage.connection_string(self._context.secrets, secret, redactor)

        def send() -> None:
            client = QueueClient.from_connection_string(
                connection,
                self.options.queue,
                message_encode_policy=TextBase64EncodePolicy(),
                retry_total=0,
            )
            with client:
                client.send_message(item.payload["content"])

        azure_storage.call(f"azure-queue {self.name}", send, redactor)


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> AzureQueueSink:
    return AzureQueueSink(name, parse_options(AzureQueueOptions, name, options), context)
