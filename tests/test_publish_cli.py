"""`scan --publish` and `mutguard publish` end to end, against a local webhook receiver."""

import json
import os
import subprocess
import sys

import pytest

from servers.chat import ChatServer

MUTGUARD = [sys.executable, "-m", "mutguard.cli"]
HOOK_PATH = "hook/T0-very-secret-path"


@pytest.fixture
def receiver():
    with ChatServer() as server:
        yield server


def run(*args, env):
    return subprocess.run([*MUTGUARD, *args], env=env, capture_output=True, text=True)


@pytest.fixture
def env(receiver, tmp_path):
    return {
        **os.environ,
        "MUTGUARD_WEBHOOK_URL": f"{receiver.url}/{HOOK_PATH}",
        "MUTGUARD_WEBHOOK_SECRET": "hmac-key-for-tests",
        "MUTGUARD_STATE_FILE": str(tmp_path / "state.sqlite3"),
    }


def test_first_run_alerts_and_an_unchanged_rerun_stays_quiet(receiver, env):
    first = run("demo", "--format", "json", "--publish", "webhook", env=env)
    assert first.returncode == 0, first.stderr
    clusters = {c["name"] for c in json.loads(first.stdout)["clusters"]}
    sent = receiver.delivered("/hook/")
    assert {json.loads(r.body)["clusters"][0]["name"] for r in sent} <= clusters
    assert sent and "publish webhook: sent" in first.stderr
    second = run("demo", "--format", "json", "--publish", "webhook", env=env)
    assert second.returncode == 0 and len(receiver.delivered("/hook/")) == len(sent)


def test_publish_a_saved_report_dry_run_sends_nothing(receiver, env, tmp_path):
    report = tmp_path / "report.json"
    report.write_text(run("demo", "--format", "json", env=env).stdout)
    done = run("publish", str(report), "--to", "webhook", "--dry-run", "--digest", env=env)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and all(line["sink"] == "webhook" for line in lines)
    assert receiver.requests("/") == []


def test_a_sink_that_cannot_deliver_exits_4_and_never_shows_its_secret(receiver, env):
    env = {**env, "MUTGUARD_WEBHOOK_URL": "http://127.0.0.1:9/" + HOOK_PATH}  # nobody listens
    done = run("demo", "--format", "json", "--publish", "webhook", env=env)
    assert done.returncode == 4
    assert "FAILED" in done.stderr and "very-secret" not in done.stderr + done.stdout


def test_bad_publish_input_is_a_usage_error(env, tmp_path):
    (tmp_path / "bad.json").write_text("{}")
    assert run("publish", str(tmp_path / "bad.json"), "--to", "webhook", env=env).returncode == 2
    config = tmp_path / "sinks.yaml"
    config.write_text("sinks:\n  - kind: pager\n")
    done = run("demo", "--publish", "pager", "--publish-config", str(config), env=env)
    assert done.returncode == 2 and "pager" in done.stderr


def test_suppressions_pushed_to_the_store_quiet_later_runs(receiver, env, tmp_path):
    report = json.loads(run("demo", "--format", "json", env=env).stdout)
    prod = next(c for c in report["clusters"] if c["name"] == "shop-prod")
    silenced = sorted({f["check_id"] for f in prod["findings"] if f["status"] == "FAIL"})
    rules = tmp_path / "suppressions.yaml"
    rules.write_text(
        "suppressions:\n"
        + "".join(
            f"  - check_id: {check_id}\n    cluster: shop-prod\n    owner: platform@example.com\n"
            f"    reason: accepted until the VPN cut-over\n    expires: 2999-12-31\n"
            for check_id in silenced
        )
    )
    assert run("suppressions", "show", env=env).stdout.startswith("# no suppressions kept")
    pushed = run("suppressions", "push", str(rules), env=env)
    assert pushed.returncode == 0 and f"kept {len(silenced)} suppression(s)" in pushed.stderr
    assert run("suppressions", "show", env=env).stdout == rules.read_text()

    done = run("demo", "--format", "json", "--publish", "webhook", env=env)
    assert done.returncode == 0, done.stderr
    told = {json.loads(r.body)["clusters"][0]["name"] for r in receiver.delivered("/hook/")}
    assert "shop-prod" not in told and told  # every failure there is suppressed, the rest alert


def test_a_bad_suppressions_file_is_refused_and_the_store_keeps_the_last_good_one(env, tmp_path):
    rules = tmp_path / "suppressions.yaml"
    rules.write_text("suppressions:\n  - check_id: eks.endpoint.public_unrestricted\n")
    refused = run("suppressions", "push", str(rules), env=env)
    assert refused.returncode == 2 and "suppression #1" in refused.stderr
    assert run("suppressions", "show", env=env).stdout.startswith("# no suppressions kept")
    assert run("suppressions", "push", env=env).returncode == 2  # no file named
