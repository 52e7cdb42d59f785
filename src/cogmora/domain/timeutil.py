"""UTC timestamps in the one text form the data model uses (ISO-8601, microseconds, `Z`).

A fixed width form sorts lexicographically in time order, which is what lets SQL and
Firestore range-query `nextRunAt` and `expiresAt` stored as strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


@lru_cache(maxsize=4096)  # a batch stamps thousands of documents with one `now`
def to_iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime: every time in Cogmora is UTC-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def opt_iso(at: datetime | None) -> str | None:
    return None if at is None else to_iso(at)


def opt_from_iso(text: str | None) -> datetime | None:
    return None if text is None else from_iso(text)
