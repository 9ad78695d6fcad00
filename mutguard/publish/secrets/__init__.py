"""Where sinks get webhook URLs, bot tokens and passwords, and how those stay out of every log
line, result and error message.

A sink asks its `SecretSource` for a secret by name only when it is about to send (a dry run needs
none). Every value handed out is registered with the run's `Redactor`, which replaces it (and,
for URLs, the secret path, its tails down to the token segment and the query on their own, since
HTTP errors often quote only those; and each of these URL-encoded, JSON- and HTML-escaped) with
`***` in any text mutguard reports. Sink errors are redacted in one place, where the dispatcher
records and logs them. Cloud secret stores (AWS Secrets Manager, GCP Secret Manager,
Azure Key Vault) implement the same protocol.

Sink options that name a secret (`url_env`, `token_env`, `password_env`, ...) hold a reference:
a bare `NAME` (or `env:NAME`) is an environment variable, `SOURCE:NAME` is NAME in the secret
store SOURCE, one of SECRET_SOURCES (`aws-secretsmanager:prod/mutguard/slack`,
`gcp-secretmanager:projects/P/secrets/slack`). SecretRefs resolves them; each store's module
has `secret_source(redactor) -> SecretSource` and is imported only when a reference names it.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Protocol
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from mutguard.plugins import BOTO3, GOOGLE_SECRET_MANAGER
from mutguard.registry import Registry

REDACTED = "***"
# Another distribution adds a source with an entry point in the `mutguard.secret_sources` group.
SECRET_SOURCES: Registry[ModuleType] = Registry("secret source", "mutguard.secret_sources")
SECRET_SOURCES.add("aws-secretsmanager", "mutguard.publish.secrets.aws_secrets", needs=BOTO3)
SECRET_SOURCES.add(
    "gcp-secretmanager",
    "mutguard.publish.secrets.gcp_secrets",
    needs=GOOGLE_SECRET_MANAGER,
)
# Shorter URL paths and queries are not redacted on their own: blanking out "/" or "/api"
# everywhere would garble messages without hiding anything secret.
_MIN_FRAGMENT = 8
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")


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
        if "://" in name:
            raise MissingSecret(_url_in_place_of_reference(name))
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
        if "://" in name:
            raise MissingSecret(_url_in_place_of_reference(self._redactor.add(name)))
        source, colon, inner = name.partition(":")
        if not colon:
            return self._redactor.add(self._env.get(name))
        if source == "env":
            return self._redactor.add(self._env.get(inner))
        return self._redactor.add(self._source(source, name).get(inner))

    def _source(self, source: str, reference: str) -> SecretSource:
        if source not in SECRET_SOURCES:
            known = ", ".join(["env", *SECRET_SOURCES.names()])
            raise MissingSecret(f"{reference}: unknown secret source {source!r} (known: {known})")
        with self._lock:
            if source not in self._sources:
                opened = SECRET_SOURCES.get(source).secret_source(self._redactor)
                self._sources[source] = opened
            return self._sources[source]


def _url_in_place_of_reference(url: str) -> str:
    """Why a URL pasted where a secret's name belongs is refused, naming at most its scheme and
    host: the rest of such a URL is the secret itself."""
    parts = urlsplit(url)
    where = f" ({parts.scheme}://{parts.hostname}/...)" if parts.scheme and parts.hostname else ""
    return (
        f"a secret option's value{where} looks like a URL, not an environment variable name or "
        "secret reference: set the URL in an environment variable (or a secret store) and put "
        "that variable's name here"
    )


class Redactor:
    """Remembers secret values and blanks them out of text; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, value: str) -> str:
        """Register a secret (and a URL's secret parts); returns it for convenient chaining."""
        fragments = {value} if value else set()
        if "://" in value:
            fragments |= {p for p in _url_fragments(value) if len(p) >= _MIN_FRAGMENT}
        quoted = {form for fragment in fragments for form in _quoted_forms(fragment)}
        with self._lock:
            self._values |= fragments | quoted
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


def _url_fragments(url: str) -> set[str]:
    """The parts of a URL an error may quote alone: its path, each tail of the path (the last
    segment is the token of most webhook URLs), its query and each query value, its password."""
    parts = urlsplit(url)
    segments = parts.path.strip("/").split("/")
    tails = {"/".join(segments[start:]) for start in range(len(segments))}
    values = {value for _, value in parse_qsl(parts.query)}
    return {parts.path, parts.query, parts.password or "", *tails, *values}


def _quoted_forms(secret: str) -> set[str]:
    """How a secret reads once an error body has URL-encoded, JSON-escaped or HTML-escaped it
    (`%2F`, `%2f`, `+` for a space, `\\/`)."""
    json_escaped = json.dumps(secret)[1:-1]
    encoded = {quote(secret, safe=""), quote(secret, safe="/"), quote_plus(secret)}
    lower_hex = {_PERCENT_ESCAPE.sub(lambda m: m.group().lower(), form) for form in encoded}
    forms = {json_escaped, json_escaped.replace("/", "\\/"), html.escape(secret)}
    return (forms | encoded | lower_hex) - {secret}


class _RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.redact(record.getMessage())
        record.args = None
        return True
