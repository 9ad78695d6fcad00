"""Live reads of any cluster through a kubeconfig (provider `kubernetes`): one per context.

The kubeconfig is read in memory as kubectl reads it: the context (default: current-context),
its cluster's `server`, `tls-server-name` and CA (`certificate-authority-data`, or the
`certificate-authority` file; without either, the system's CA store), and its user's bearer
token (`token`, `tokenFile`, or an `exec` plugin). Relative paths are relative to the
kubeconfig's directory. The API server's certificate is always verified, so
`insecure-skip-tls-verify` and plain-http servers are refused. What mutguard cannot honour yet
is refused by name rather than half-used: client certificates (Python's ssl loads a private key
only from a file, and mutguard writes no key to disk), auth-provider, basic auth, impersonation
and proxy-url. Any of these is an InputError naming the context, before anything is read.

No cloud API describes a self-managed cluster, so cluster.json is mutguard's own document
(mutguard.providers.kubernetes): the server, the context and the answer to GET /version.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mutguard.errors import InputError
from mutguard.plugins import needs
from mutguard.providers import in_cluster
from mutguard.providers.kubeconfig_token import (
    EXEC_API_VERSIONS,
    ExecPlugin,
    ExecTokens,
    FileToken,
    StaticToken,
    header_safe,
)
from mutguard.providers.kubernetes import cluster_document, server_location
from mutguard.sources import CLUSTER_DOC, ClusterSource, Provider

EXEC_CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"  # per-cluster plugin config
CLIENT_CERTIFICATE_FIELDS = (
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
)
UNSUPPORTED_USER_FIELDS = {
    "auth-provider": "auth-provider plugins are not supported (use an exec plugin)",
    "username": "basic authentication is not supported",
    "password": "basic authentication is not supported",
    "as": "impersonation is not supported",
    "as-uid": "impersonation is not supported",
    "as-groups": "impersonation is not supported",
    "as-user-extra": "impersonation is not supported",
}
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class KubeconfigOptions:
    path: Path
    contexts: tuple[str, ...] = ()  # default: the kubeconfig's current-context
    concurrency: int = 16


@dataclass(frozen=True)
class Context:
    name: str
    endpoint: in_cluster.KubeEndpoint


class _Kubeconfig:
    """One kubeconfig file's named clusters, users and contexts; errors name the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent
        document = _load_yaml(path)
        if not isinstance(document, dict):
            raise self.error("expected a YAML mapping with clusters, contexts and users")
        self.current = document.get("current-context") or ""
        self.clusters = self._named(document, "clusters", "cluster")
        self.users = self._named(document, "users", "user")
        self.contexts = self._named(document, "contexts", "context")

    def error(self, message: str) -> InputError:
        return InputError(f"kubeconfig {self.path}: {message}")

    def _named(self, document: dict, section: str, body: str) -> dict[str, dict]:
        entries = document.get(section) or []
        if not isinstance(entries, list):
            raise self.error(f"{section} must be a list")
        named: dict[str, dict] = {}
        for index, entry in enumerate(entries):
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("name"), str)
                and isinstance(entry.get(body) or {}, dict)
            ):
                raise self.error(f"{section}[{index}] must have a name and a {body} mapping")
            named.setdefault(entry["name"], entry.get(body) or {})  # the first one wins
        return named

    def context(self, name: str) -> Context:
        if name not in self.contexts:
            known = ", ".join(sorted(self.contexts)) or "none"
            raise self.error(f"no context named {name!r} (contexts: {known})")
        where = f"context {name!r}"
        cluster_name, user_name = (self.contexts[name].get(key) for key in ("cluster", "user"))
        if not isinstance(cluster_name, str) or cluster_name not in self.clusters:
            raise self.error(f"{where} names no cluster defined in clusters ({cluster_name!r})")
        if not isinstance(user_name, str) or user_name not in self.users:
            raise self.error(
                f"{where} names no user defined in users ({user_name!r}); mutguard needs a "
                "credential that may read RBAC and workloads"
            )
        cluster = self.clusters[cluster_name]
        cluster_where = f"{where}: cluster {cluster_name!r}"
        server, ca_pem, tls_server_name = self._cluster(cluster, cluster_where)
        plugin_cluster = _exec_cluster_info(cluster, server, ca_pem, tls_server_name)
        tokens = self._tokens(self.users[user_name], f"{where}: user {user_name!r}", plugin_cluster)
        return Context(name, in_cluster.KubeEndpoint(server, ca_pem, tokens, tls_server_name))

    def _cluster(self, cluster: dict, where: str) -> tuple[str, bytes | None, str | None]:
        if cluster.get("insecure-skip-tls-verify") not in (None, False):
            raise self.error(
                f"{where} sets insecure-skip-tls-verify: mutguard always verifies the API "
                "server's certificate; give the cluster CA as certificate-authority-data instead"
            )
        if cluster.get("proxy-url"):
            raise self.error(f"{where} sets proxy-url, which mutguard does not support yet")
        server = self._text(cluster, "server", where, required=True)
        parts = urlsplit(server)
        if parts.scheme != "https" or not parts.hostname:
            raise self.error(f"{where}: server {server!r} is not an https:// URL")
        return server, self._ca(cluster, where), self._text(cluster, "tls-server-name", where)

    def _ca(self, cluster: dict, where: str) -> bytes | None:
        data = self._text(cluster, "certificate-authority-data", where)
        if data:
            try:
                pem = base64.b64decode("".join(data.split()), validate=True)
            except (binascii.Error, ValueError):
                raise self.error(f"{where}: certificate-authority-data is not base64") from None
            field = "certificate-authority-data"
        else:
            file = self._text(cluster, "certificate-authority", where)
            if not file:
                return None  # kubectl then trusts the system's CA store, and so does mutguard
            path = self.base / file
            try:
                pem = path.read_bytes()
            except OSError as exc:
                raise self.error(f"{where}: certificate-authority {path}: {exc.strerror}") from None
            field = f"certificate-authority {path}"
        if PEM_CERTIFICATE.encode() not in pem or not pem.isascii():
            raise self.error(f"{where}: {field} holds no PEM certificate")
        return pem

    def _tokens(self, user: dict, where: str, plugin_cluster: dict) -> in_cluster.TokenSource:
        certificate = [name for name in CLIENT_CERTIFICATE_FIELDS if user.get(name)]
        if certificate:
            raise self.error(
                f"{where} authenticates with a client certificate ({', '.join(certificate)}), "
                "which mutguard does not support yet: Python's ssl module loads a private key "
                "only from a file, and mutguard writes no key to disk. Give the scanner a token "
                "or an exec plugin instead"
            )
        for name, why in UNSUPPORTED_USER_FIELDS.items():
            if user.get(name):
                raise self.error(f"{where} sets {name}: {why}")
        plugin, token = user.get("exec"), self._text(user, "token", where)
        token_file = self._text(user, "tokenFile", where)
        if plugin and (token or token_file):
            raise self.error(f"{where} sets both exec and a token: keep one")
        if plugin:
            return ExecTokens(self._plugin(plugin, f"{where}: exec", plugin_cluster))
        if token_file:  # it takes precedence over token, as in client-go
            return FileToken(self.base / token_file)
        if token:
            if not header_safe(token):
                raise self.error(f"{where}: token is not a single-line ASCII string")
            return StaticToken(token)
        raise self.error(
            f"{where} has no token, tokenFile or exec plugin; mutguard needs a credential that "
            "may read RBAC and workloads"
        )

    def _plugin(self, plugin: Any, where: str, plugin_cluster: dict) -> ExecPlugin:
        if not isinstance(plugin, dict):
            raise self.error(f"{where} must be a mapping")
        command = self._text(plugin, "command", where, required=True)
        if os.sep in command:  # a path, relative to the kubeconfig; a bare name is on PATH
            command = str(self.base / command)
        api_version = plugin.get("apiVersion")
        if api_version not in EXEC_API_VERSIONS:
            raise self.error(f"{where}: apiVersion must be one of {', '.join(EXEC_API_VERSIONS)}")
        mode = plugin.get("interactiveMode")
        if mode is None and api_version == EXEC_API_VERSIONS[0]:
            raise self.error(f"{where}: interactiveMode is required by {api_version}")
        if mode == "Always":
            raise self.error(
                f"{where}: interactiveMode Always needs a terminal, and mutguard runs plugins "
                "without one"
            )
        if mode not in (None, "Never", "IfAvailable"):
            raise self.error(f"{where}: unknown interactiveMode {mode!r}")
        args = plugin.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise self.error(f"{where}: args must be a list of strings")
        return ExecPlugin(
            command=command,
            args=tuple(args),
            env=self._env(plugin.get("env") or [], where),
            api_version=api_version,
            install_hint=self._text(plugin, "installHint", where) or "",
            cluster=plugin_cluster if plugin.get("provideClusterInfo") is True else None,
        )

    def _env(self, entries: Any, where: str) -> dict[str, str]:
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("name", "value"))
            for e in entries
        ):
            raise self.error(f"{where}: env must be a list of {{name, value}} strings")
        return {entry["name"]: entry["value"] for entry in entries}

    def _text(self, mapping: dict, key: str, where: str, required: bool = False) -> str | None:
        value = mapping.get(key)
        if value is None or value == "":
            if required:
                raise self.error(f"{where} has no {key}")
            return None
        if not isinstance(value, str):
            raise self.error(f"{where}: {key} must be a string")
        return value


def _load_yaml(path: Path) -> Any:
    with needs("reading a kubeconfig", "kube", "PyYAML"):
        import yaml
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"kubeconfig {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"kubeconfig {path}: not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Only the position: PyYAML's own message quotes the line, which may hold a token.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"kubeconfig {path}: not valid YAML{where}") from None


def _exec_cluster_info(
    cluster: dict, server: str, ca_pem: bytes | None, tls_server_name: str | None
) -> dict[str, Any]:
    """spec.cluster of KUBERNETES_EXEC_INFO, for plugins that set provideClusterInfo."""
    info: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        info["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    if tls_server_name:
        info["tls-server-name"] = tls_server_name
    for entry in cluster.get("extensions") or []:
        if isinstance(entry, dict) and entry.get("name") == EXEC_CLUSTER_EXTENSION:
            info["config"] = entry.get("extension")
    return info


def load(path: Path, names: Sequence[str] = ()) -> list[Context]:
    """The contexts to read (default: current-context); InputError names what is wrong."""
    config = _Kubeconfig(path)
    if not names:
        if not config.current:
            known = ", ".join(sorted(config.contexts)) or "none"
            raise config.error(f"no current-context: pass --context NAME (contexts: {known})")
        names = [config.current]
    return [config.context(name) for name in dict.fromkeys(names)]


def read_context(context: Context) -> ClusterSource:
    """One context's cluster.json and in-cluster documents; failures are recorded, not raised."""
    documents, errors = in_cluster.read(context.endpoint)
    # GET /version only once the endpoint has answered: an unreachable one would time out again.
    version = in_cluster.server_version(context.endpoint) if documents else None
    server = context.endpoint.url
    return ClusterSource(
        Provider.KUBERNETES,
        context.name,
        server_location(server),
        documents={CLUSTER_DOC: cluster_document(server, context.name, version), **documents},
        errors=errors,
        origin=f"kubeconfig context {context.name}",
    )


def collect(
    options: KubeconfigOptions, on_progress: Callable[[int, int], None] | None = None
) -> Iterator[ClusterSource]:
    """Each context's cluster, in the order given; contexts are read in parallel."""
    contexts = load(options.path, options.contexts)
    workers = max(1, min(options.concurrency, len(contexts)))
    with ThreadPoolExecutor(workers, thread_name_prefix="mutguard") as pool:
        futures = [pool.submit(read_context, context) for context in contexts]
        for done, future in enumerate(futures, start=1):
            source = future.result()
            if on_progress:
                on_progress(done, len(futures))
            yield source
