"""Whole runs: scan the demo snapshots, remember them in SQLite, alert only on what changed.

The demo clusters are copied per test and edited the way a cluster changes (a ClusterRoleBinding
added, then removed) and scanned again; Slack, the generic webhook and e-mail receive the
alerts on real local servers.
"""

import datetime
import json
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from mutguard.models import Report
from mutguard.providers import snapshot
from mutguard.publish import (
    EnvSecrets,
    Redactor,
    RetryPolicy,
    RunOutcome,
    SinkContext,
    SinkSpec,
    build_sinks,
    notify,
)
from mutguard.publish.stores.sqlite import SqliteStateStore
from mutguard.scan import build_report
from mutguard.sources import ScanError
from mutguard.suppressions import load_suppressions

from builders import cluster_role_binding
from servers.chat import ChatServer
from servers.smtp import PASSWORD, USERNAME, SmtpServer
from servers.tls import TestCa

TODAY = datetime.date(2026, 3, 1)
HOOK_PATH = "/hook/notifyHookSecret0123456789"
SLACK_PATH = "/services/T0/B0/notifySlackSecret0123456789"


class Demo:
    """A private copy of the bundled demo snapshots that a test can change and scan again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(Path(str(resources.files("mutguard") / "demo")), root)

    def scan(self) -> Report:
        generated_at = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
        return build_report(snapshot.read(self.root), generated_at)

    def edit_rbac(self, cluster: str, change) -> None:
        path = self.root / cluster / "rbac.json"
        document = json.loads(path.read_text())
        change(document["items"])
        path.write_text(json.dumps(document))


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    return Demo(tmp_path / "demo")


@pytest.fixture
def smtp(test_ca: TestCa) -> Iterator[SmtpServer]:
    with SmtpServer(test_ca) as server:
        yield server


@pytest.fixture
def run(chat: ChatServer, smtp: SmtpServer, test_ca: TestCa, tmp_path: Path):
    """notify() with a SQLite store, Slack, the generic webhook and e-mail; no real waiting."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(test_ca.ca_pem)
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    env = {
        "MUTGUARD_SLACK_WEBHOOK_URL": chat.url + SLACK_PATH,
        "MUTGUARD_WEBHOOK_URL": chat.url + HOOK_PATH,
        "MUTGUARD_WEBHOOK_SECRET": "notify-hmac-key-0123456789",
        "MUTGUARD_SMTP_PASSWORD": PASSWORD,
    }
    email = {
        "host": "127.0.0.1",
        "port": smtp.port,
        "sender": "mutguard@example.com",
        "recipients": ["platform-team@example.com"],
        "username": USERNAME,
        "ca_file": str(ca_file),
    }
    specs = [SinkSpec("slack"), SinkSpec("webhook"), SinkSpec("smtp", options=email)]

    def notify_once(report: Report, **kwargs) -> RunOutcome:
        policy = RetryPolicy(sleep=lambda seconds: None, jitter=lambda d: d)
        ctx = SinkContext(EnvSecrets(env), Redactor(), policy)
        return notify(report, store, build_sinks(specs, ctx), ctx, **kwargs)

    return notify_once


def slack_headers(chat: ChatServer, since: int = 0) -> list[str]:
    messages = [r.json() for r in chat.delivered(SLACK_PATH)][since:]
    return [m["blocks"][0]["text"]["text"] for m in messages]


def slack_text(chat: ChatServer, index: int) -> str:
    message = chat.delivered(SLACK_PATH)[index].json()
    return "\n".join(b["text"]["text"] for b in message["blocks"] if "text" in b)


def add_admin_binding(items: list) -> None:
    items.append(
        cluster_role_binding("ci-admin", "cluster-admin", ("Group", "system:authenticated"))
    )


def remove_admin_binding(items: list) -> None:
    items[:] = [i for i in items if i["metadata"]["name"] != "ci-admin"]


def test_first_run_alerts_everything_then_an_unchanged_rerun_sends_nothing(
    demo: Demo, run, chat: ChatServer, smtp: SmtpServer
):
    report = demo.scan()
    first = run(report)
    assert first.ok and first.state_saved
    assert [r.sent for r in first.results] == [6, 6, 1]  # every demo cluster has failures
    assert len(slack_headers(chat)) == 6 and len(smtp.messages) == 1

    requests_before = len(chat.requests())
    again = run(demo.scan())
    assert again.ok and again.state_saved
    assert [(r.planned, r.sent) for r in again.results] == [(0, 0)] * 3
    assert len(chat.requests()) == requests_before and len(smtp.messages) == 1


def test_one_cluster_worsens_then_its_new_finding_is_resolved(
    demo: Demo, run, chat: ChatServer, smtp: SmtpServer
):
    run(demo.scan())
    demo.edit_rbac("shop-prod", add_admin_binding)
    worse = run(demo.scan())
    assert [r.sent for r in worse.results] == [1, 1, 1]
    assert slack_headers(chat, since=6) == ["shop-prod (eks, us-east-1): lowest MUT 1"]
    text = slack_text(chat, 6)
    assert "MUT since the last run: 2 → 1 from the internet; 2 → 1 from a compromised pod" in text
    assert "*New failures (1)*\n• [critical] rbac.authenticated_admin:" in text
    hook = chat.delivered(HOOK_PATH)[-1]
    change = hook.json()["change"]
    assert change["mut_dropped"] == ["mut", "mut_workload"] and change["new"] == 1
    assert smtp.messages[-1]["Subject"] == (
        "mutguard: 1 cluster, worst MUT 1 (shop-prod), 1 new critical"
    )

    demo.edit_rbac("shop-prod", remove_admin_binding)
    better = run(demo.scan())
    assert [r.sent for r in better.results] == [1, 1, 1]
    text = slack_text(chat, 7)
    assert "MUT since the last run: 1 → 2 from the internet" in text
    assert "*Resolved (1)*\n• [critical] rbac.authenticated_admin on ClusterRoleBinding" in text
    assert "ClusterRoleBinding ci-admin (no longer found)" in text


def test_a_failed_sink_keeps_the_state_so_the_next_run_says_it_again(
    demo: Demo, run, chat: ChatServer
):
    chat.fail("/hook/", 500, times=4)  # every try of the first message: the sink gives up
    first = run(demo.scan())
    assert [r.ok for r in first.results] == [True, False, True]
    assert not first.ok and not first.state_saved

    second = run(demo.scan())  # the webhook is back: nothing was forgotten
    assert second.state_saved and [r.sent for r in second.results] == [6, 6, 1]
    assert len(chat.delivered(HOOK_PATH)) == 6


def test_digest_mode_sends_one_summary_of_every_cluster(
    demo: Demo, run, chat: ChatServer, smtp: SmtpServer
):
    run(demo.scan())
    digest = run(demo.scan(), digest=True)  # nothing changed, and the digest still goes out
    slack, hook, email = digest.results
    assert slack.sent == 1 and email.sent == 1 and hook.sent == 6
    (message,) = [r.json() for r in chat.delivered(SLACK_PATH)][6:]
    headers = [b["text"]["text"] for b in message["blocks"] if b["type"] == "header"]
    assert (
        headers[0] == "mutguard digest: 6 clusters, worst MUT 0 (payments-legacy), no new criticals"
    )
    assert "platform-core (eks, eu-central-1): lowest MUT 2" in headers
    assert smtp.messages[-1]["Subject"].startswith("mutguard digest: 6 clusters")


def test_suppressions_silence_a_finding_until_they_expire(
    demo: Demo, run, chat: ChatServer, tmp_path: Path
):
    rules = tmp_path / "suppressions.yaml"
    rules.write_text(
        "suppressions:\n"
        "  - check_id: eks.endpoint.public_unrestricted\n"
        "    cluster: shop-prod\n"
        "    owner: platform-team@example.com\n"
        "    reason: public endpoint until the VPN cut-over (CHG-1234)\n"
        "    expires: 2026-03-31\n"
    )
    suppressions = load_suppressions(rules)
    run(demo.scan(), suppressions=suppressions)
    shop_prod = next(t for t in slack_headers(chat) if t.startswith("shop-prod"))
    new = slack_text(chat, slack_headers(chat).index(shop_prod)).split("*New failures (7)*")[1]
    assert "eks.endpoint.public_unrestricted" not in new  # still listed among the top fixes

    assert [r.sent for r in run(demo.scan(), suppressions=suppressions).results] == [0, 0, 0]
    expired = [
        s.model_copy(update={"expires": TODAY - datetime.timedelta(days=1)}) for s in suppressions
    ]
    after = run(demo.scan(), suppressions=expired)
    assert [r.sent for r in after.results] == [1, 1, 1]
    assert "*New failures (1)*\n• [critical] eks.endpoint.public_unrestricted" in slack_text(
        chat, 6
    )


def test_a_dry_run_sends_nothing_and_remembers_nothing(demo: Demo, run, chat: ChatServer):
    dry = run(demo.scan(), dry_run=True)
    assert not dry.state_saved and chat.requests() == []
    assert [len(r.outgoing) for r in dry.results] == [6, 6, 1]
    real = run(demo.scan())
    assert [r.sent for r in real.results] == [6, 6, 1]


def test_what_could_not_be_scanned_leads_the_digest_and_the_alert_email(
    demo: Demo, run, chat: ChatServer, smtp: SmtpServer
):
    denied = ScanError(
        scope="eks:210987654321",
        message="sts:AssumeRole arn:aws:iam::210987654321:role/mutguard-reader: AccessDenied",
    )
    report = demo.scan()
    report = report.model_copy(update={"errors": [denied]})
    alert = run(report)  # first run: every cluster is news, and the e-mail names the failure
    email = smtp.messages[-1]
    assert email["Subject"].endswith(", 1 not scanned")
    text = email.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Not scanned (1):\n  - eks:210987654321: sts:AssumeRole" in text
    assert "<h2>Not scanned (1)</h2>" in email.get_body(("html",)).get_content()
    assert all(r.ok for r in alert.results)

    # Only the failure is left to say: alerts stay quiet, the digest still goes out with it.
    only_errors = report.model_copy(update={"clusters": []})
    quiet = run(only_errors)
    assert [r.sent for r in quiet.results] == [0, 0, 0]
    digest = run(only_errors, digest=True)
    slack, _, mail = digest.results
    assert slack.sent == 1 and mail.sent == 1
    text = slack_text(chat, -1)
    assert "mutguard digest: 0 clusters, no new criticals, 1 not scanned" in text
    assert "*Not scanned (1)*\n• eks:210987654321: sts:AssumeRole" in text
