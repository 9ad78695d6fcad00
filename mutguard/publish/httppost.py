"""One JSON POST with the standard library, its failures sorted into retryable or not."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from mutguard.publish.retry import DeliveryError, RetryableError, parse_retry_after

# Worth another try: timeouts, rate limits and server-side failures.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
TIMEOUT_SECONDS = 15.0
_DETAIL_BYTES = 300


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


def post(url: str, body: bytes, headers: dict[str, str], what: str) -> Answer:
    """POST `body` to `url`; errors name `what`, never the URL, but may quote the answer's body:
    the dispatcher blanks secrets out of them (secrets.py)."""
    if urlsplit(url).scheme not in ("https", "http"):
        raise DeliveryError(f"{what}: the URL must start with https:// (or http://)")
    # The scheme is checked above: no file:// or other handlers are reachable.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return Answer(response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as err:
        detail = err.read(_DETAIL_BYTES).decode("utf-8", "replace").strip()
        message = f"{what} answered HTTP {err.code}: {detail or err.reason}"
        if err.code in RETRYABLE_STATUS:
            retry_after = parse_retry_after(err.headers.get("Retry-After"))
            raise RetryableError(message, retry_after) from None
        raise DeliveryError(message) from None
    except OSError as err:  # URLError, refused or reset connections, timeouts
        reason = getattr(err, "reason", err)
        raise RetryableError(f"{what} unreachable: {reason}") from None
