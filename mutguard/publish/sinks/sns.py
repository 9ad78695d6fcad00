"""Amazon SNS: each cluster's message (messages.py) published to a topic, one Publish per part.

The message and its attributes are those of the SQS sink (sqs.py): the ClusterMessage JSON as
the body and QUEUE_ATTRIBUTES as MessageAttributes, which subscription filter policies match,
e.g. `{"severity": ["critical"], "mut_lowest": [{"numeric": ["<=", 1]}]}`. A FIFO topic (ARN
ending in `.fifo`) gets the same MessageGroupId and MessageDeduplicationId as a FIFO queue.
A topic takes 256 KiB by default; `max_bytes` up to 1 MiB suits a topic whose
MaximumMessageSize was raised.

Options: `topic_arn` (required); `region` (default: the one in the ARN); `max_bytes`;
`dead_letter_queue_url` (an SQS queue for what could not be published; the sink still fails).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mutguard.publish import aws
from mutguard.publish.base import Notice, Outgoing, SinkContext, parse_options
from mutguard.publish.sinks.sqs import (
    QueueOptions,
    dead_letter_queue,
    fifo_parameters,
    is_fifo,
    message_attributes,
    queue_digest,
    queue_outgoing,
)

if TYPE_CHECKING:
    from mutguard.publish.fleet import FleetDigest

# arn:PARTITION:sns:REGION:ACCOUNT:NAME, NAME being letters, digits, - and _ (and .fifo).
TOPIC_ARN = r"^arn:[a-z-]+:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"


class SnsOptions(QueueOptions):
    topic_arn: str = Field(pattern=TOPIC_ARN)


class SnsSink:
    def __init__(self, name: str, options: SnsOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._context = context
        self._region = options.region or aws.region_of_arn(options.topic_arn)
        self._client: Any = None
        self.dead_letter = dead_letter_queue(f"sns {name}", options, context)

    def render(self, notice: Notice) -> list[Outgoing]:
        return queue_outgoing(notice, self.options.max_bytes)

    def render_digest(self, digest: FleetDigest) -> list[Outgoing]:
        return queue_digest(digest)

    def deliver(self, item: Outgoing) -> None:
        topic = self.options.topic_arn
        params: dict[str, Any] = {
            "TopicArn": topic,
            "Message": item.payload["body"],
            "MessageAttributes": message_attributes(item.payload["attributes"]),
        }
        if is_fifo(topic):
            params.update(fifo_parameters(item.payload))
        redactor = self._context.redactor
        aws.call(f"sns {self.name}", lambda: self._sns().publish(**params), redactor)

    def _sns(self) -> Any:
        if self._client is None:
            self._client = aws.client("sns", self._region)
        return self._client


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> SnsSink:
    return SnsSink(name, parse_options(SnsOptions, name, options), context)
