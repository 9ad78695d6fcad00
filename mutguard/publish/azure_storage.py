"""What the Azure Storage Queue sink and the Azure Table store share: the connection string
secret, kept out of every message, and one way to sort the SDK's failures into retryable or not.

The SDKs' own retries are turned off where the clients are made (`retry_total=0`): retrying is
the dispatcher's (or the store's), with the run's RetryPolicy, so every wait is bounded,
jittered and visible to tests. The azure packages are imported only inside functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mutguard.publish.httppost import RETRYABLE_STATUS
from mutguard.publish.retry import DeliveryError, RetryableError
from mutguard.publish.secrets import Redactor, SecretSource

T = TypeVar("T")

CONNECTION_STRING_ENV = "MUTGUARD_AZURE_STORAGE_CONNECTION_STRING"
# Connection string settings whose values are secret on their own (errors may quote them).
SECRET_SETTINGS = ("AccountKey", "SharedAccessSignature")


def connection_string(secrets: SecretSource, name: str, redactor: Redactor) -> str:
    """The connection string called `name`, registered with `redactor` whole and by its key."""
    value = redactor.add(secrets.get(name))
    for setting in value.split(";"):
        key, _, secret = setting.partition("=")
        if key.strip() in SECRET_SETTINGS and secret:
            redactor.add(secret)
    return value


def call(what: str, action: Callable[[], T], redactor: Redactor) -> T:
    """Run one SDK call; its failure becomes RetryableError or DeliveryError naming `what`."""
    from azure.core.exceptions import AzureError

    try:
        return action()
    except AzureError as err:
        raise failure(what, err, redactor) from None


def failure(what: str, err: Exception, redactor: Redactor) -> DeliveryError:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(err, ServiceRequestError | ServiceResponseError):
        reason = getattr(err, "message", None) or type(err).__name__
        return RetryableError(redactor.redact(f"{what}: service unreachable: {reason}"))
    if isinstance(err, HttpResponseError) and err.status_code is not None:
        # Tables' error codes are enum members; queues' are plain strings.
        error_code = getattr(err.error_code, "value", err.error_code)
        code = f" {error_code}" if error_code else ""
        message = redactor.redact(f"{what} answered HTTP {err.status_code}{code}")
        if err.status_code in RETRYABLE_STATUS:
            return RetryableError(message)
        return DeliveryError(message)
    return DeliveryError(redactor.redact(f"{what}: {str(err) or type(err).__name__}"))
