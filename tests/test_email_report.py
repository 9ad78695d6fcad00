"""The e-mail sinks (smtp against aiosmtpd, ses against moto_server) send the whole report as a
`report.html` attachment, list clusters worst first, tell each top fix as the provider's
remediation, leave the attachment out (and say so) when the message would be too big, and
carry no secret."""

import datetime
import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from functools import cache
from html import escape
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from mutguard.models import Report, cluster_key
from mutguard.providers import snapshot
from mutguard.publish import (
    ConfigurationError,
    EnvSecrets,
    Redactor,
    RetryPolicy,
    SecretRefs,
    SinkContext,
    SinkSpec,
    build_sinks,
    notify,
    publish,
)
from mutguard.publish.stores.sqlite import SqliteStateStore
from mutguard.render import html
from mutguard.render.summary import top_fixes
from mutguard.scan import build_report
from mutguard.state import changes

from servers.aws_clients import AwsClients
from servers.smtp import PASSWORD, USERNAME, SmtpServer
from servers.tls import TestCa

GENERATED_AT = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
SENDER = "mutguard@example.com"
# Lowest MUT of any start first, then by name (the report itself lists them by name).
WORST_FIRST = [
    "payments-legacy",  # 0
    "data-platform",  # 1
    "orders-aks",  # ≤1
    "shop-prod",  # 1
    "shop-staging",  # ≤1
    "platform-core",  # 2
]


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(snapshot.read(demo), GENERATED_AT)


def no_waiting() -> RetryPolicy:
    return RetryPolicy(sleep=lambda seconds: None, jitter=lambda d: d)


@pytest.fixture
def ca_file(test_ca: TestCa, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(test_ca.ca_pem)
    return path


@pytest.fixture
def smtp(test_ca: TestCa) -> Iterator[SmtpServer]:
    with SmtpServer(test_ca) as server:
        yield server


def smtp_spec(server: SmtpServer, ca_file: Path, **options: Any) -> SinkSpec:
    settings = {
        "host": "127.0.0.1",
        "port": server.port,
        "sender": SENDER,
        "recipients": ["platform-team@example.com"],
        "username": USERNAME,
        "ca_file": str(ca_file),
        **options,
    }
    return SinkSpec("smtp", options=settings)


def smtp_context() -> SinkContext:
    env = {"MUTGUARD_SMTP_PASSWORD": PASSWORD}
    return SinkContext(EnvSecrets(env), Redactor(), no_waiting())


def send(spec: SinkSpec, ctx: SinkContext, report: Report | None = None) -> None:
    report = report or demo_report()
    (result,) = publish(report, changes({}, report), build_sinks([spec], ctx), ctx)
    assert (result.ok, result.sent, result.error) == (True, 1, None)


class Page(HTMLParser):
    """What a reader of the attached page finds: the clusters' headings and every element."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.headings: list[str] = []
        self._in_heading = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_heading = tag == "h2"
        if self._in_heading:
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_heading = False

    def handle_data(self, data):
        if self._in_heading:
            self.headings[-1] += data


def attachment_of(message: EmailMessage) -> str:
    (attached,) = list(message.iter_attachments())
    assert attached.get_content_type() == "text/html"
    assert attached.get_filename() == "report.html"
    assert attached.get_content_disposition() == "attachment"
    page: str = attached.get_content()
    return page


def bodies(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",)).get_content()
    rich = message.get_body(preferencelist=("html",)).get_content()
    return plain, rich


def fixes_told(plain: str, name: str) -> list[str]:
    """The items of the "Top fixes" list of one cluster in the plain-text body, each with the
    further lines of its remediation (indented under it in the body)."""
    block = plain.split(f"\n{name} (", 1)[1]
    after = WORST_FIRST[WORST_FIRST.index(name) + 1 :]
    if after:
        block = block.split(f"\n{after[0]} (", 1)[0]
    if "Top fixes by MUT gain" not in block:
        return []
    listed = block.split("Top fixes by MUT gain", 1)[1].split("\n\n", 1)[0]
    items: list[str] = []
    for line in listed.splitlines()[1:]:
        if line.startswith("  - "):
            items.append(line.removeprefix("  - "))
        else:
            assert line.startswith("    "), line
            items[-1] += "\n" + line.removeprefix("    ")
    return items


def assert_worst_first_with_remediations(message: EmailMessage) -> None:
    plain, rich = bodies(message)
    plain = plain.replace("\r\n", "\n")
    titles = [plain.index(f"\n{name} (") for name in WORST_FIRST]
    assert titles == sorted(titles)
    assert [c.name for c in demo_report().clusters] != WORST_FIRST  # the order is the e-mail's
    for cluster in demo_report().clusters:
        told = fixes_told(plain, cluster.name)
        for item, fix in zip(told, top_fixes(cluster), strict=True):
            # What to do on this cluster's provider, not what was found: the summary, then the
            # commands (as code in the HTML body) and the Terraform setting, labelled.
            first, *more = item.split("\n")
            assert f"] {fix.check_id}" in first and first.endswith(f": {fix.remediation.summary}")
            assert fix.detail not in item
            commands = fix.remediation.cli.splitlines()
            assert more[0] == f"CLI: `{commands[0]}`"
            assert more[1 : len(commands)] == [f"     `{command}`" for command in commands[1:]]
            assert (f"Terraform: {fix.remediation.terraform}" in more) == bool(
                fix.remediation.terraform
            )
            assert f"<br>CLI: <code>{escape(commands[0])}</code>" in rich, commands[0]
    assert fixes_told(plain, "data-platform")[0].count("`gcloud container clusters update")
    assert fixes_told(plain, "orders-aks")[0].count("`az aks update -g RG -n NAME")
    assert fixes_told(plain, "shop-prod")[0].count("`aws eks update-cluster-config --name")


def assert_the_whole_report_is_attached(message: EmailMessage) -> str:
    page = attachment_of(message)
    parsed = Page(page)
    assert page.startswith("<!DOCTYPE html>") and "html" in parsed.tags
    assert not {"script", "img", "iframe", "link"} & set(parsed.tags)
    assert sorted(parsed.headings) == sorted(WORST_FIRST)  # every cluster, once
    return page


def test_smtp_attaches_the_html_report_of_the_run(smtp: SmtpServer, ca_file: Path):
    send(smtp_spec(smtp, ca_file), smtp_context())
    (message,) = smtp.messages
    page = assert_the_whole_report_is_attached(message)
    # The same report the body summarises (text parts travel with CRLF line ends).
    assert page.replace("\r\n", "\n") == html.render(demo_report())
    assert_worst_first_with_remediations(message)
    raw = message.as_bytes()
    assert PASSWORD.encode() not in raw and b"MUTGUARD_SMTP_PASSWORD" not in raw
    assert smtp.logins == [(USERNAME, True)]


def test_ses_attaches_the_same_report(cloud: AwsClients):
    cloud.ses.verify_email_identity(EmailAddress=SENDER)
    redactor = Redactor()
    ctx = SinkContext(SecretRefs(redactor, {}), redactor, no_waiting())
    spec = SinkSpec("ses", options={"sender": SENDER, "recipients": ["secops@example.com"]})
    send(spec, ctx)
    (sent,) = cloud.ses_sent()
    message = email.message_from_string(sent["raw_data"], policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    page = assert_the_whole_report_is_attached(message)
    assert page.replace("\r\n", "\n") == html.render(demo_report())
    assert_worst_first_with_remediations(message)
    secret_key = cloud.fakes.env["AWS_SECRET_ACCESS_KEY"]
    assert secret_key not in sent["raw_data"]


def test_a_message_over_the_smtp_servers_size_goes_without_the_attachment(
    test_ca: TestCa, ca_file: Path
):
    with SmtpServer(test_ca, data_size_limit=100_000) as server:
        send(smtp_spec(server, ca_file), smtp_context())
        (message,) = server.messages
    assert list(message.iter_attachments()) == []
    plain, rich = bodies(message)
    note = "The full report (report.html) is not attached: with it this e-mail is "
    assert note in plain and note in rich
    assert "bytes, over the limit of 100,000 bytes (the SMTP server's)." in plain
    assert_worst_first_with_remediations(message)  # the body is whole


def test_max_bytes_leaves_the_attachment_out_below_the_servers_limit(
    smtp: SmtpServer, ca_file: Path
):
    send(smtp_spec(smtp, ca_file, max_bytes=120_000), smtp_context())
    (message,) = smtp.messages
    assert list(message.iter_attachments()) == []
    assert "over the limit of 120,000 bytes (the sink's max_bytes)." in bodies(message)[0]
    with pytest.raises(ConfigurationError, match="sink smtp: max_bytes: Input should be greater"):
        build_sinks([smtp_spec(smtp, ca_file, max_bytes=100)], smtp_context())


def huge_report() -> Report:
    """The demo with one cluster of 12,000 long findings: an HTML page of over 10 MB."""
    report = demo_report()
    legacy = next(c for c in report.clusters if c.name == "payments-legacy")
    unknown = next(f for f in legacy.findings if f.status.value == "UNKNOWN")
    extra = [
        unknown.model_copy(update={"resource": f"Pod team/pod-{i:06d}", "detail": "x" * 600})
        for i in range(12_000)
    ]
    huge = legacy.model_copy(update={"findings": [*legacy.findings, *extra]})
    clusters = [huge if c is legacy else c for c in report.clusters]
    return report.model_copy(update={"clusters": clusters})


def test_a_message_over_ses_10_mb_goes_without_the_attachment(cloud: AwsClients):
    cloud.ses.verify_email_identity(EmailAddress=SENDER)
    redactor = Redactor()
    ctx = SinkContext(SecretRefs(redactor, {}), redactor, no_waiting())
    spec = SinkSpec("ses", options={"sender": SENDER, "recipients": ["secops@example.com"]})
    report = huge_report()
    assert len(html.render(report).encode()) > 10_000_000
    send(spec, ctx, report)
    (sent,) = cloud.ses_sent()
    assert len(sent["raw_data"].encode()) < 1_000_000
    message = email.message_from_string(sent["raw_data"], policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert list(message.iter_attachments()) == []
    plain, rich = bodies(message)
    assert "The full report (report.html) is not attached" in plain
    assert "over the limit of 10,000,000 bytes (SES&#x27;s)." in rich


def test_the_attachment_shows_the_trend_the_state_store_kept(
    smtp: SmtpServer, ca_file: Path, tmp_path: Path
):
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    ctx = smtp_context()
    sinks = build_sinks([smtp_spec(smtp, ca_file)], ctx)
    first = demo_report()
    assert notify(first, store, sinks, ctx).state_saved
    first_page = attachment_of(smtp.messages[0])
    assert '<th rowspan="2">trend</th>' not in first_page  # no earlier run: no trend

    prod = next(c for c in first.clusters if c.name == "shop-prod")
    later = first.model_copy(
        update={
            "generated_at": GENERATED_AT + datetime.timedelta(days=1),
            "clusters": [
                c.model_copy(update={"mut": 1}) if c is prod else c for c in first.clusters
            ],
        }
    )
    outcome = notify(later, store, sinks, ctx)
    assert outcome.state_saved and [c.cluster.name for c in outcome.changes if c.has_news] == [
        "shop-prod"
    ]
    page = attachment_of(smtp.messages[1])
    assert '<th rowspan="2">trend</th>' in page
    assert (
        'title="worse since the previous run (2026-03-01 08:00 UTC): 2 → 1 from the internet">'
        "↓</span>" in page
    )
    assert page.count('class="sparkline"') == 1  # only shop-prod was told about
    assert len(store.load([cluster_key(prod)])[cluster_key(prod)].history) == 2


def test_the_attachment_as_received_opens_with_its_style_allowed(
    smtp: SmtpServer, ca_file: Path, tmp_path: Path
):
    """A browser reads the page as the mail client saves it (CRLF line ends included): the
    style still matches the hash its policy allows."""
    pytest.importorskip("websocket", reason="websocket-client is not installed (the dev extra)")
    from browser import chromium, open_tab

    executable = chromium()
    if executable is None:
        pytest.skip("chromium is not installed: the attachment is not opened in a browser")
    send(smtp_spec(smtp, ca_file), smtp_context())
    (message,) = smtp.messages
    (attached,) = list(message.iter_attachments())
    path = tmp_path / "report.html"
    path.write_bytes(attached.get_content().encode())
    assert b"\r\n" in path.read_bytes()
    with open_tab(executable) as tab:
        tab.send(
            "Page.addScriptToEvaluateOnNewDocument",
            source="window.cspViolations = []; document.addEventListener("
            "'securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective));",
        )
        tab.load(path.resolve().as_uri())
        assert tab.evaluate("window.cspViolations") == []
        style = "getComputedStyle(document.querySelector('.cluster')).borderTopStyle"
        assert tab.evaluate(style) == "solid"
        headings = tab.evaluate("[...document.querySelectorAll('h2')].map(h => h.textContent)")
    assert sorted(headings) == sorted(WORST_FIRST)
