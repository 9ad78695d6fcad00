"""Where sinks get webhook URLs, bot tokens and passwords, and how those stay out of every log
line, result and error message.

A sink asks its `SecretSource` for a secret by name only when it is about to send (a dry run needs
none). Every value handed out is registered with the run's `Redactor`, which replaces it (and,
for URLs, the secret path and query on their own, since HTTP errors often quote only those) with
`***` in any text mutguard reports. Cloud secret stores (AWS Secrets Manager, GCP Secret Manager,
Azure Key Vault) implement the same protocol.

Sink options that name a secret (`url_env`, `token_env`, `password_env`, ...) hold a reference:
a bare `NAME` (or `env:NAME`) is an environment variable, `SOURCE:NAME` is NAME in the secret
store SOURCE, one of SECRET_SOURCES (`aws-secretsmanager:prod/mutguard/slack`,
`gcp-secretmanager:projects/P/secrets/slack`). SecretRefs resolves them; each store's module
has `secret_source(redactor) -> SecretSource` and is imported only when a reference names it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

from mutguard.plugins import Plugin

REDACTED = "***"
SECRET_SOURCES = {
    "aws-secretsmanager": Plugin(
        "mutguard.publish.aws_secrets", "aws", imports_later={"boto3": "boto3"}
    ),
    "gcp-secretmanager": Plugin(
        "mutguard.publish.gcp_secrets",
        "notify-gcp",
        imports_later={"google.cloud.secretmanager_v1": "google-cloud-secret-manager"},
    ),
}
# Shorter URL paths and queries are not redacted on their own: blanking out "/" or "/api"
# everywhere would garble messages without hiding anything secret.
_MIN_FRAGMENT = 8


class MissingSecret(LookupError):
    """The named secret is not configured; the message names it, never a value."""


class SecretSource(Protocol):
    def get(self, name: str) -> str:
        """The secret called `name`; raises MissingSecret when it is absent or empty."""
        ...


class EnvSecrets:
    """Secrets from environment variables."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, name: str) -> str:
        value = self._environ.get(name, "").strip()
        if not value:
            raise MissingSecret(f"environment variable {name} is not set")
        return value


class CloudSecretStore:
    """What every cloud secret store shares: references `NAME[#KEY]`, one read per secret and
    run (thread-safe), KEY as a string of the JSON object the secret holds, and an empty value
    as MissingSecret. A store names its `service` and implements `_read(NAME)`, returning the
    secret's text already registered with the run's Redactor."""

    service = ""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        secret, hash_sign, key = name.partition("#")
        self._check(secret)
        with self._lock:  # one read per secret, even when several sinks ask at once
            if secret not in self._texts:
                self._texts[secret] = self._read(secret)
            text = self._texts[secret]
        value = self._field(text, secret, key) if hash_sign else text
        if not value.strip():
            raise MissingSecret(f"{self.service} secret {name} is empty")
        return value

    def _check(self, secret: str) -> None:
        """Refuse a reference that cannot name a secret of this store, before any call."""

    def _read(self, secret: str) -> str:
        raise NotImplementedError

    def _field(self, text: str, secret: str, key: str) -> str:
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            raise MissingSecret(
                f"{self.service} secret {secret} is not a JSON object, so has no {key}"
            )
        value = document.get(key)
        if not isinstance(value, str):
            raise MissingSecret(f"{self.service} secret {secret} has no string value for key {key}")
        return value


class SecretRefs:
    """Secrets by reference (see the module docstring); every value it returns is registered
    with `redactor` first. Thread-safe; each store is set up once per run."""

    def __init__(self, redactor: Redactor, environ: Mapping[str, str] | None = None) -> None:
        self._redactor = redactor
        self._env = EnvSecrets(environ)
        self._sources: dict[str, SecretSource] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        source, colon, inner = name.partition(":")
        if not colon:
            return self._redactor.add(self._env.get(name))
        if source == "env":
            return self._redactor.add(self._env.get(inner))
        return self._redactor.add(self._source(source, name).get(inner))

    def _source(self, source: str, reference: str) -> SecretSource:
        plugin = SECRET_SOURCES.get(source)
        if plugin is None:
            known = ", ".join(["env", *sorted(SECRET_SOURCES)])
            raise MissingSecret(f"{reference}: unknown secret source {source!r} (known: {known})")
        with self._lock:
            if source not in self._sources:
                module = plugin.load(f"the secret source {source}")
                opened = module.secret_source(self._redactor)
                self._sources[source] = opened
            return self._sources[source]


class Redactor:
    """Remembers secret values and blanks them out of text; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, value: str) -> str:
        """Register a secret (and a URL's path and query); returns it for convenient chaining."""
        fragments = {value} if value else set()
        if "://" in value:
            parts = urlsplit(value)
            pieces = {parts.path, parts.query, parts.path.strip("/")}
            fragments |= {p for p in pieces if len(p) >= _MIN_FRAGMENT}
        with self._lock:
            self._values |= fragments
        return value

    def redact(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)  # longest first: whole URLs
        for value in values:
            text = text.replace(value, REDACTED)
        return text

    def logger(self, name: str) -> logging.Logger:
        """A logger for third-party clients (slack-sdk) that blanks secrets out of every record
        logged to it, and does not build the debug dumps those clients make of each request."""
        # Not registered with logging's manager (getLogger would keep it, and its filter, for
        # the life of the process); records still reach the handlers of mutguard.publish.
        logger = logging.Logger(f"mutguard.publish.{name}", logging.INFO)
        logger.parent = logging.getLogger("mutguard.publish")
        logger.addFilter(_RedactingFilter(self))
        return logger


class _RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.redact(record.getMessage())
        record.args = None
        return True
