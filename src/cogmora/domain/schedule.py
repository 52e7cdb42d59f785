"""When a user's agent runs: "every 15m" / "every 2h" / "every 1d", or a 5-field cron line.

Both forms name wall-clock slots in UTC, never "N minutes after the last run": every
replica computes the same slot for the same schedule, which is what lets the scheduler
claim a slot with one compare-and-set and run it at most once. Interval slots are the
multiples of the interval since the Unix epoch, so "every 15m" runs at :00, :15, :30, :45.

A slot missed while the system was down runs once, not once per missed slot: after a
late run the next slot is the first one strictly after *now*. An agent that was down for
a day must not fire 96 trades to catch up on the 96 quarter-hours it missed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterBadDateError, CroniterError, croniter

from cogmora.errors import ValidationError

FIELD = "schedule"
MIN_INTERVAL = timedelta(minutes=1)
MAX_INTERVAL = timedelta(days=7)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EVERY = re.compile(r"^every\s+(\d{1,6})\s*(m|min|h|d)$")
_UNITS = {
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
_USAGE = "schedule must be 'every N' with a unit m, h or d (e.g. 'every 15m') or a 5-field cron"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: exactly one of `interval` and `cron` is set."""

    text: str
    interval: timedelta | None = None
    cron: str | None = None


def parse_schedule(text: object) -> Schedule:
    """Parse and check a schedule, raising ValidationError naming `schedule` for bad input."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(FIELD, _USAGE)
    normalized = " ".join(text.strip().lower().split())
    if normalized.startswith("every"):
        return _parse_interval(normalized)
    return _parse_cron(normalized)


def next_run(schedule: Schedule | str, after: datetime) -> datetime:
    """The first slot strictly after `after` (an aware datetime), in UTC."""
    parsed = schedule if isinstance(schedule, Schedule) else parse_schedule(schedule)
    if after.tzinfo is None:
        raise ValueError("naive datetime: every time in Cogmora is UTC-aware")
    after = after.astimezone(UTC)
    if parsed.interval is not None:
        elapsed = after - _EPOCH
        slots = elapsed // parsed.interval + 1
        return _EPOCH + slots * parsed.interval
    assert parsed.cron is not None
    return _cron_next(parsed.cron, after)


def _parse_interval(text: str) -> Schedule:
    match = _EVERY.match(text)
    if match is None:
        raise ValidationError(FIELD, _USAGE)
    interval = int(match.group(1)) * _UNITS[match.group(2)]
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise ValidationError(FIELD, "schedule interval must be from 1 minute to 7 days")
    return Schedule(text=text, interval=interval)


def _parse_cron(text: str) -> Schedule:
    if len(text.split(" ")) != 5:
        raise ValidationError(FIELD, _USAGE)
    try:
        croniter(text, _EPOCH)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValidationError(FIELD, f"schedule is not a valid cron expression: {exc}") from None
    # A valid-looking line can still name no real time ("0 0 30 2 *"): find out now, not
    # when the scheduler first asks for its next run.
    try:
        _cron_next(text, datetime(2000, 1, 1, tzinfo=UTC))
    except ValidationError:
        raise ValidationError(
            FIELD, "schedule never fires: the cron expression names no date"
        ) from None
    return Schedule(text=text, cron=text)


def _cron_next(expr: str, after: datetime) -> datetime:
    # croniter works in whole seconds and returns the next match strictly after its start;
    # a match is a whole minute, so it is also strictly after the sub-second `after`.
    try:
        nxt = croniter(expr, after.replace(microsecond=0)).get_next(datetime)
    except CroniterBadDateError:
        raise ValidationError(FIELD, "schedule never fires after " + after.isoformat()) from None
    assert isinstance(nxt, datetime)
    return nxt.astimezone(UTC)
