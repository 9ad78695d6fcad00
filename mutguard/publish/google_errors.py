"""What a failure of a Google Cloud client library means for a sink or a secret source: one
line naming what failed (redacted, squeezed, at most ERROR_TEXT_LIMIT characters of the
server's message), retried when the service or the token endpoint may answer next time."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mutguard.publish.retry import DeliveryError, RetryableError
from mutguard.publish.text import truncate

ERROR_TEXT_LIMIT = 300
NO_CREDENTIALS = "no Google credentials (Application Default Credentials) were found"


def one_line(text: str) -> str:
    return truncate(" ".join(text.split()), ERROR_TEXT_LIMIT)


def google_failure(
    what: str, err: Exception, redact: Callable[[str], str], retryable: Iterable[str]
) -> DeliveryError:
    """`err` as RetryableError or DeliveryError; `retryable`: the google.api_core exception
    class names (ServiceUnavailable, ...) worth another attempt for this call."""
    from google.api_core import exceptions as api_exceptions
    from google.auth.exceptions import DefaultCredentialsError, TransportError

    if isinstance(err, api_exceptions.GoogleAPICallError):
        status = err.grpc_status_code.name if err.grpc_status_code else str(err.code)
        message = redact(f"{what} answered {status}: {one_line(err.message or '')}")
        again = tuple(getattr(api_exceptions, name) for name in retryable)
        return RetryableError(message) if isinstance(err, again) else DeliveryError(message)
    if isinstance(err, DefaultCredentialsError):
        return DeliveryError(f"{what}: {NO_CREDENTIALS}")
    if isinstance(err, TransportError):  # the token could not be fetched
        return RetryableError(redact(f"{what}: unreachable: {one_line(str(err))}"))
    return DeliveryError(redact(f"{what}: {one_line(str(err) or type(err).__name__)}"))
