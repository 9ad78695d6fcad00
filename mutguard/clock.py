"""The one clock. Every date judgement (support calendars, suppression expiry) is made as of a
report's `generated_at`, which is `now()` at scan time or the user's `--as-of`; nothing else in
mutguard reads the date, so a scan of an old snapshot is reproducible."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def parse_as_of(text: str) -> datetime:
    """`YYYY-MM-DD` (the start of that day, UTC) or an ISO 8601 time; a time without a zone
    is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
