"""GCP Secret Manager as a SecretSource, for references
`gcp-secretmanager:projects/PROJECT/secrets/SECRET[/versions/VERSION][#KEY]`.

Without `/versions/VERSION` the latest version is read (`versions/latest`: the one created
last). AccessSecretVersion returns its payload, which must be UTF-8 text and is checked against
the payload's CRC32C. With `#KEY` the value is the string under KEY of the JSON object the
secret holds, so one secret can hold both a webhook URL and its signing key. Each secret is
read once per run.

A secret or version that does not exist (NOT_FOUND), a version that is disabled or destroyed
(FAILED_PRECONDITION), an empty secret or one without KEY raises MissingSecret naming it; any
other refusal (PERMISSION_DENIED, ...) fails the sink naming the secret and the status;
UNAVAILABLE, RESOURCE_EXHAUSTED (what the client library itself retries), DEADLINE_EXCEEDED and
a payload that fails its checksum are retried like any delivery. Values are never in errors,
nor in the client library's debug log of responses.

Credentials are Application Default Credentials (roles/secretmanager.secretAccessor on the
secret). $MUTGUARD_GCP_SECRETMANAGER_ENDPOINT moves the endpoint: `HOST:PORT` (or
`https://HOST:PORT`) is dialled with TLS and those credentials, e.g. a Private Service Connect
endpoint; `http://HOST:PORT` is dialled in plain text without credentials, for a local test
server only.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from mutguard.publish.google_errors import google_failure, one_line
from mutguard.publish.retry import DeliveryError, RetryableError
from mutguard.publish.secrets import CloudSecretStore, MissingSecret, Redactor

SERVICE = "GCP Secret Manager"
ENDPOINT_ENV = "MUTGUARD_GCP_SECRETMANAGER_ENDPOINT"
SECRET_NAME = re.compile(r"^projects/[^/]+/secrets/[^/]+(/versions/[^/]+)?$")
TIMEOUT_SECONDS = 30.0
# What the client library retries for AccessSecretVersion, and its deadline (ours).
RETRYABLE_ERRORS = ("ServiceUnavailable", "ResourceExhausted", "DeadlineExceeded")
TRANSPORT_LOGGER = "google.cloud.secretmanager_v1.services.secret_manager_service.transports.grpc"
WITHHELD = "(withheld by mutguard: it holds a secret value)"


class _WithholdSecretPayloads(logging.Filter):
    """With DEBUG on, the client library logs each response, payload and all, in the record's
    `response` (which structured log handlers print); mutguard registers the value with the
    Redactor only afterwards, so the payload is replaced by a note."""

    def filter(self, record: logging.LogRecord) -> bool:
        response = getattr(record, "response", None)
        if isinstance(response, dict) and "payload" in response:
            record.response = {**response, "payload": WITHHELD}
        return True


def _withhold_secret_payloads() -> None:
    logger = logging.getLogger(TRANSPORT_LOGGER)
    if not any(isinstance(f, _WithholdSecretPayloads) for f in logger.filters):
        logger.addFilter(_WithholdSecretPayloads())


class GcpSecretManager(CloudSecretStore):
    service = SERVICE

    def __init__(self, redactor: Redactor, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        _withhold_secret_payloads()
        self._redactor = redactor
        self._endpoint = (os.environ if environ is None else environ).get(ENDPOINT_ENV, "")
        self._client: Any = None

    def _check(self, secret: str) -> None:
        if not SECRET_NAME.match(secret):
            raise DeliveryError(
                f"{SERVICE} reference {secret} is not projects/PROJECT/secrets/SECRET"
                "[/versions/VERSION]"
            )

    def _read(self, secret: str) -> str:
        import google_crc32c

        what = f"{SERVICE} secret {secret}"
        version = secret if "/versions/" in secret else f"{secret}/versions/latest"
        try:
            answer = self._secret_manager().access_secret_version(
                name=version, retry=None, timeout=TIMEOUT_SECONDS
            )
        except Exception as err:  # sorted into missing, retryable or not
            raise _failure(what, err, self._redactor) from None
        payload = answer.payload
        if "data_crc32c" in payload and google_crc32c.value(payload.data) != payload.data_crc32c:
            raise RetryableError(f"{what}: the payload did not match its checksum")
        try:
            text: str = payload.data.decode("utf-8")
        except UnicodeDecodeError:
            raise DeliveryError(f"{what} holds binary data; mutguard needs UTF-8 text") from None
        # Registered at once: the whole JSON text too, not only the field that is used.
        return self._redactor.add(text)

    def _secret_manager(self) -> Any:
        if self._client is None:
            self._client = _client(self._endpoint.strip())
        return self._client


def _client(endpoint: str) -> Any:
    from google.cloud.secretmanager_v1 import SecretManagerServiceClient

    if not endpoint:
        return SecretManagerServiceClient()
    if endpoint.startswith("http://"):
        import grpc
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        # The transport uses a channel it is given as it is: plain text, no credentials.
        channel = grpc.insecure_channel(endpoint.removeprefix("http://"))
        return SecretManagerServiceClient(
            transport=SecretManagerServiceGrpcTransport(channel=channel)
        )
    return SecretManagerServiceClient(
        client_options={"api_endpoint": endpoint.removeprefix("https://")}
    )


def _failure(what: str, err: Exception, redactor: Redactor) -> Exception:
    from google.api_core import exceptions as api_exceptions

    if isinstance(err, api_exceptions.NotFound):
        return MissingSecret(f"{what} not found or has no versions")
    if isinstance(err, api_exceptions.FailedPrecondition):  # a disabled or destroyed version
        return MissingSecret(redactor.redact(f"{what} cannot be read: {one_line(err.message)}"))
    return google_failure(what, err, redactor.redact, RETRYABLE_ERRORS)


def secret_source(redactor: Redactor) -> GcpSecretManager:
    return GcpSecretManager(redactor)
