"""Bounded retries with exponential backoff and full jitter, Retry-After, and per-channel pacing.

Delays go through the policy's `sleep` (and pacing reads its `clock`), so tests inject functions
that record the delays instead of waiting them out.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from mutguard import clock

T = TypeVar("T")


class DeliveryError(Exception):
    """A delivery that failed for good (bad request, missing secret, rejected credentials).
    Its message may quote a server's answer: publishing redacts it before anyone sees it."""


class RetryableError(DeliveryError):
    """A delivery that may succeed later (429, 5xx, connection refused or reset)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def full_jitter(delay: float) -> float:
    """AWS's "full jitter": uniform in [0, delay], which spreads retries of many senders."""
    return random.uniform(0, delay)  # noqa: S311 - jitter, not cryptography


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[float], float] = full_jitter

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Wait before retry number `retry` (1-based): jittered backoff, never less than a
        server's Retry-After."""
        backoff = self.jitter(min(self.max_delay, self.base_delay * 2 ** (retry - 1)))
        return max(backoff, retry_after or 0.0)


def call_with_retry(action: Callable[[], T], policy: RetryPolicy) -> T:
    """Run `action`, retrying RetryableError up to `policy.attempts` tries in all. A Retry-After
    longer than `max_delay` fails at once rather than holding the whole run."""
    attempt = 1
    while True:
        try:
            return action()
        except RetryableError as err:
            if attempt >= policy.attempts:
                raise DeliveryError(f"{err} (gave up after {attempt} attempts)") from None
            if err.retry_after is not None and err.retry_after > policy.max_delay:
                raise DeliveryError(
                    f"{err} (asked to wait {err.retry_after:g} s, more than the "
                    f"{policy.max_delay:g} s allowed)"
                ) from None
            policy.sleep(policy.delay(attempt, err.retry_after))
            attempt += 1


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """RFC 9110 §10.2.3: `delay-seconds` or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or clock.now())).total_seconds())


@dataclass
class Pacer:
    """Keeps sends to one channel at least `interval` seconds apart (Slack: about one message
    per second per channel; Teams: at most four requests per second)."""

    interval: float
    policy: RetryPolicy
    _last: float | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def wait(self) -> None:
        with self._lock:
            now = self.policy.clock()
            if self._last is not None and (pause := self._last + self.interval - now) > 0:
                self.policy.sleep(pause)
                now += pause
            self._last = now
