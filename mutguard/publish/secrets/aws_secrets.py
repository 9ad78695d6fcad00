"""AWS Secrets Manager as a SecretSource, for references `aws-secretsmanager:NAME[#KEY]`.

NAME is the secret's name or ARN; GetSecretValue returns its current version, whose
SecretString is the value. With `#KEY` the value is the string under KEY of the JSON object the
secret holds (what the console stores for "key/value" secrets), so one secret can hold both a
webhook URL and its signing key. The region is the ARN's, else boto3's (AWS_REGION in Lambda).
Each secret is read once per run.

A secret that does not exist, is empty or lacks KEY raises MissingSecret naming it; any other
refusal (access denied, a KMS key it cannot use) fails the sink naming the secret and the error
code; throttling and server errors are retried like any delivery. Values are never in errors,
nor in botocore's debug log of response bodies.
"""

from __future__ import annotations

import logging
from typing import Any

from mutguard.publish import aws
from mutguard.publish.retry import DeliveryError
from mutguard.publish.secrets import CloudSecretStore, MissingSecret, Redactor

SERVICE = "AWS Secrets Manager"


class _WithholdSecretBodies(logging.Filter):
    """botocore logs every response body at DEBUG, before mutguard could register the value
    with the Redactor: a body that carries a secret value is replaced by a note."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if any(
            isinstance(a, bytes) and (b'"SecretString"' in a or b'"SecretBinary"' in a)
            for a in args
        ):
            record.msg = "Response body: (withheld by mutguard: it holds a secret value)"
            record.args = None
        return True


def _withhold_secret_bodies() -> None:
    logger = logging.getLogger("botocore.parsers")
    if not any(isinstance(f, _WithholdSecretBodies) for f in logger.filters):
        logger.addFilter(_WithholdSecretBodies())


class AwsSecretsManager(CloudSecretStore):
    service = SERVICE

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        _withhold_secret_bodies()
        self._redactor = redactor
        self._clients: dict[str | None, Any] = {}

    def _read(self, secret_id: str) -> str:
        region = aws.region_of_arn(secret_id)
        what = f"{SERVICE} secret {secret_id}"
        try:
            answer = aws.call(
                what,
                lambda: self._client(region).get_secret_value(SecretId=secret_id),
                self._redactor,
            )
        except aws.AwsError as err:
            if err.code == "ResourceNotFoundException":
                raise MissingSecret(f"{what} not found") from None
            raise
        text = answer.get("SecretString")
        if text is None:
            raise DeliveryError(f"{what} holds binary data; mutguard needs a SecretString")
        # Registered at once: the whole JSON text too, not only the field that is used.
        return self._redactor.add(text)

    def _client(self, region: str | None) -> Any:
        if region not in self._clients:
            self._clients[region] = aws.client("secretsmanager", region)
        return self._clients[region]


def secret_source(redactor: Redactor) -> AwsSecretsManager:
    return AwsSecretsManager(redactor)
