"""Generic webhook: each cluster's message (messages.py) POSTed as JSON, signed with HMAC-SHA256.

Request (one per cluster worth telling about, or per part when a cluster's message is split at
`max_bytes`):
- body: the ClusterMessage JSON (schemas/message.schema.json), exactly the bytes signed;
- `Content-Type: application/json`;
- `X-Mutguard-Delivery`: an id unique to this message, the same on every retry of it, so a
  receiver can drop duplicates;
- `X-Mutguard-Timestamp`: Unix time in seconds when this attempt was signed;
- `X-Mutguard-Signature-256`: `sha256=` + lowercase hex of
  HMAC-SHA256(key = the shared secret as UTF-8, message = timestamp + "." + raw body).
A receiver recomputes the HMAC over the raw body it received, compares with
`hmac.compare_digest`, and rejects timestamps more than a few minutes old (replays).

Options: `url_env` (default MUTGUARD_WEBHOOK_URL) and `secret_env` (MUTGUARD_WEBHOOK_SECRET)
name the secrets; `max_bytes` (default 1 MiB) is where a cluster's message is split.

When a scheduled function stored the run's report (publish/reports/__init__.py), a `Link` header
(RFC 8288) points at it: `<HTML URL>; rel="alternate"; type="text/html", <JSON URL>;
rel="alternate"; type="application/json"`, signed links or console links as configured.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mutguard.publish.base import (
    Notice,
    Outgoing,
    ReportLinks,
    SinkContext,
    SinkOptions,
    parse_options,
)
from mutguard.publish.httppost import post
from mutguard.publish.messages import cluster_messages

if TYPE_CHECKING:
    from mutguard.publish.fleet import FleetDigest

DELIVERY_HEADER = "X-Mutguard-Delivery"
TIMESTAMP_HEADER = "X-Mutguard-Timestamp"
SIGNATURE_HEADER = "X-Mutguard-Signature-256"


class WebhookOptions(SinkOptions):
    url_env: str = "MUTGUARD_WEBHOOK_URL"
    secret_env: str = "MUTGUARD_WEBHOOK_SECRET"  # noqa: S105 - a variable name
    max_bytes: int = Field(default=1024 * 1024, ge=16 * 1024)


def signature(key: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def report_link_header(links: ReportLinks) -> str:
    """RFC 8288 links to this run's stored report, HTML and JSON (not covered by the
    signature: the stored objects are what the links point at, not what was signed)."""
    return (
        f'<{links.html}>; rel="alternate"; type="text/html", '
        f'<{links.json}>; rel="alternate"; type="application/json"'
    )


class WebhookSink:
    def __init__(self, name: str, options: WebhookOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._context = context

    def render(self, notice: Notice) -> list[Outgoing]:
        return [
            Outgoing(
                summary=f"{item.cluster.name} part {m.attributes['part']}/{m.attributes['parts']}",
                payload={"delivery": uuid.uuid4().hex, "attributes": m.attributes, "body": m.body},
            )
            for item in notice.items
            for m in cluster_messages(notice.report, item.cluster, item, self.options.max_bytes)
        ]

    def render_digest(self, digest: FleetDigest) -> list[Outgoing]:
        from mutguard.publish.fleet import digest_attributes, digest_json, digest_subject

        payload = {
            "delivery": uuid.uuid4().hex,
            "attributes": digest_attributes(digest),
            "body": digest_json(digest),
        }
        return [Outgoing(summary=digest_subject(digest), payload=payload)]

    def deliver(self, item: Outgoing) -> None:
        secrets, redactor = self._context.secrets, self._context.redactor
        url = redactor.add(secrets.get(self.options.url_env))
        key = redactor.add(secrets.get(self.options.secret_env))
        body = item.payload["body"].encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: item.payload["delivery"],
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(key, timestamp, body),
        }
        if links := self._context.report_links:
            headers["Link"] = report_link_header(links)
        post(url, body, headers, f"webhook {self.name}")


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> WebhookSink:
    return WebhookSink(name, parse_options(WebhookOptions, name, options), context)
