from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cogmora.domain.schedule import next_run, parse_schedule
from cogmora.errors import ValidationError


def at(hour: int, minute: int, second: int = 0, micro: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 1, day, hour, minute, second, micro, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("every 15m", at(10, 7, 3), at(10, 15)),
        ("every 15m", at(10, 59, 59, 999999), at(11, 0)),
        ("every 2h", at(10, 7), at(12, 0)),
        ("every 1d", at(10, 7), at(0, 0, day=2)),
        ("every 90min", at(0, 1), at(1, 30)),
        ("*/5 * * * *", at(10, 7, 3), at(10, 10)),
        ("0 9 * * 1-5", at(10, 7), at(9, 0, day=2)),
        ("30 * * * *", at(10, 29, 59, 999999), at(10, 30)),
    ],
)
def test_next_run_is_the_first_utc_slot_after_the_given_time(
    text: str, after: datetime, expected: datetime
) -> None:
    """Intervals count from the Unix epoch and cron lines are read in UTC."""
    assert next_run(text, after) == expected


@pytest.mark.parametrize("text", ["every 15m", "*/15 * * * *"])
def test_a_time_exactly_on_a_slot_gives_the_following_slot(text: str) -> None:
    """A run finishing exactly on a slot boundary must not be handed that same slot again."""
    assert next_run(text, at(10, 15)) == at(10, 30)


@pytest.mark.parametrize("text", ["every 15m", "*/15 * * * *"])
def test_slots_missed_during_downtime_run_once(text: str) -> None:
    """After a late run the next slot is the first after now, not the first missed slot."""
    due = at(10, 0)
    now = due + timedelta(hours=6, minutes=7)
    assert next_run(text, now) == at(16, 15)


def test_next_run_converts_other_time_zones_to_utc() -> None:
    """An aware time in another zone lands on the same UTC slot."""
    plus_two = timezone(timedelta(hours=2))
    result = next_run("0 * * * *", datetime(2024, 1, 1, 12, 30, tzinfo=plus_two))
    assert result == at(11, 0)
    assert result.tzinfo == UTC


def test_next_run_refuses_a_naive_datetime() -> None:
    """Every time in the system is UTC-aware; a naive one is a bug, not a guess."""
    with pytest.raises(ValueError, match="naive"):
        next_run("every 15m", datetime(2024, 1, 1, 10, 0))


def test_parse_schedule_normalizes_case_and_spaces() -> None:
    """The stored form is lower case with single spaces."""
    assert parse_schedule("  EVERY   15m ").text == "every 15m"
    assert parse_schedule("0  9 * *  MON").text == "0 9 * * mon"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("every 0m", "from 1 minute to 7 days"),
        ("every 8d", "from 1 minute to 7 days"),
        ("every 30s", "5-field cron"),
        ("every", "5-field cron"),
        ("sometimes", "5-field cron"),
        ("* * * * * *", "5-field cron"),
        ("@hourly", "5-field cron"),
        ("61 * * * *", "not a valid cron"),
        ("a b c d e", "not a valid cron"),
        ("0 0 30 2 *", "never fires"),
        ("", "5-field cron"),
        (15, "5-field cron"),
        (None, "5-field cron"),
    ],
)
def test_bad_schedules_are_refused_naming_the_schedule_field(text: object, fragment: str) -> None:
    """Each bad schedule raises a ValidationError on `schedule` that says what is wrong."""
    with pytest.raises(ValidationError, match=fragment) as caught:
        parse_schedule(text)
    assert caught.value.field == "schedule"


@given(
    minutes=st.integers(min_value=1, max_value=600),
    offset=st.integers(min_value=0, max_value=10**9),
)
def test_interval_slots_are_aligned_and_strictly_later(minutes: int, offset: int) -> None:
    """The next interval slot is after the given time, at most one interval later, on the grid."""
    after = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(seconds=offset, microseconds=offset % 7)
    result = next_run(f"every {minutes}m", after)
    interval = timedelta(minutes=minutes)
    assert after < result <= after + interval
    assert (result - datetime(1970, 1, 1, tzinfo=UTC)) % interval == timedelta(0)
