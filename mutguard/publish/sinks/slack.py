"""Slack: a Block Kit message per cluster, by incoming webhook or chat.postMessage (slack-sdk).

Each message leads with the MUT and how it moved since the last run, then the cheapest attack
path in one line, the top fixes by mut_gain, what is new / worse / resolved, and the counts by
severity. In digest mode one summary covers every cluster.

Slack's documented limits are kept by summarising and splitting, never by failing: a header's
text is at most 150 characters, a section's text at most 3000, a message at most 50 blocks.
Slack also rejects messages whose blocks hold much more than ~13,000 characters in all
(`msg_blocks_too_long`, below the documented 40,000; slackapi/bolt-js#2509), so a message
carries at most TEXT_BUDGET characters and the rest goes into the next one. Lists show at most
`max_items` lines, then "…and N more". Messages to one channel are paced about one per second,
and a 429's Retry-After is honoured.

Options: without `channel`, the incoming webhook URL is read from `webhook_url_env` (default
MUTGUARD_SLACK_WEBHOOK_URL); with `channel`, chat.postMessage posts there with the bot token
from `token_env` (MUTGUARD_SLACK_BOT_TOKEN). `base_url` is the Web API root; `report_url` adds a
link to the full report.
"""

from __future__ import annotations

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
from mutguard.publish.retry import DeliveryError, Pacer, RetryableError, parse_retry_after
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

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_TEXT = 3000
TEXT_BUDGET = 12_000
MAX_LINE = 500  # one finding line; keeps a single long resource name from filling a section
SECONDS_PER_MESSAGE = 1.0
TIMEOUT_SECONDS = 15


class SlackOptions(SinkOptions):
    webhook_url_env: str = "MUTGUARD_SLACK_WEBHOOK_URL"
    token_env: str = "MUTGUARD_SLACK_BOT_TOKEN"  # noqa: S105 - a variable name
    channel: str | None = None
    base_url: str = "https://slack.com/api/"
    report_url: str | None = None
    max_items: int = Field(default=10, ge=1, le=50)


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_within(text: str, limit: int) -> str:
    """`text` escaped, shortened first so the escaped form has at most `limit` characters
    (shortening after escaping could cut an entity such as &amp; in half)."""
    escaped = escape(text)
    while len(escaped) > limit:
        keep = min(len(text) - 1, len(text) * limit // len(escaped))
        text = truncate(text, keep)
        escaped = escape(text)
    return escaped


def _header(text: str) -> Json:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(text, MAX_HEADER_TEXT), "emoji": True},
    }


def _section(mrkdwn: str) -> Json:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _context(mrkdwn: str) -> Json:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(mrkdwn, MAX_CONTEXT_TEXT)}],
    }


def _list_sections(title: str, lines: list[str], most: int) -> list[Json]:
    """A titled bullet list as sections of at most MAX_SECTION_TEXT characters each."""
    if not lines:
        return []
    bullets = [f"• {escape_within(line, MAX_LINE)}" for line in limited(lines, most)]
    sections: list[str] = [f"*{escape(title)} ({len(lines)})*"]
    for bullet in bullets:
        if len(sections[-1]) + 1 + len(bullet) > MAX_SECTION_TEXT:
            sections.append(bullet)
        else:
            sections[-1] += "\n" + bullet
    return [_section(text) for text in sections]


def cluster_blocks(summary: ClusterSummary, most: int, report_url: str | None) -> list[Json]:
    blocks = [
        _header(summary.title),
        _section(
            f"*{escape_within(summary.headline, 1000)}*\n{escape_within(summary.change, 1000)}"
        ),
    ]
    if summary.path:
        path = escape_within(summary.path, MAX_SECTION_TEXT - 30)
        blocks.append(_section(f"*Cheapest attack path*\n{path}"))
    blocks += _list_sections("Top fixes by MUT gain", summary.fixes, most)
    blocks += _list_sections("New failures", summary.new, most)
    blocks += _list_sections("Severity rose", summary.worsened, most)
    blocks += _list_sections("Resolved", summary.resolved, most)
    blocks += _list_sections("Errors", summary.errors, most)
    footer = f"Failed checks: {escape(summary.counts)}"
    if report_url:
        footer += f" · <{report_url}|Full report>"
    blocks.append(_context(footer))
    return blocks


def _text_size(block: Json) -> int:
    if "text" in block:
        return len(block["text"]["text"])
    return sum(len(element.get("text", "")) for element in block.get("elements", []))


def pack(groups: list[list[Json]]) -> list[list[Json]]:
    """Blocks into messages of at most MAX_BLOCKS blocks and TEXT_BUDGET characters, keeping a
    cluster's blocks together when they fit in one message."""
    messages: list[list[Json]] = [[]]

    def room_for(blocks: list[Json]) -> bool:
        current = messages[-1]
        return (
            len(current) + len(blocks) <= MAX_BLOCKS
            and sum(map(_text_size, current + blocks)) <= TEXT_BUDGET
        )

    for group in groups:
        if not room_for(group) and messages[-1]:
            messages.append([])
        for block in group:
            if not room_for([block]) and messages[-1]:
                messages.append([])
            messages[-1].append(block)
    return [m for m in messages if m]


def render(notice: Notice, options: SlackOptions) -> list[Json]:
    """The chat payloads ({"text", "blocks"}): a message per cluster (more when one cluster's
    blocks do not fit), or in digest mode one summary split only where the limits demand."""
    groups = [
        cluster_blocks(summarise(item), options.max_items, options.report_url)
        for item in notice.items
    ]
    if not notice.digest:
        return [payload for group in groups for payload in _payloads(pack([group]))]
    errors = scan_errors(notice.report)
    if not groups and not errors:
        return []
    title = [_header(subject(notice.items, digest=True, unscanned=len(errors)))]
    digest = [title + _list_sections(SCAN_ERRORS_TITLE, errors, options.max_items), *groups]
    with_dividers = [[*group, {"type": "divider"}] for group in digest[:-1]] + digest[-1:]
    return _payloads(pack(with_dividers))


def _payloads(messages: list[list[Json]]) -> list[Json]:
    return [
        {"text": truncate(_fallback(blocks, index, len(messages)), 3000), "blocks": blocks}
        for index, blocks in enumerate(messages, start=1)
    ]


def _fallback(blocks: list[Json], index: int, count: int) -> str:
    """The notification text (and what screen readers announce)."""
    first = next((b["text"]["text"] for b in blocks if b["type"] == "header"), "mutguard")
    return first if count == 1 else f"{first} ({index}/{count})"


class SlackSink:
    def __init__(self, name: str, options: SlackOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._context = context
        self._pacer = Pacer(SECONDS_PER_MESSAGE, context.retry)

    def render(self, notice: Notice) -> list[Outgoing]:
        payloads = render(notice, with_report_link(self.options, self._context))
        return [Outgoing(summary=payload["text"], payload=payload) for payload in payloads]

    def render_digest(self, digest: FleetDigest) -> list[Outgoing]:
        from mutguard.publish.fleet import digest_sections, digest_subject

        most = self.options.max_items
        groups = [[_header(digest_subject(digest))]]
        groups += [_list_sections(t, lines, most) for t, lines in digest_sections(digest)]
        return [Outgoing(summary=p["text"], payload=p) for p in _payloads(pack(groups))]

    def deliver(self, item: Outgoing) -> None:
        self._pacer.wait()
        if self.options.channel:
            self._post_message(item.payload)
        else:
            self._send_webhook(item.payload)

    def _send_webhook(self, payload: Json) -> None:
        from slack_sdk.webhook import WebhookClient

        redactor = self._context.redactor
        url = redactor.add(self._context.secrets.get(self.options.webhook_url_env))
        client = WebhookClient(
            url,
            timeout=TIMEOUT_SECONDS,
            logger=redactor.logger(f"slack.{self.name}"),
            retry_handlers=[],  # retries are ours: bounded, jittered, with injectable delays
        )
        try:
            response = client.send_dict(payload)
        except OSError as err:
            raise RetryableError(f"slack webhook unreachable: {err}") from None
        if response.status_code != 200:
            raise _failure(response.status_code, response.headers, response.body, "slack webhook")

    def _post_message(self, payload: Json) -> None:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        redactor = self._context.redactor
        token = redactor.add(self._context.secrets.get(self.options.token_env))
        client = WebClient(
            token=token,
            base_url=self.options.base_url,
            timeout=TIMEOUT_SECONDS,
            logger=redactor.logger(f"slack.{self.name}"),
            retry_handlers=[],
        )
        try:
            client.chat_postMessage(channel=self.options.channel, **payload)
        except SlackApiError as err:
            response = err.response
            error = response.data.get("error") if isinstance(response.data, dict) else None
            raise _failure(
                response.status_code,
                response.headers,
                str(error or "not ok"),
                "slack chat.postMessage",
            ) from None
        except OSError as err:
            raise RetryableError(f"slack chat.postMessage unreachable: {err}") from None


def _failure(status: int, headers: Mapping[str, Any], detail: str, what: str) -> DeliveryError:
    message = f"{what} answered HTTP {status}: {truncate(detail, 300)}"
    if status == 429 or status >= 500:
        retry_after = headers.get("Retry-After") or headers.get("retry-after")
        return RetryableError(message, parse_retry_after(retry_after))
    return DeliveryError(message)


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> SlackSink:
    return SlackSink(name, parse_options(SlackOptions, name, options), context)
