"""No secret in any output: the real flows against the local servers, every artifact searched.

Publishing: the chat server answers with bodies that echo the webhook URL, its path and token,
URL-encoded and JSON-escaped, as Slack and many proxies do; a sink option holds a URL where a
variable's name belongs. Snapshots: pods whose env holds literal credentials. Whatever mutguard
prints (stdout, stderr at -v, every report format), writes (report files, snapshot files, the
state file) or logs must hold none of the secrets, in any of their forms.
"""

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from test_secret_env import CASES

from mutguard.cli import EXIT_OK, main
from mutguard.providers import kubernetes_live, snapshot
from mutguard.providers.kubernetes_live import KubeconfigOptions
from mutguard.render import FORMATS
from mutguard.scan import build_report
from mutguard.sources import ClusterSource, Provider
from mutguard.workloads import Workloads

from builders import kube_list, namespace, pod
from servers.chat import ChatServer
from servers.kube import KubeApiServer

MUTGUARD = [sys.executable, "-m", "mutguard.cli"]
SLACK_TOKEN = "slackLeakToken7Hq2Vx9Lm4Np"
SLACK_PATH = f"/services/T0LEAK0001/B0LEAK0002/{SLACK_TOKEN}"
TEAMS_TOKEN = "teamsLeakToken3Kd8Wr5Zs1"
TEAMS_PATH = f"/teams/{TEAMS_TOKEN}"
HOOK_TOKEN = "hookLeakToken6Pf1Gy4Xc9"
HOOK_PATH = f"/hook/{HOOK_TOKEN}"
HMAC_KEY = "hmacLeakKey2Tb7Qn5Rw8"
PASTED_TOKEN = "pastedLeakToken4Jm6Vd2"
PASTED_URL = f"https://hooks.slack.com/services/T0PASTE01/B0PASTE02/{PASTED_TOKEN}"
KUBE_TOKEN = "mutguard-scanner-leak-9Xw3"
DB_PASSWORD = "hunter2-correct-horse-battery"
AWS_KEY_ID = "AKIA" + "LEAK0TEST0EXAMPL"  # made up, split so no scanner flags it
DB_URL_PASSWORD = "pgLeakPass5Kz"
DATABASE_URL = f"postgres://app:{DB_URL_PASSWORD}@db.shop:5432/orders"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def lower_hex(encoded: str) -> str:
    """Percent-encoding with lowercase hex digits (%2f), as some servers write it."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)


def forms(secret: str) -> set[str]:
    """A secret as an answer or a file may quote it."""
    return {
        secret,
        quote(secret, safe=""),
        lower_hex(quote(secret, safe="")),
        json.dumps(secret)[1:-1].replace("/", "\\/"),
    }


def leaks(texts: dict[str, str], secrets: list[str]) -> list[tuple[str, str]]:
    """(artifact, secret form) for every secret form found in an artifact."""
    return [
        (where, form)
        for where, text in texts.items()
        for secret in secrets
        for form in forms(secret)
        if form in text
    ]


def echoing(url: str) -> str:
    """An error body quoting the URL it was sent to in every form proxies use."""
    path = url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    token = path.rsplit("/", 1)[1]
    escaped = json.dumps({"url": url, "path": "/" + path}).replace("/", "\\/")
    return (
        f"invalid_token {token}; no service at {url} (path /{path}); "
        f"requested={quote(url, safe='')} lower={lower_hex(quote(url, safe=''))} json={escaped}"
    )


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MUTGUARD, *args], env=env, capture_output=True, text=True)


@pytest.fixture
def chat():
    with ChatServer() as server:
        yield server


def publishing_env(chat: ChatServer, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MUTGUARD_SLACK_WEBHOOK_URL": chat.url + SLACK_PATH,
        "MUTGUARD_TEAMS_WEBHOOK_URL": chat.url + TEAMS_PATH,
        "MUTGUARD_WEBHOOK_URL": chat.url + HOOK_PATH,
        "MUTGUARD_WEBHOOK_SECRET": HMAC_KEY,
        "MUTGUARD_STATE_FILE": str(tmp_path / "state.sqlite3"),
    }


def test_sink_errors_echoing_the_url_or_token_reach_no_output(chat, tmp_path):
    env = publishing_env(chat, tmp_path)
    first = run("demo", "--format", "json", "--publish", "slack,teams,webhook", env=env)
    assert first.returncode == 0, first.stderr  # a state file to search as well
    chat.fail("/services/", 400, times=100, body=echoing(env["MUTGUARD_SLACK_WEBHOOK_URL"]))
    chat.fail("/teams/", 404, times=100, body=echoing(env["MUTGUARD_TEAMS_WEBHOOK_URL"]))
    chat.fail("/hook/", 404, times=100, body=echoing(env["MUTGUARD_WEBHOOK_URL"]))
    artifacts: dict[str, str] = {}
    for fmt in FORMATS.names():
        report = tmp_path / f"report.{fmt}"
        args = ["-v", "--format", fmt, "-o", str(report), "--digest"]
        done = run("demo", *args, "--publish", "slack,teams,webhook", env=env)
        assert done.returncode == 4, done.stderr
        artifacts |= {
            f"{fmt} stdout": done.stdout,
            f"{fmt} stderr": done.stderr,
            f"{fmt} report": report.read_text(),
        }
    stderr = artifacts["json stderr"]
    for sink in ("slack", "teams", "webhook"):
        assert f"publish {sink}: FAILED 0 message(s)" in stderr
    assert "invalid_token ***" in stderr and "requested=***" in stderr  # the answer is kept
    artifacts["state"] = (tmp_path / "state.sqlite3").read_bytes().decode("latin-1")
    urls = [env[f"MUTGUARD_{n}_URL"] for n in ("SLACK_WEBHOOK", "TEAMS_WEBHOOK", "WEBHOOK")]
    paths = [SLACK_PATH, SLACK_PATH.strip("/"), f"B0LEAK0002/{SLACK_TOKEN}", TEAMS_PATH, HOOK_PATH]
    secrets = [*urls, *paths, SLACK_TOKEN, TEAMS_TOKEN, HOOK_TOKEN, HMAC_KEY]
    assert leaks(artifacts, secrets) == []


def test_a_url_where_a_secret_reference_belongs_is_refused_without_echoing_it(chat, tmp_path):
    config = tmp_path / "sinks.yaml"
    config.write_text(
        yaml.safe_dump({"sinks": [{"kind": "slack", "options": {"webhook_url_env": PASTED_URL}}]})
    )
    env = publishing_env(chat, tmp_path)
    args = ["--digest", "--publish", "slack", "--publish-config", str(config)]
    done = run("demo", "-v", "--format", "json", *args, env=env)
    assert done.returncode == 4, done.stderr
    assert (
        "(https://hooks.slack.com/...) looks like a URL, not an environment variable name or "
        "secret reference" in done.stderr
    )
    assert chat.requests() == []
    pasted = ["/services/T0PASTE01/B0PASTE02/" + PASTED_TOKEN, PASTED_TOKEN, PASTED_URL]
    assert leaks({"stdout": done.stdout, "stderr": done.stderr}, pasted) == []


# --- Snapshots ------------------------------------------------------------------------------

ENV = [
    {"name": "DB_PASSWORD", "value": DB_PASSWORD},
    {"name": "UPSTREAM_ID", "value": AWS_KEY_ID},  # a credential by its shape only
    {"name": "DATABASE_URL", "value": DATABASE_URL},  # a password in a URL
    {"name": "LOG_LEVEL", "value": "debug"},
    {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
]


def leaky_pod() -> dict:
    item = pod(
        "web-1",
        containers=[
            {
                "name": "app",
                "image": "registry.example.com/app:1.4.2",
                "env": ENV,
                "envFrom": [{"secretRef": {"name": "shop-env"}}],
            }
        ],
    )
    manifest = {"kind": "Pod", "spec": {"containers": [{"name": "app", "env": ENV}]}}
    item["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(manifest)}
    return item


@pytest.fixture
def cluster(kube_api: KubeApiServer, tmp_path: Path) -> Path:
    """A cluster with one pod whose env holds literal credentials; returns its kubeconfig."""
    kube_api.add_token(KUBE_TOKEN, "mutguard", ["mutguard-readers"])
    kube_api.add_list(kube_list(namespace("shop"), leaky_pod()))
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": {"server": kube_api.url}}],
        "users": [{"name": "scanner", "user": {"token": KUBE_TOKEN}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "scanner"}}],
        "current-context": "lab",
    }
    ca = tmp_path / "ca.pem"
    ca.write_bytes(kube_api.ca_pem)
    config["clusters"][0]["cluster"]["certificate-authority"] = str(ca)
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_snapshot_keeps_no_env_value_and_scans_like_the_live_cluster(
    cluster: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "snap"
    assert main(["snapshot", "-v", "--kubeconfig", str(cluster), "-o", str(out)]) == EXIT_OK
    printed = capsys.readouterr()
    artifacts = {"snapshot stdout": printed.out, "snapshot stderr": printed.err}
    artifacts |= {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
    for fmt in FORMATS.names():
        main(["scan", "-v", "--snapshot", str(out), "--format", fmt])
        printed = capsys.readouterr()
        artifacts |= {f"scan {fmt} stdout": printed.out, f"scan {fmt} stderr": printed.err}
    secrets = [DB_PASSWORD, AWS_KEY_ID, DB_URL_PASSWORD, DATABASE_URL, KUBE_TOKEN]
    assert leaks(artifacts, secrets) == []

    (directory,) = out.iterdir()
    written = json.loads((directory / "workloads.json").read_text())
    (item,) = [i for i in written["items"] if i["kind"] == "Pod"]
    assert item["spec"]["containers"][0]["env"] == [
        {"name": "DB_PASSWORD", "value": "<redacted by mutguard: a credential by its name>"},
        {
            "name": "UPSTREAM_ID",
            "value": "<redacted by mutguard: value shaped like an AWS access key id>",
        },
        {
            "name": "DATABASE_URL",
            "value": "<redacted by mutguard: value shaped like a password in a URL>",
        },
        {"name": "LOG_LEVEL", "value": "<redacted by mutguard: not a credential>"},
        ENV[4],
    ]
    assert item["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "shop-env"}}]
    assert item["metadata"]["annotations"] == {LAST_APPLIED: "<redacted by mutguard>"}
    note = json.loads((directory / "redactions.json").read_text())
    assert note["redacted"] == {
        "workloads.json": {"env[].value": 4, f"metadata.annotations[{LAST_APPLIED}]": 1}
    }

    observed = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    live = build_report(kubernetes_live.collect(KubeconfigOptions(cluster)), observed)
    offline = build_report(snapshot.read(out), observed)
    assert [c.model_dump() for c in live.clusters] == [c.model_dump() for c in offline.clusters]
    (finding,) = [f for f in offline.clusters[0].findings if f.check_id == "workloads.secret_env"]
    assert all(name in finding.detail for name in ("DB_PASSWORD", "UPSTREAM_ID", "DATABASE_URL"))


@pytest.mark.parametrize(("name", "value", "flagged"), CASES)
def test_a_written_env_value_is_judged_as_the_value_was(name, value, flagged, tmp_path):
    container = {"name": "app", "image": "app:1", "env": [{"name": name, "value": value}]}
    document = kube_list(pod("p", containers=[container]))
    live = ClusterSource(Provider.KUBERNETES, "lab", documents={"workloads.json": document})
    written = json.loads((snapshot.write(live, tmp_path) / "workloads.json").read_text())
    (variable,) = written["items"][0]["spec"]["containers"][0]["env"]
    assert variable["value"].startswith("<redacted by mutguard: ")

    def verdicts(kubectl: dict) -> list:
        return [c.secret_env for w in Workloads.from_kubectl(kubectl).items for c in w.containers]

    assert verdicts(written) == verdicts(document) and bool(verdicts(written)[0]) is flagged
