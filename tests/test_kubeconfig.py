"""Any cluster through a kubeconfig, end to end: the real `kubernetes` client against the local
HTTPS Kubernetes API server (tests/servers/kube.py), configured from a kubeconfig written to
tmp_path in kubectl's format (clientcmd v1 Config), with a token, a tokenFile or an exec
credential plugin (client.authentication.k8s.io ExecCredential) as the scanner's credential."""

import base64
import json
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mutguard.cli import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    build_parser,
    main,
)
from mutguard.errors import InputError
from mutguard.providers import PROVIDERS, kubernetes_live, snapshot
from mutguard.providers.in_cluster import KubeReadError
from mutguard.providers.kubeconfig_token import ExecPlugin, ExecTokens, FileToken
from mutguard.providers.kubernetes_live import KubeconfigOptions
from mutguard.scan import build_report

from builders import OBSERVED_AT, cluster_role, cluster_role_binding, kube_list, namespace, pod
from servers.kube import KubeApiServer
from servers.tls import TestCa

TOKEN = "mutguard-scanner-7Jq2xLw9RkT4vB8n"  # test data: what the fake API server accepts
CONTEXT = "lab-admin@lab"
READERS = "mutguard-readers"
EXEC_V1 = "client.authentication.k8s.io/v1"
ADMIN_RULE = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
# A credential plugin as a tiny script: it counts its runs, records what it was given, and
# prints an ExecCredential whose token is exec-token-<run>.
PLUGIN = """#!{python}
import json, os, sys
counter = os.environ["PLUGIN_COUNTER"]
runs = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
open(counter, "w").write(str(runs))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
with open(counter + ".log", "a") as log:
    log.write(json.dumps({{"info": info, "argv": sys.argv[1:], "stdin": sys.stdin.read()}}) + "\\n")
expired = runs == 1 and os.environ.get("FIRST_EXPIRED")
status = {{
    "token": f"exec-token-{{runs}}",
    "expirationTimestamp": "2000-01-01T00:00:00Z" if expired else "2999-01-01T00:00:00Z",
}}
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}}))
"""


def write_kubeconfig(
    path: Path,
    server: str,
    ca_pem: bytes | None,
    users: dict[str, dict],
    *,
    contexts: dict[str, str] | None = None,
    cluster: dict | None = None,
    current: str | None = CONTEXT,
) -> Path:
    """A kubeconfig as `kubectl config view --raw` prints it; contexts map names to users."""
    body: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        body["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    body.update(cluster or {})
    contexts = contexts or {CONTEXT: next(iter(users))}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": "lab", "cluster": body}],
        "users": [{"name": name, "user": user} for name, user in users.items()],
        "contexts": [
            {"name": name, "context": {"cluster": "lab", "user": user, "namespace": "default"}}
            for name, user in contexts.items()
        ],
    }
    if current is not None:
        config["current-context"] = current
    path.write_text(yaml.safe_dump(config))
    return path


def token_kubeconfig(tmp_path: Path, api: KubeApiServer, **options: Any) -> Path:
    ca_pem = options.pop("ca_pem", api.ca_pem)
    users = {"scanner": {"token": TOKEN}}
    return write_kubeconfig(tmp_path / "config", api.url, ca_pem, users, **options)


def write_plugin(directory: Path) -> Path:
    script = directory / "bin" / "exec-plugin"
    script.parent.mkdir(exist_ok=True)
    script.write_text(PLUGIN.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def api(kube_api: KubeApiServer) -> KubeApiServer:
    """A cluster with one pod and an admin binding; TOKEN is the scanner's, read-only."""
    kube_api.add_token(TOKEN, "mutguard", [READERS])
    kube_api.add_list(
        kube_list(
            namespace("shop"),
            pod("web-1"),
            cluster_role("cluster-admin", ADMIN_RULE),
            cluster_role_binding("ops-admins", "cluster-admin", ("Group", "ops")),
        )
    )
    return kube_api


def scan(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(["scan", *args, "--format", "json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else None), out + err


def result(cluster: dict, check_id: str) -> dict:
    return next(f for f in cluster["findings"] if f["check_id"] == check_id)


def test_token_scan_reads_rbac_and_workloads_with_the_network_assumed(api, tmp_path, capsys):
    api.add(cluster_role_binding("anon", "cluster-admin", ("Group", "system:unauthenticated")))
    path = token_kubeconfig(tmp_path, api)
    code, report, printed = scan(capsys, "--kubeconfig", str(path))
    (cluster,) = report["clusters"]
    assert code == EXIT_OK and cluster["errors"] == []
    assert (cluster["provider"], cluster["name"], cluster["location"]) == (
        "kubernetes",
        CONTEXT,
        api.url.removeprefix("https://"),
    )
    assert result(cluster, "rbac.anonymous_admin")["status"] == "FAIL"
    assert result(cluster, "kubernetes.auth.anonymous")["status"] == "FAIL"  # GET /version
    assert result(cluster, "kubernetes.endpoint.exposure")["status"] == "UNKNOWN"
    # Anonymous admin: only the network, which cannot be read, stands in the way.
    assert cluster["mut"] == 1 and "mut" in cluster["mut_upper_bound"]
    assert [b["workload"] for b in cluster["blast_radius"]] == ["shop/web-1"]
    # Read-only, as the kubeconfig's user, and the token is nowhere in what was printed.
    assert api.requests_seen("*", ".*") == api.requests_seen("GET", ".*") > 15
    assert "mutguard" in api.identities_seen()
    assert TOKEN not in printed


def test_snapshot_then_offline_scan_equals_the_live_scan(api, tmp_path, capsys):
    path = token_kubeconfig(tmp_path, api)
    assert main(["snapshot", "--kubeconfig", str(path), "-o", str(tmp_path / "snap")]) == EXIT_OK
    observed = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    live = build_report(kubernetes_live.collect(KubeconfigOptions(path)), observed)
    offline = build_report(snapshot.read(tmp_path / "snap"), observed)
    assert [c.model_dump() for c in live.clusters] == [c.model_dump() for c in offline.clusters]
    written = {p.name: p.read_text() for p in (tmp_path / "snap").rglob("*.json")}
    assert set(written) == {
        "cluster.json",
        "probe.json",
        "rbac.json",
        "workloads.json",
        "namespaces.json",
        "admission.json",
    }
    assert json.loads(written["cluster.json"]) == {
        "kubernetes": {"server": api.url, "context": CONTEXT, "version": api.version}
    }
    assert not [name for name, text in written.items() if TOKEN in text]
    assert TOKEN not in capsys.readouterr().out
    assert api.requests_seen("*", ".*") == api.requests_seen("GET", ".*")


def test_token_file_and_ca_file_are_relative_to_the_kubeconfig(api, tmp_path):
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(api.ca_pem)
    (tmp_path / "scanner.token").write_text(TOKEN + "\n")
    path = write_kubeconfig(
        tmp_path / "config",
        api.url,
        None,
        {"scanner": {"tokenFile": "scanner.token"}},
        cluster={"certificate-authority": "pki/ca.crt"},
    )
    (source,) = kubernetes_live.collect(KubeconfigOptions(path))
    assert source.errors == {}
    assert api.identities_seen()[-1] == "mutguard"


def test_a_token_file_is_read_again_after_a_401(tmp_path):
    file = tmp_path / "token"
    file.write_text("first\n")
    tokens = FileToken(file)
    assert tokens.token() == "first"
    file.write_text("rotated\n")
    assert tokens.token() == "first"  # kept in memory between requests
    tokens.renew()
    assert tokens.token() == "rotated"
    file.write_text("two\nlines\n")  # no HTTP header can carry it: never sent
    tokens.renew()
    with pytest.raises(KubeReadError, match="holds no single-line ASCII token") as error:
        tokens.token()
    assert "lines" not in str(error.value)


def test_exec_plugin_is_run_again_when_its_token_is_refused(api, tmp_path):
    for run in range(1, 20):
        api.add_token(f"exec-token-{run}", "mutguard", [READERS], expires_after=6)
    write_plugin(tmp_path)
    plugin = {
        "apiVersion": EXEC_V1,
        "command": "./bin/exec-plugin",  # relative to the kubeconfig's directory
        "args": ["token", "--cluster", "lab"],
        "env": [{"name": "PLUGIN_COUNTER", "value": str(tmp_path / "runs")}],
        "interactiveMode": "Never",
        "provideClusterInfo": True,
    }
    extension = {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "lab"}}
    path = write_kubeconfig(
        tmp_path / "config",
        api.url,
        api.ca_pem,
        {"sso": {"exec": plugin}},
        cluster={"extensions": [extension]},
    )
    (source,) = kubernetes_live.collect(KubeconfigOptions(path))
    assert source.errors == {}
    runs = int((tmp_path / "runs").read_text())
    assert runs >= 2  # each token served six requests, then a 401 ran the plugin again
    calls = [json.loads(line) for line in (tmp_path / "runs.log").read_text().splitlines()]
    assert len(calls) == runs
    first = calls[0]
    assert first["argv"] == ["token", "--cluster", "lab"] and first["stdin"] == ""
    assert first["info"]["apiVersion"] == EXEC_V1 and first["info"]["kind"] == "ExecCredential"
    assert first["info"]["spec"]["interactive"] is False
    cluster = first["info"]["spec"]["cluster"]
    assert cluster["server"] == api.url and cluster["config"] == {"audience": "lab"}
    assert base64.b64decode(cluster["certificate-authority-data"]) == api.ca_pem
    assert "exec-token-1" not in json.dumps(source.documents)


def test_an_expired_exec_credential_runs_the_plugin_again(tmp_path):
    script = write_plugin(tmp_path)
    env = {"PLUGIN_COUNTER": str(tmp_path / "runs"), "FIRST_EXPIRED": "1"}
    tokens = ExecTokens(ExecPlugin(command=str(script), env=env, api_version=EXEC_V1))
    # The first credential expired in 2000: the next request runs the plugin again; the
    # second is good until 2999 and is reused.
    assert [tokens.token() for _ in range(3)] == ["exec-token-1", "exec-token-2", "exec-token-2"]


@pytest.mark.parametrize(
    ("plugin", "reason"),
    [
        (
            {"command": "mutguard-no-such-plugin", "installHint": "brew install lab-login"},
            "exec plugin 'mutguard-no-such-plugin' was not found: brew install lab-login",
        ),
        (
            {"command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"]},
            "exited with status 3",
        ),
        (
            {"command": sys.executable, "args": ["-c", 'print(\'{"kind": "Status"}\')']},
            "printed JSON that is not an ExecCredential",
        ),
    ],
    ids=["missing", "failing", "not-a-credential"],
)
def test_a_plugin_that_gives_no_token_makes_the_reads_unknown(api, tmp_path, plugin, reason):
    user = {"exec": {"apiVersion": EXEC_V1, "interactiveMode": "Never", **plugin}}
    path = write_kubeconfig(tmp_path / "config", api.url, api.ca_pem, {"sso": user})
    (source,) = kubernetes_live.collect(KubeconfigOptions(path))
    assert reason in source.errors["rbac.json"]
    assert "probe.json" in source.documents  # the anonymous probe needs no credential
    (report,) = build_report([source], OBSERVED_AT).clusters
    rbac = next(f for f in report.findings if f.check_id == "rbac.anonymous_admin")
    assert rbac.status.value == "UNKNOWN" and reason in rbac.detail


def test_a_wrong_ca_fails_tls_verification_and_no_request_is_sent(api, tmp_path, capsys):
    path = token_kubeconfig(tmp_path, api, ca_pem=TestCa().ca_pem)
    code, report, _ = scan(capsys, "--kubeconfig", str(path))
    (cluster,) = report["clusters"]
    assert code == EXIT_PARTIAL and cluster["mut"] is not None
    detail = result(cluster, "rbac.anonymous_admin")["detail"]
    assert detail == "RBAC not read: TLS verification against the cluster CA failed"
    assert api.requests_seen("*", ".*") == 0


@pytest.mark.parametrize(
    ("cluster", "verified"),
    [
        ({"tls-server-name": "localhost"}, True),  # a name the serving certificate carries
        ({"tls-server-name": "api.other.example"}, False),
    ],
)
def test_tls_server_name_is_the_name_verified(api, tmp_path, cluster, verified):
    path = token_kubeconfig(tmp_path, api, cluster=cluster)
    (source,) = kubernetes_live.collect(KubeconfigOptions(path))
    assert (source.errors == {}) is verified


def test_without_a_ca_the_system_store_is_trusted_and_verification_stays_on(api, tmp_path):
    (source,) = kubernetes_live.collect(
        KubeconfigOptions(token_kubeconfig(tmp_path, api, ca_pem=None))
    )
    assert set(source.errors.values()) == {"TLS verification against the cluster CA failed"}


def test_each_context_given_is_one_cluster(api, tmp_path, capsys):
    users = {"scanner": {"token": TOKEN}, "stranger": {"token": "not-known-to-the-cluster"}}
    contexts = {"lab": "scanner", "lab-stranger": "stranger"}
    path = write_kubeconfig(tmp_path / "config", api.url, api.ca_pem, users, contexts=contexts)
    code, report, _ = scan(
        capsys, "--kubeconfig", str(path), "--context", "lab", "--context", "lab-stranger"
    )
    clusters = report["clusters"]
    assert code == EXIT_PARTIAL and [c["name"] for c in clusters] == ["lab", "lab-stranger"]
    assert clusters[0]["errors"] == []
    assert "401 Unauthorized" in result(clusters[1], "rbac.anonymous_admin")["detail"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--context", "staging"], "no context named 'staging' (contexts: lab-admin@lab)"),
        (["--skip-in-cluster"], "--skip-in-cluster leaves nothing to read"),
    ],
)
def test_usage_errors_exit_2_before_any_request(api, tmp_path, capsys, args, message):
    path = token_kubeconfig(tmp_path, api)
    code, report, printed = scan(capsys, "--kubeconfig", str(path), *args)
    assert (code, report) == (EXIT_USAGE, None) and message in printed
    assert api.requests_seen("*", ".*") == 0


def test_insecure_skip_tls_verify_is_refused(api, tmp_path, capsys):
    path = token_kubeconfig(tmp_path, api, cluster={"insecure-skip-tls-verify": True})
    code, _, printed = scan(capsys, "--kubeconfig", str(path))
    assert code == EXIT_USAGE
    assert "insecure-skip-tls-verify: mutguard always verifies" in printed
    assert api.requests_seen("*", ".*") == 0


CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()


@pytest.mark.parametrize(
    ("cluster", "user", "message"),
    [
        (
            {},
            {"client-certificate-data": "Y2VydA==", "client-key-data": "a2V5"},
            "context 'lab-admin@lab': user 'u' authenticates with a client certificate "
            "(client-certificate-data, client-key-data), which mutguard does not support yet",
        ),
        ({"server": "http://10.0.0.1:8080"}, {"token": "t"}, "is not an https:// URL"),
        ({"proxy-url": "socks5://127.0.0.1:1080"}, {"token": "t"}, "sets proxy-url"),
        ({"certificate-authority-data": "%%%"}, {"token": "t"}, "is not base64"),
        (
            {"certificate-authority-data": base64.b64encode(b"junk").decode()},
            {"token": "t"},
            "certificate-authority-data holds no PEM certificate",
        ),
        ({}, {"auth-provider": {"name": "oidc"}}, "auth-provider plugins are not supported"),
        ({}, {"token": "t", "as": "admin"}, "sets as: impersonation is not supported"),
        ({}, {"username": "admin", "password": "pw"}, "basic authentication is not supported"),
        ({}, {}, "has no token, tokenFile or exec plugin"),
        ({}, {"token": "half\nof-it"}, "token is not a single-line ASCII string"),
        (
            {},
            {"exec": {"apiVersion": EXEC_V1, "command": "login"}},
            "interactiveMode is required",
        ),
        (
            {},
            {"exec": {"apiVersion": EXEC_V1, "command": "login", "interactiveMode": "Always"}},
            "interactiveMode Always needs a terminal",
        ),
        (
            {},
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}},
            "apiVersion must be one of",
        ),
        (
            {},
            {"token": "t", "exec": {"apiVersion": EXEC_V1, "command": "x"}},
            "sets both exec and a token",
        ),
    ],
)
def test_what_mutguard_cannot_honour_is_refused_by_name(tmp_path, cluster, user, message):
    body = {"certificate-authority-data": CA, **cluster}
    path = write_kubeconfig(
        tmp_path / "config",
        body.pop("server", "https://10.0.0.1:6443"),
        None,
        {"u": user},
        cluster=body,
    )
    with pytest.raises(InputError) as error:
        kubernetes_live.load(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_no_current_context_and_yaml_errors_name_no_secret(tmp_path):
    path = write_kubeconfig(tmp_path / "a", "https://10.0.0.1", None, {"u": {}}, current=None)
    with pytest.raises(InputError, match=r"no current-context: pass --context NAME"):
        kubernetes_live.load(path)
    broken = tmp_path / "b"
    broken.write_text(f"users:\n- name: u\n  user:\n    token: {TOKEN}\n  bad: [\n")
    with pytest.raises(InputError) as error:
        kubernetes_live.load(broken)
    assert "not valid YAML (line" in str(error.value) and TOKEN not in str(error.value)


def test_explain_a_context(api, tmp_path, capsys):
    path = token_kubeconfig(tmp_path, api)
    assert main(["explain", CONTEXT, "--kubeconfig", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"{CONTEXT} (kubernetes, {api.url.removeprefix('https://')})")
    assert "From the internet: MUT 2\n  1. network: the API endpoint is not open" in out
    assert "network: the API server is assumed not open to the internet" in out  # the basis


def test_cli_options_become_kubeconfig_options(tmp_path):
    args = build_parser().parse_args(
        ["snapshot", "--kubeconfig", "kc", "--context", "a", "--context", "b", "-o", "out"]
    )
    kubernetes = PROVIDERS.get("kubernetes").command_line
    assert kubernetes.source.flag == "--kubeconfig"
    assert kubernetes.options(args) == KubeconfigOptions(Path("kc"), ("a", "b"), 16)
    with pytest.raises(SystemExit):  # chosen by --kubeconfig alone, not by --provider
        build_parser().parse_args(["scan", "--provider", "kubernetes"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["scan", "--kubeconfig", "kc", "--provider", "aws"])
