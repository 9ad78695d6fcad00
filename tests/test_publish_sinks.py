"""Each sink against a real local server: Slack (slack-sdk), Teams, generic webhook, SMTP.

Delays never pass in real time: the retry policy gets a FakeTime whose sleep records the
requested wait and moves its clock on, so pacing and Retry-After are checked by value.
"""

import datetime
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from mutguard.models import ClusterReport, Report, Severity, Status
from mutguard.providers import snapshot
from mutguard.publish import (
    ConfigurationError,
    EnvSecrets,
    Redactor,
    RetryPolicy,
    SinkContext,
    SinkResult,
    SinkSpec,
    build_sinks,
    publish,
)
from mutguard.scan import build_report
from mutguard.state import changes

from builders import NEWS_CLUSTERS, varied
from servers.chat import BOT_TOKEN, CHANNEL, ChatServer, block_problems
from servers.smtp import PASSWORD, USERNAME, SmtpServer
from servers.tls import TestCa

MESSAGE_SCHEMA = Path(__file__).parents[1] / "schemas" / "message.schema.json"
SLACK_SECRET_PATH = "T0MUTGUARD/B0MUTGUARD/slackHookSecret0123456789"
TEAMS_SECRET_PATH = "teamsWorkflowSecret0123456789"
HOOK_SECRET_PATH = "genericHookSecret0123456789"
HMAC_KEY = "whsec-mutguard-test-0123456789"


class FakeTime:
    """Stands in for time.sleep and time.monotonic: records each wait, never blocks."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    generated_at = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
    return build_report(snapshot.read(demo), generated_at)


@pytest.fixture
def smtp(test_ca: TestCa) -> Iterator[SmtpServer]:
    with SmtpServer(test_ca) as server:
        yield server


@pytest.fixture
def ca_file(test_ca: TestCa, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(test_ca.ca_pem)
    return path


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def environment(chat: ChatServer) -> dict[str, str]:
    return {
        "MUTGUARD_SLACK_WEBHOOK_URL": f"{chat.url}/services/{SLACK_SECRET_PATH}",
        "MUTGUARD_SLACK_BOT_TOKEN": BOT_TOKEN,
        "MUTGUARD_TEAMS_WEBHOOK_URL": f"{chat.url}/teams/{TEAMS_SECRET_PATH}",
        "MUTGUARD_WEBHOOK_URL": f"{chat.url}/hook/{HOOK_SECRET_PATH}",
        "MUTGUARD_WEBHOOK_SECRET": HMAC_KEY,
        "MUTGUARD_SMTP_PASSWORD": PASSWORD,
    }


def context(env: dict[str, str], fake_time: FakeTime) -> SinkContext:
    policy = RetryPolicy(sleep=fake_time.sleep, clock=fake_time.clock, jitter=lambda d: d)
    return SinkContext(secrets=EnvSecrets(env), redactor=Redactor(), retry=policy)


def smtp_spec(smtp: SmtpServer, ca_file: Path) -> SinkSpec:
    options = {
        "host": "127.0.0.1",
        "port": smtp.port,
        "sender": "mutguard@example.com",
        "recipients": ["platform-team@example.com"],
        "username": USERNAME,
        "ca_file": str(ca_file),
    }
    return SinkSpec("smtp", options=options)


def send(
    specs: list[SinkSpec],
    ctx: SinkContext,
    report: Report | None = None,
    digest: bool = False,
    dry_run: bool = False,
) -> dict[str, SinkResult]:
    report = report or demo_report()
    sinks = build_sinks(specs, ctx)
    results = publish(report, changes({}, report), sinks, ctx, digest=digest, dry_run=dry_run)
    return {r.sink: r for r in results}


# --- Slack --------------------------------------------------------------------------------


def test_slack_webhook_gets_a_block_kit_message_per_cluster_paced_a_second_apart(
    chat: ChatServer, fake_time: FakeTime
):
    result = send([SinkSpec("slack")], context(environment(chat), fake_time))["slack"]
    assert (result.ok, result.sent, result.error) == (True, 6, None)
    delivered = [r.json() for r in chat.delivered(f"/services/{SLACK_SECRET_PATH}")]
    assert len(delivered) == 6
    headers = [m["blocks"][0]["text"]["text"] for m in delivered]
    assert [h.split(" ")[0] for h in headers] == NEWS_CLUSTERS  # each fails something
    legacy = delivered[2]
    assert headers[2] == "payments-legacy (eks, eu-west-1): lowest MUT 0"
    text = "\n".join(b["text"]["text"] for b in legacy["blocks"] if "text" in b)
    assert "MUT 0 from the internet" in text and "first report of this cluster" in text
    assert "*Cheapest attack path*\ninternet → network (0): API endpoint public" in text
    assert "*Top fixes by MUT gain (3)*\n• +2 MUT · [high] eks.auth.anonymous" in text
    assert legacy["blocks"][-1]["elements"][0]["text"].startswith("Failed checks: 2 critical")
    assert fake_time.waits == [1.0] * 5  # about one message per second per channel


def test_slack_bot_posts_with_chat_post_message(chat: ChatServer, fake_time: FakeTime):
    spec = SinkSpec("slack", options={"channel": CHANNEL, "base_url": f"{chat.url}/api/"})
    result = send([spec], context(environment(chat), fake_time))["slack"]
    assert (result.ok, result.sent) == (True, 6)
    delivered = chat.delivered("/api/chat.postMessage")
    assert {r.json()["channel"] for r in delivered} == {CHANNEL}
    assert {r.headers["authorization"] for r in delivered} == {f"Bearer {BOT_TOKEN}"}


def test_slack_honours_retry_after_on_429(chat: ChatServer, fake_time: FakeTime):
    chat.fail(
        "/api/chat.postMessage",
        429,
        times=1,
        retry_after="7",
        body=json.dumps({"ok": False, "error": "ratelimited"}),
    )
    spec = SinkSpec("slack", options={"channel": CHANNEL, "base_url": f"{chat.url}/api/"})
    result = send([spec], context(environment(chat), fake_time))["slack"]
    assert (result.ok, result.sent) == (True, 6)
    assert len(chat.requests("/api/chat.postMessage")) == 7
    assert fake_time.waits[0] == 7.0  # the server's Retry-After, not the 0.5 s backoff


def test_a_retry_after_longer_than_the_policy_allows_fails_instead_of_blocking(
    chat: ChatServer, fake_time: FakeTime
):
    chat.fail("/services/", 429, times=1, retry_after="3600")
    result = send([SinkSpec("slack")], context(environment(chat), fake_time))["slack"]
    assert not result.ok and result.sent == 0
    assert "asked to wait 3600 s, more than the 30 s allowed" in result.error
    assert fake_time.waits == []


def failing_cluster(count: int) -> ClusterReport:
    """payments-legacy with `count` failing findings, each with a long detail."""
    base = next(c for c in demo_report().clusters if c.name == "payments-legacy")
    template = next(f for f in base.findings if f.status is Status.FAIL)
    findings = [
        varied(
            template,
            f"k8s.workload.privileged_{i:02d}",
            severity=Severity.CRITICAL if i % 3 == 0 else Severity.HIGH,
            resource=f"payments/pod-{i:02d}-" + "x" * 120,
            detail="container runs privileged <and> mounts the host's / " * 8,
            mut_gain=1,
        )
        for i in range(count)
    ]
    return base.model_copy(update={"findings": findings})


def test_slack_limits_hold_for_a_60_finding_cluster_and_a_30_cluster_digest(
    chat: ChatServer, fake_time: FakeTime
):
    big = failing_cluster(60)
    report = demo_report().model_copy(update={"clusters": [big]})
    alert = send([SinkSpec("slack")], context(environment(chat), fake_time), report)["slack"]
    assert alert.ok and alert.sent == 1
    (message,) = [r.json() for r in chat.delivered("/services/")]
    assert block_problems(message["blocks"]) == []
    text = "\n".join(b["text"]["text"] for b in message["blocks"] if "text" in b)
    assert "*New failures (60)*" in text and "…and 50 more (see the full report)" in text
    assert "&lt;and&gt;" in text  # mrkdwn control characters escaped

    clusters = [big.model_copy(update={"name": f"cluster-{i:02d}"}) for i in range(30)]
    many = demo_report().model_copy(update={"clusters": clusters})
    digest = send([SinkSpec("slack")], context(environment(chat), FakeTime()), many, digest=True)
    assert digest["slack"].ok and digest["slack"].sent > 1
    messages = [r.json() for r in chat.delivered("/services/")][1:]
    assert len(messages) == digest["slack"].sent
    for message in messages:
        assert block_problems(message["blocks"]) == [] and len(message["blocks"]) <= 50
    headers = [b["text"]["text"] for m in messages for b in m["blocks"] if b["type"] == "header"]
    assert headers[0].startswith("mutguard digest: 30 clusters, worst MUT 0")
    assert len(headers) == 31


# --- Teams --------------------------------------------------------------------------------


def test_teams_gets_an_adaptive_card_per_cluster(chat: ChatServer, fake_time: FakeTime):
    result = send([SinkSpec("teams")], context(environment(chat), fake_time))["teams"]
    assert (result.ok, result.sent) == (True, 6)
    cards = [r.json() for r in chat.delivered(f"/teams/{TEAMS_SECRET_PATH}")]
    assert {c["attachments"][0]["contentType"] for c in cards} == {
        "application/vnd.microsoft.card.adaptive"
    }
    first = cards[0]["attachments"][0]["content"]
    assert (first["type"], first["version"]) == ("AdaptiveCard", "1.2")
    container = first["body"][0]
    assert container["items"][0]["text"].startswith("data-platform (gke, europe-west4)")
    assert fake_time.waits == [0.25] * 5  # at most four requests a second


def test_teams_cards_stay_small_for_a_big_cluster_and_throttling_in_the_body_is_retried(
    chat: ChatServer, fake_time: FakeTime
):
    chat.fail("/teams/", 200, body="Microsoft Teams endpoint returned HTTP error 429")
    report = demo_report().model_copy(update={"clusters": [failing_cluster(60)] * 12})
    result = send([SinkSpec("teams")], context(environment(chat), fake_time), report, digest=True)
    assert result["teams"].ok
    delivered = chat.delivered("/teams/")
    assert len(delivered) == result["teams"].sent > 1
    assert all(len(r.body) <= 20_000 for r in delivered)
    assert len(chat.requests("/teams/")) == len(delivered) + 1


# --- Generic webhook ----------------------------------------------------------------------


def test_webhook_posts_each_cluster_message_with_a_verifiable_hmac(
    chat: ChatServer, fake_time: FakeTime
):
    chat.fail("/hook/", 503, times=1)
    result = send([SinkSpec("webhook")], context(environment(chat), fake_time))["webhook"]
    assert (result.ok, result.sent) == (True, 6)
    schema = jsonschema.Draft202012Validator(json.loads(MESSAGE_SCHEMA.read_text()))
    attempts = chat.requests(f"/hook/{HOOK_SECRET_PATH}")
    for request in attempts:
        # What a receiver does: HMAC over "<timestamp>." + the raw body, constant-time compare.
        timestamp = request.headers["x-mutguard-timestamp"]
        expected = hmac.new(HMAC_KEY.encode(), f"{timestamp}.".encode() + request.body, "sha256")
        signature = request.headers["x-mutguard-signature-256"]
        assert hmac.compare_digest(signature, "sha256=" + expected.hexdigest())
        assert request.headers["content-type"] == "application/json"
        schema.validate(request.json())
    # The 503'd message was sent again with the same delivery id.
    deliveries = [r.headers["x-mutguard-delivery"] for r in attempts]
    assert deliveries[0] == deliveries[1] and len(set(deliveries)) == 6
    assert [r.json()["clusters"][0]["name"] for r in chat.delivered("/hook/")] == NEWS_CLUSTERS


def test_webhook_splits_a_cluster_over_max_bytes_into_signed_valid_parts(
    chat: ChatServer, fake_time: FakeTime
):
    report = demo_report().model_copy(update={"clusters": [failing_cluster(60)]})
    spec = SinkSpec("webhook", options={"max_bytes": 16 * 1024})
    result = send([spec], context(environment(chat), fake_time), report)["webhook"]
    schema = jsonschema.Draft202012Validator(json.loads(MESSAGE_SCHEMA.read_text()))
    parts = [r.json() for r in chat.delivered("/hook/")]
    assert result.ok and result.sent == len(parts) > 1
    for part in parts:
        schema.validate(part)
    assert [(p["part"], p["parts"]) for p in parts] == [
        (i + 1, len(parts)) for i in range(len(parts))
    ]
    assert sum(len(p["clusters"][0]["findings"]) for p in parts) == 60
    assert all(len(r.body) <= 16 * 1024 for r in chat.delivered("/hook/"))


def test_a_tampered_body_does_not_verify(chat: ChatServer, fake_time: FakeTime):
    send([SinkSpec("webhook")], context(environment(chat), fake_time))
    request = chat.delivered("/hook/")[0]
    tampered = request.body.replace(b'"mut":1,', b'"mut":3,', 1)
    assert tampered != request.body
    timestamp = request.headers["x-mutguard-timestamp"].encode()
    forged = hmac.new(HMAC_KEY.encode(), timestamp + b"." + tampered, hashlib.sha256)
    assert "sha256=" + forged.hexdigest() != request.headers["x-mutguard-signature-256"]


# --- SMTP ---------------------------------------------------------------------------------


def test_email_over_starttls_with_auth_has_html_and_plain_text(
    smtp: SmtpServer, ca_file: Path, fake_time: FakeTime, chat: ChatServer
):
    result = send([smtp_spec(smtp, ca_file)], context(environment(chat), fake_time))["smtp"]
    assert (result.ok, result.sent) == (True, 1)
    assert smtp.logins == [(USERNAME, True)]
    (message,) = smtp.messages
    assert message["Subject"] == (
        "mutguard: 6 clusters, worst MUT 0 (payments-legacy), 6 new critical"
    )
    assert smtp.envelopes == [("mutguard@example.com", ["platform-team@example.com"])]
    assert message.get_content_type() == "multipart/mixed"  # the body, then report.html
    assert next(message.iter_parts()).get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "payments-legacy (eks, eu-west-1): lowest MUT 0" in plain
    assert "Cheapest attack path: internet → network (0)" in plain
    assert "<h2>payments-legacy (eks, eu-west-1): lowest MUT 0</h2>" in html
    assert "debug-anonymous-admin" in html


def test_email_retries_a_temporary_refusal_but_not_a_bad_password(
    smtp: SmtpServer, ca_file: Path, fake_time: FakeTime, chat: ChatServer
):
    smtp.fail_next("451 4.3.0 Try again later")
    env = environment(chat)
    result = send([smtp_spec(smtp, ca_file)], context(env, fake_time))["smtp"]
    assert result.ok and len(smtp.messages) == 1 and fake_time.waits == [0.5]

    env["MUTGUARD_SMTP_PASSWORD"] = "wrong-password-value"
    result = send([smtp_spec(smtp, ca_file)], context(env, FakeTime()))["smtp"]
    assert not result.ok and result.error.startswith("smtp smtp: answered 535")
    assert smtp.logins[-1] == (USERNAME, False) and len(smtp.logins) == 3  # not retried
    assert "wrong-password-value" not in result.error


def test_email_refuses_a_server_certificate_it_does_not_trust(
    smtp: SmtpServer, fake_time: FakeTime, chat: ChatServer, tmp_path: Path
):
    other = tmp_path / "other-ca.pem"
    other.write_bytes(TestCa().ca_pem)
    result = send([smtp_spec(smtp, other)], context(environment(chat), fake_time))["smtp"]
    assert not result.ok and "server certificate rejected" in result.error
    assert smtp.logins == []  # no password was sent


# --- All sinks together -------------------------------------------------------------------


def test_one_sink_down_does_not_stop_the_others(
    chat: ChatServer, smtp: SmtpServer, ca_file: Path, fake_time: FakeTime
):
    chat.fail("/teams/", 500, times=100)
    specs = [SinkSpec("teams"), SinkSpec("slack"), SinkSpec("webhook"), smtp_spec(smtp, ca_file)]
    results = send(specs, context(environment(chat), fake_time))
    teams = results["teams"]
    assert not teams.ok and teams.sent == 0
    assert teams.error.startswith("teams webhook teams answered HTTP 500")
    assert teams.error.endswith("(gave up after 4 attempts)")
    assert len(chat.requests("/teams/")) == 4
    assert [results[n].ok for n in ("slack", "webhook", "smtp")] == [True, True, True]
    assert fake_time.waits[:3] == [0.5, 1.0, 2.0]  # exponential backoff (jitter off)


def test_an_absent_secret_fails_that_sink_naming_the_variable(
    chat: ChatServer, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch
):
    for name, value in environment(chat).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MUTGUARD_WEBHOOK_SECRET")
    ctx = SinkContext(EnvSecrets(), Redactor(), context({}, fake_time).retry)
    results = send([SinkSpec("webhook"), SinkSpec("slack")], ctx)
    assert results["webhook"].error == "environment variable MUTGUARD_WEBHOOK_SECRET is not set"
    assert chat.requests("/hook/") == []
    assert results["slack"].ok and results["slack"].sent == 6


def test_secrets_stay_out_of_errors_and_logs(
    chat: ChatServer, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    chat.fail("/", 500, times=1000, body="upstream broke")
    specs = [
        SinkSpec("slack", name="slack-hook"),
        SinkSpec(
            "slack", name="slack-bot", options={"channel": CHANNEL, "base_url": f"{chat.url}/api/"}
        ),
        SinkSpec("teams"),
        SinkSpec("webhook"),
    ]
    results = send(specs, context(environment(chat), fake_time))
    assert not any(r.ok for r in results.values())
    texts = [r.error or "" for r in results.values()] + [caplog.text]
    for secret in (SLACK_SECRET_PATH, TEAMS_SECRET_PATH, HOOK_SECRET_PATH, BOT_TOKEN, HMAC_KEY):
        assert all(secret not in text for text in texts), secret
    assert results["slack-bot"].error.startswith("slack chat.postMessage answered HTTP 500")
    assert "sink slack-hook failed after 0 of 6 messages" in caplog.text


def test_a_secret_path_is_redacted_wherever_an_error_quotes_it():
    redactor = Redactor()
    url = redactor.add(f"https://hooks.slack.com/services/{SLACK_SECRET_PATH}")
    assert redactor.redact(f"POST {url} failed") == "POST *** failed"
    assert redactor.redact(f"404 for /services/{SLACK_SECRET_PATH}") == "404 for ***"
    assert redactor.redact("no secret here") == "no secret here"


def test_dry_run_shows_what_would_be_sent_without_secrets_or_requests(
    chat: ChatServer, fake_time: FakeTime
):
    specs = [SinkSpec("slack"), SinkSpec("teams"), SinkSpec("webhook")]
    results = send(specs, context({}, fake_time), dry_run=True)
    assert chat.requests() == []
    for result in results.values():
        assert result.ok and result.dry_run and result.sent == 0
        assert len(result.outgoing) == result.planned == 6
    assert block_problems(results["slack"].outgoing[0].payload["blocks"]) == []


def test_configuration_errors_name_the_sink_and_field():
    ctx = context({}, FakeTime())
    with pytest.raises(ConfigurationError, match=r"sink pager: unknown kind 'pagerduty' \(known: "):
        build_sinks([SinkSpec("pagerduty", name="pager")], ctx)
    with pytest.raises(
        ConfigurationError, match="sink slack: chanel: Extra inputs are not permitted"
    ):
        build_sinks([SinkSpec("slack", options={"chanel": "C1"})], ctx)
    with pytest.raises(ConfigurationError, match="sink smtp: host: Field required"):
        build_sinks([SinkSpec("smtp", options={"sender": "a@b.c", "recipients": ["d@e.f"]})], ctx)
    with pytest.raises(ConfigurationError, match="sink names must be unique: slack"):
        build_sinks([SinkSpec("slack"), SinkSpec("slack")], ctx)
