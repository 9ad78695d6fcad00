"""E-mail through Amazon SES: the same message as the smtp sink (smtp.py), sent with boto3.

One HTML + plain-text e-mail per run with the report attached, rendered by smtp.render and
built by smtp.fitting_message, goes out with SES SendRawEmail from `sender` to `recipients`
(the envelope follows the To header, as with SMTP). SendRawEmail takes at most 10 MB per
message (MESSAGE_LIMIT; docs.aws.amazon.com/ses/latest/dg/quotas.html, SES v1 API): a bigger
one, or one over `max_bytes`, goes without the attachment and its body says so. SES sends only
from a verified address or domain: an unverified sender is refused (MessageRejected) and fails
the sink at once, naming the sender and the region.

Options: `sender`, `recipients`, `report_url`, `max_items`, `max_bytes` (as for smtp);
`region` (default: boto3's). Credentials are the function's or the environment's; there is no
password.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mutguard.publish import aws
from mutguard.publish.base import Notice, Outgoing, SinkContext, parse_options, with_report_link
from mutguard.publish.retry import DeliveryError
from mutguard.publish.sinks.smtp import MailOptions, digest_mail, fitting_message, render, smallest

if TYPE_CHECKING:
    from mutguard.publish.fleet import FleetDigest

# SES refusals that mean the sending identity is not set up, rather than a bad message.
IDENTITY_ERRORS = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException"})
# SendRawEmail's limit on the whole message, attachments included, as sent (after base64).
MESSAGE_LIMIT = 10_000_000


class SesOptions(MailOptions):
    region: str | None = None


class SesSink:
    def __init__(self, name: str, options: SesOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._context = context
        self._client: Any = None

    def render(self, notice: Notice) -> list[Outgoing]:
        options = with_report_link(self.options, self._context)
        return [Outgoing(summary=p["subject"], payload=p) for p in render(notice, options)]

    def render_digest(self, digest: FleetDigest) -> list[Outgoing]:
        return digest_mail(digest, self.options)

    def deliver(self, item: Outgoing) -> None:
        limit = smallest(MESSAGE_LIMIT, self.options.max_bytes)
        whose = "SES's" if limit == MESSAGE_LIMIT else "the sink's max_bytes"
        raw = fitting_message(item.payload, limit, whose).as_bytes()
        sender = self.options.sender
        try:
            aws.call(
                f"ses {self.name}",
                lambda: self._ses().send_raw_email(Source=sender, RawMessage={"Data": raw}),
                self._context.redactor,
            )
        except aws.AwsError as err:
            if err.code not in IDENTITY_ERRORS:
                raise
            region = self._ses().meta.region_name
            raise DeliveryError(
                f"{err} (is the sender {sender} verified in SES in {region}?)"
            ) from None

    def _ses(self) -> Any:
        if self._client is None:
            self._client = aws.client("ses", self.options.region)
        return self._client


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> SesSink:
    return SesSink(name, parse_options(SesOptions, name, options), context)
