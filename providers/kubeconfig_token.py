"""Bearer tokens of a kubeconfig user, held in memory: a literal `token`, a `tokenFile`, or an
`exec` credential plugin (client.authentication.k8s.io), run the way kubectl runs one.

A plugin runs without standard input (a scan is never interactive), with this process's
environment plus the kubeconfig's `env`, and KUBERNETES_EXEC_INFO describing the call. The token
it prints is kept until its expirationTimestamp, or until the API server answers 401; then the
plugin runs again. Neither a token nor anything a plugin prints is ever put in a message.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mutguard import clock
from mutguard.providers.in_cluster import KubeReadError

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_INFO_ENV = "KUBERNETES_EXEC_INFO"
# kubectl waits for a plugin forever; a scan must not hang on one that waits for a person.
EXEC_TIMEOUT_SECONDS = 60


def header_safe(token: str) -> bool:
    """Whether a token fits in an Authorization header. HTTP libraries refuse other values with
    an error that quotes them, so a token is checked before it is ever sent."""
    return bool(token) and token.isascii() and token.isprintable() and " " not in token


class StaticToken:
    """`token`: a refused token stays refused, so there is nothing to renew."""

    def __init__(self, value: str) -> None:
        self._value = value

    def token(self) -> str:
        return self._value

    def renew(self) -> None:
        pass

    def __repr__(self) -> str:  # never print the token itself
        return "StaticToken(***)"


class FileToken:
    """`tokenFile`: read at first use and again after a 401, as the file may be rotated."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._value: str | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._value is None:
                self._value = self._read()
            return self._value

    def renew(self) -> None:
        with self._lock:
            self._value = None

    def _read(self) -> str:
        try:
            value = self._path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KubeReadError(f"tokenFile {self._path} cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise KubeReadError(f"tokenFile {self._path} is not UTF-8 text") from None
        if not header_safe(value):
            raise KubeReadError(f"tokenFile {self._path} holds no single-line ASCII token")
        return value

    def __repr__(self) -> str:
        return f"FileToken({self._path})"


@dataclass(frozen=True)
class ExecPlugin:
    """A kubeconfig user's `exec` section, validated; `cluster` is spec.cluster for
    KUBERNETES_EXEC_INFO when the plugin asks for it (provideClusterInfo)."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    api_version: str = EXEC_API_VERSIONS[0]
    install_hint: str = ""
    cluster: Mapping[str, Any] | None = None


class ExecTokens:
    """Runs the plugin for a token when there is none, it has expired, or after a 401."""

    def __init__(self, plugin: ExecPlugin) -> None:
        self._plugin = plugin
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._failure: str | None = None  # a failed run is not retried for every request
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._failure is not None:
                raise KubeReadError(self._failure)
            expired = self._expires_at is not None and clock.now() >= self._expires_at
            if self._token is None or expired:
                try:
                    self._token, self._expires_at = run_plugin(self._plugin)
                except KubeReadError as exc:
                    self._failure = str(exc)
                    raise
            return self._token

    def renew(self) -> None:
        with self._lock:
            self._token, self._expires_at, self._failure = None, None, None

    def __repr__(self) -> str:
        return f"ExecTokens({self._plugin.command})"


def run_plugin(plugin: ExecPlugin) -> tuple[str, datetime | None]:
    """Run the plugin once: its token and when that expires (None: until refused)."""
    spec: dict[str, Any] = {"interactive": False}
    if plugin.cluster is not None:
        spec["cluster"] = dict(plugin.cluster)
    info = {"apiVersion": plugin.api_version, "kind": "ExecCredential", "spec": spec}
    env = {**os.environ, **plugin.env, EXEC_INFO_ENV: json.dumps(info)}
    name = f"exec plugin {plugin.command!r}"
    try:
        # stderr is the user's, as with kubectl: a plugin explains its failures there.
        done = subprocess.run(
            [plugin.command, *plugin.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=env,
            timeout=EXEC_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        hint = " ".join(plugin.install_hint.split())  # often several lines in a kubeconfig
        hint = f": {hint}" if hint else ""
        raise KubeReadError(f"{name} was not found{hint}") from None
    except OSError as exc:
        raise KubeReadError(f"{name} cannot be run ({exc.strerror})") from None
    except subprocess.TimeoutExpired:
        raise KubeReadError(
            f"{name} printed no credential within {EXEC_TIMEOUT_SECONDS} s (does it wait for "
            "a login? mutguard runs plugins without a terminal)"
        ) from None
    if done.returncode != 0:
        raise KubeReadError(f"{name} exited with status {done.returncode}")
    return parse_exec_credential(done.stdout, plugin.api_version, name)


def parse_exec_credential(
    output: bytes, api_version: str, name: str
) -> tuple[str, datetime | None]:
    """status.token and status.expirationTimestamp of the ExecCredential a plugin printed."""
    try:
        credential = json.loads(output)
    except ValueError:
        raise KubeReadError(f"{name} printed no ExecCredential JSON") from None
    if not isinstance(credential, dict) or credential.get("kind") != "ExecCredential":
        raise KubeReadError(f"{name} printed JSON that is not an ExecCredential")
    if credential.get("apiVersion") != api_version:
        raise KubeReadError(f"{name} answered another apiVersion than the {api_version} asked for")
    status = credential.get("status")
    if not isinstance(status, dict):
        raise KubeReadError(f"{name} printed an ExecCredential without status")
    if status.get("clientCertificateData") or status.get("clientKeyData"):
        raise KubeReadError(
            f"{name} returned a client certificate, which mutguard cannot use: Python loads a "
            "private key only from a file, and mutguard writes no key to disk"
        )
    token = status.get("token")
    if not isinstance(token, str) or not token:
        raise KubeReadError(f"{name} printed an ExecCredential without status.token")
    if not header_safe(token):
        raise KubeReadError(f"{name} printed a status.token that is not single-line ASCII")
    return token, _expiry(status.get("expirationTimestamp"), name)


def _expiry(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        expires_at = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise KubeReadError(f"{name}: expirationTimestamp is not an RFC 3339 time") from None
    if expires_at.tzinfo is None:
        raise KubeReadError(f"{name}: expirationTimestamp has no time zone")
    return expires_at
