"""Microsoft Teams: an Adaptive Card per cluster, POSTed to an incoming webhook or a Workflows
("When a Teams webhook request is received") URL.

Payload shape (Microsoft Learn, "Send Adaptive Cards using an Incoming Webhook"):
`{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"contentUrl": null, "content": {"$schema": ..., "type": "AdaptiveCard", "version": "1.2",
"body": [...]}}]}`. Teams rejects messages over 28 KB and throttles a webhook above four
requests a second; mutguard keeps each payload under CARD_BUDGET bytes (senders report failures
from about 21 KB) by listing fewer lines, and paces its posts. Legacy connectors answer HTTP 200
even when throttled, with "Microsoft Teams endpoint returned HTTP error 429" in the body: that
text is read like the status it names.

Options: `url_env` (default MUTGUARD_TEAMS_WEBHOOK_URL) names the secret URL; `report_url` adds
an "Open the full report" button.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mutguard.publish.base import (
    Json,
    Notice,
    Outgoing,
    SinkContext,
    SinkOptions,
    parse_options,
    with_report_link,
)
from mutguard.publish.httppost import RETRYABLE_STATUS, post
from mutguard.publish.retry import DeliveryError, Pacer, RetryableError
from mutguard.publish.text import (
    SCAN_ERRORS_TITLE,
    ClusterSummary,
    limited,
    scan_errors,
    subject,
    summarise,
    truncate,
)

if TYPE_CHECKING:
    from mutguard.publish.fleet import FleetDigest

CARD_BUDGET = 20_000
SECONDS_PER_MESSAGE = 0.25
MAX_LINE = 400
MAX_PATH = 1500
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_EMBEDDED_ERROR = re.compile(r"returned HTTP error (\d{3})")


class TeamsOptions(SinkOptions):
    url_env: str = "MUTGUARD_TEAMS_WEBHOOK_URL"
    report_url: str | None = None
    max_items: int = Field(default=10, ge=1, le=50)


def _text(text: str, **style: Any) -> Json:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _list(title: str, lines: list[str], most: int) -> list[Json]:
    if not lines:
        return []
    shown = [f"- {truncate(line, MAX_LINE)}" for line in limited(lines, most)]
    return [_text(f"**{title} ({len(lines)})**", spacing="Medium"), _text("\n\n".join(shown))]


def cluster_container(summary: ClusterSummary, most: int) -> Json:
    facts = [{"title": "Failed checks", "value": summary.counts}]
    if summary.path:
        facts.insert(0, {"title": "Cheapest path", "value": truncate(summary.path, MAX_PATH)})
    items = [
        _text(summary.title, size="Large", weight="Bolder"),
        _text(summary.headline, weight="Bolder"),
        _text(summary.change, isSubtle=True, spacing="None"),
        {"type": "FactSet", "facts": facts},
        *_list("Top fixes by MUT gain", summary.fixes, most),
        *_list("New failures", summary.new, most),
        *_list("Severity rose", summary.worsened, most),
        *_list("Resolved", summary.resolved, most),
        *_list("Errors", summary.errors, most),
    ]
    return {"type": "Container", "items": items, "separator": True, "spacing": "Large"}


def card_message(body: list[Json], report_url: str | None) -> Json:
    card: Json = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": body,
    }
    if report_url:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open the full report", "url": report_url}
        ]
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }


def payload_size(payload: Json) -> int:
    return len(json.dumps(payload).encode())


def _fitting_container(summary: ClusterSummary, most: int) -> Json:
    """The cluster's container, with shorter lists until it fits a card on its own."""
    while True:
        container = cluster_container(summary, most)
        if most == 1 or payload_size(card_message([container], None)) <= CARD_BUDGET:
            return container
        most = max(1, most // 2)


def render(notice: Notice, options: TeamsOptions) -> list[Json]:
    containers = [_fitting_container(summarise(i), options.max_items) for i in notice.items]
    if not notice.digest:
        return [card_message([c], options.report_url) for c in containers]
    errors = scan_errors(notice.report)
    if not containers and not errors:
        return []
    title = _text(subject(notice.items, True, len(errors)), size="Large", weight="Bolder")
    cards: list[list[Json]] = [[title, *_list(SCAN_ERRORS_TITLE, errors, options.max_items)]]
    for container in containers:
        if payload_size(card_message([*cards[-1], container], options.report_url)) > CARD_BUDGET:
            cards.append([])
        cards[-1].append(container)
    return [card_message(body, options.report_url) for body in cards if body]


class TeamsSink:
    def __init__(self, name: str, options: TeamsOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._context = context
        self._pacer = Pacer(SECONDS_PER_MESSAGE, context.retry)

    def render(self, notice: Notice) -> list[Outgoing]:
        return [
            Outgoing(summary=_card_title(payload), payload=payload)
            for payload in render(notice, with_report_link(self.options, self._context))
        ]

    def render_digest(self, digest: FleetDigest) -> list[Outgoing]:
        from mutguard.publish.fleet import digest_sections, digest_subject

        subject = digest_subject(digest)
        body = [_text(subject, size="Large", weight="Bolder")]
        for title, lines in digest_sections(digest):
            body += _list(title, lines, self.options.max_items)
        return [Outgoing(summary=subject, payload=card_message(body, self.options.report_url))]

    def deliver(self, item: Outgoing) -> None:
        url = self._context.redactor.add(self._context.secrets.get(self.options.url_env))
        self._pacer.wait()
        what = f"teams webhook {self.name}"
        body = json.dumps(item.payload).encode()
        answer = post(url, body, {"Content-Type": "application/json"}, what)
        if embedded := _EMBEDDED_ERROR.search(answer.body):
            status = int(embedded.group(1))
            message = f"{what}: {truncate(answer.body, 300)}"
            if status in RETRYABLE_STATUS:
                raise RetryableError(message)
            raise DeliveryError(message)


def _card_title(payload: Json) -> str:
    body = payload["attachments"][0]["content"]["body"]
    first = body[0]
    return str(first["items"][0]["text"] if first["type"] == "Container" else first["text"])


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> TeamsSink:
    return TeamsSink(name, parse_options(TeamsOptions, name, options), context)
