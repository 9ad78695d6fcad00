"""E-mail over SMTP: one message per run, HTML with a plain-text alternative and the whole
report attached as `report.html` (mutguard.render.html, with the MUT trend when the state
store keeps a history).

The subject says how many clusters the message covers, the worst MUT and how many new critical
failures there are; the body has, per cluster, worst first (lowest MUT, then name), the MUT and
its change, the cheapest attack path, the top fixes told as the provider's remediation, and what
is new / worse / resolved. A message that would be bigger than the server accepts (the SIZE it
announces, RFC 1870) or than `max_bytes` goes without the attachment, and its body says so. The
connection always upgrades with STARTTLS (the server certificate is verified, against `ca_file`
when given) before any login, so a password never crosses the network in the clear.

Options: `host`, `port` (587), `sender`, `recipients`, `username` (login only when set; the
password comes from `password_env`, default MUTGUARD_SMTP_PASSWORD), `ca_file`, `report_url`,
`max_items`, `max_bytes`.
"""

from __future__ import annotations

import html
import re
import smtplib
import ssl
from collections.abc import Mapping
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
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
from mutguard.publish.retry import DeliveryError, RetryableError
from mutguard.publish.text import (
    SCAN_ERRORS_TITLE,
    ClusterSummary,
    limited,
    scan_errors,
    subject,
    summarise,
    worst_first,
)
from mutguard.render import html as html_report

if TYPE_CHECKING:
    from mutguard.publish.fleet import FleetDigest

TIMEOUT_SECONDS = 15
REPORT_FILE = "report.html"


class MailOptions(SinkOptions):
    """What every e-mail sink has (this one and ses.py): who sends, to whom, how much."""

    sender: str = Field(min_length=3)
    recipients: list[str] = Field(min_length=1)
    report_url: str | None = None
    max_items: int = Field(default=25, ge=1, le=200)
    # The biggest message to send, in bytes (a mail gateway's limit); the SMTP server's SIZE
    # and SES's own limit apply whatever this says.
    max_bytes: int | None = Field(default=None, ge=10_000)


class SmtpOptions(MailOptions):
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password_env: str = "MUTGUARD_SMTP_PASSWORD"  # noqa: S105 - a variable name
    ca_file: Path | None = None


def _sections(summary: ClusterSummary, most: int) -> list[tuple[str, list[str]]]:
    lists = [
        ("Top fixes by MUT gain", summary.remedies),
        ("New failures", summary.new),
        ("Severity rose", summary.worsened),
        ("Resolved", summary.resolved),
        ("Errors", summary.errors),
    ]
    return [(f"{title} ({len(lines)})", limited(lines, most)) for title, lines in lists if lines]


def text_body(
    summaries: list[ClusterSummary], errors: list[str], title: str, most: int, link: str | None
) -> str:
    out = [title, "=" * len(title), ""]
    if errors:
        out += [f"{SCAN_ERRORS_TITLE} ({len(errors)}):", *(f"  - {e}" for e in errors), ""]
    for s in summaries:
        out += [s.title, "-" * len(s.title), s.headline, s.change]
        if s.path:
            out.append(f"Cheapest attack path: {s.path}")
        out.append(f"Failed checks: {s.counts}")
        for heading, lines in _sections(s, most):
            # A remedy's further lines (its CLI, Terraform and Console) stay under its item.
            out += ["", f"{heading}:", *("  - " + line.replace("\n", "\n    ") for line in lines)]
        out.append("")
    if link:
        out.append(f"Full report: {link}")
    return "\n".join(out) + "\n"


def html_body(
    summaries: list[ClusterSummary], errors: list[str], title: str, most: int, link: str | None
) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"></head>',
        '<body style="font-family: sans-serif">',
        f"<h1>{e(title)}</h1>",
    ]
    if errors:
        out.append(f"<h2>{e(SCAN_ERRORS_TITLE)} ({len(errors)})</h2><ul>")
        out += [f"<li>{e(line)}</li>" for line in errors]
        out.append("</ul>")
    for s in summaries:
        out += [f"<h2>{e(s.title)}</h2>", f"<p><strong>{e(s.headline)}</strong><br>"]
        out.append(f"{e(s.change)}</p>")
        if s.path:
            out.append(f"<p>Cheapest attack path: <code>{e(s.path)}</code></p>")
        out.append(f"<p>Failed checks: {e(s.counts)}</p>")
        for heading, lines in _sections(s, most):
            out.append(f"<h3>{e(heading)}</h3><ul>")
            out += [f"<li>{_prose(line)}</li>" for line in lines]
            out.append("</ul>")
    if link:
        out.append(f'<p><a href="{e(link, quote=True)}">Full report</a></p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _prose(line: str) -> str:
    """Escaped, with `code` spans set as code (remediations quote their commands that way) and
    its line breaks kept (a remedy's CLI, Terraform and Console lines)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(line)).replace("\n", "<br>")


def attached_report(notice: Notice) -> str:
    """The whole report as one HTML page, with the MUT history of the clusters told about (the
    trend is left out when no store kept any)."""
    history = {item.key: item.history for item in notice.items}
    return html_report.render(notice.report, history=history if any(history.values()) else None)


def render(notice: Notice, options: MailOptions) -> list[Json]:
    """One e-mail: alerts when a cluster has news; a digest whenever it has anything to say,
    if only that some accounts could not be scanned. Scan errors come first in either, then the
    clusters worst first; the report is attached."""
    errors = scan_errors(notice.report)
    if not notice.items and not (notice.digest and errors):
        return []
    summaries = [summarise(item) for item in worst_first(notice.items)]
    title = subject(notice.items, notice.digest, len(errors))
    most, link = options.max_items, options.report_url
    return [
        {
            "from": options.sender,
            "to": list(options.recipients),
            "subject": title,
            "text": text_body(summaries, errors, title, most, link),
            "html": html_body(summaries, errors, title, most, link),
            "attachment": {
                "filename": REPORT_FILE,
                "content_type": "text/html",
                "content": attached_report(notice),
            },
        }
    ]


# RFC 5322's line limit: the default 78 folds even short subjects onto a continuation line.
_POLICY = policy.default.clone(max_line_length=998)


def email_message(payload: Json) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["From"] = payload["from"]
    message["To"] = ", ".join(payload["to"])
    message["Subject"] = payload["subject"]
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=payload["from"].rpartition("@")[2] or None)
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    if attachment := payload.get("attachment"):  # text: content_type is text/SUBTYPE
        subtype = attachment["content_type"].partition("/")[2]
        message.add_attachment(
            attachment["content"], subtype=subtype, filename=attachment["filename"]
        )
    return message


def message_bytes(message: EmailMessage) -> int:
    """The size on the wire (CRLF line ends, as SMTP sends it; SES's raw message is no bigger)."""
    return len(message.as_bytes(policy=_POLICY.clone(linesep="\r\n")))


def fitting_message(payload: Json, limit: int | None, whose: str) -> EmailMessage:
    """The message, or, when it would be over `limit` bytes (`whose` limit, e.g. "SES's"), the
    message without its attachment, the body saying what was left out and why."""
    message = email_message(payload)
    attachment = payload.get("attachment")
    if limit is None or attachment is None or (size := message_bytes(message)) <= limit:
        return message
    note = (
        f"The full report ({attachment['filename']}) is not attached: with it this e-mail is "
        f"{size:,} bytes, over the limit of {limit:,} bytes ({whose})."
    )
    page, _, end = payload["html"].rpartition("</body>")
    return email_message(
        {
            **{key: value for key, value in payload.items() if key != "attachment"},
            "text": f"{payload['text']}\n{note}\n",
            "html": f"{page}<p><em>{html.escape(note)}</em></p>\n</body>{end}",
        }
    )


def smallest(*limits: int | None) -> int | None:
    known = [limit for limit in limits if limit is not None]
    return min(known) if known else None


def digest_mail(digest: FleetDigest, options: MailOptions) -> list[Outgoing]:
    from mutguard.publish.fleet import digest_html, digest_subject, digest_text

    payload = {
        "from": options.sender,
        "to": list(options.recipients),
        "subject": digest_subject(digest),
        "text": digest_text(digest, options.max_items),
        "html": digest_html(digest, options.max_items),
    }
    return [Outgoing(summary=payload["subject"], payload=payload)]


class SmtpSink:
    def __init__(self, name: str, options: SmtpOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._context = context

    def render(self, notice: Notice) -> list[Outgoing]:
        options = with_report_link(self.options, self._context)
        return [Outgoing(summary=p["subject"], payload=p) for p in render(notice, options)]

    def render_digest(self, digest: FleetDigest) -> list[Outgoing]:
        return digest_mail(digest, self.options)

    def deliver(self, item: Outgoing) -> None:
        password = None
        if self.options.username:
            password = self._context.secrets.get(self.options.password_env)
            self._context.redactor.add(password)
        try:
            self._send(item.payload, password)
        except smtplib.SMTPResponseException as err:
            # 4xx replies are temporary by definition (RFC 5321 §4.2.1), 5xx permanent.
            text = err.smtp_error.decode("utf-8", "replace") if err.smtp_error else ""
            self._fail(f"answered {err.smtp_code} {text}", retry=400 <= err.smtp_code < 500)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPNotSupportedError) as err:
            self._fail(str(err), retry=False)
        except ssl.SSLCertVerificationError as err:
            self._fail(f"server certificate rejected: {err.verify_message}", retry=False)
        except (smtplib.SMTPException, OSError) as err:  # refused, reset, timed out
            self._fail(f"unreachable: {err}", retry=True)

    def _send(self, payload: Json, password: str | None) -> None:
        options = self.options
        context = ssl.create_default_context(cafile=options.ca_file)
        with smtplib.SMTP(options.host, options.port, timeout=TIMEOUT_SECONDS) as connection:
            connection.ehlo()
            connection.starttls(context=context)
            connection.ehlo()
            if options.username and password is not None:
                connection.login(options.username, password)
            server = server_limit(connection)
            limit = smallest(server, options.max_bytes)
            whose = "the SMTP server's" if limit == server else "the sink's max_bytes"
            connection.send_message(fitting_message(payload, limit, whose))

    def _fail(self, detail: str, retry: bool) -> None:
        message = f"smtp {self.name}: {detail}"
        raise (RetryableError(message) if retry else DeliveryError(message)) from None


def server_limit(connection: smtplib.SMTP) -> int | None:
    """The biggest message the server takes, from its EHLO answer (SIZE; none or 0: no fixed
    limit)."""
    size = connection.esmtp_features.get("size", "").strip()
    return int(size) if size.isdigit() and int(size) > 0 else None


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> SmtpSink:
    return SmtpSink(name, parse_options(SmtpOptions, name, options), context)
