"""Missed funding times: every grid time after the opening and the last funding, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cogmora.domain.funding import missed_times

P = timedelta(hours=8)
LATEST = datetime(2026, 12, 2, 4, tzinfo=UTC)


def test_a_position_opened_on_a_funding_time_is_not_funded_for_it() -> None:
    assert missed_times(LATEST - P, None, LATEST, P, 10) == [LATEST]
    assert missed_times(LATEST, None, LATEST, P, 10) == []


@given(
    opened=st.integers(0, 40 * 3600),
    funded=st.one_of(st.none(), st.integers(0, 10)),
    limit=st.integers(1, 5),
)
def test_passes_with_any_limit_book_each_due_time_once_oldest_first(
    opened: int, funded: int | None, limit: int
) -> None:
    opened_at = LATEST - timedelta(seconds=opened)
    funded_at = None if funded is None else LATEST - funded * P
    after = opened_at if funded_at is None else max(opened_at, funded_at)
    expected = [LATEST - k * P for k in range(12) if LATEST - k * P > after][::-1]
    booked: list[datetime] = []
    while True:  # each pass moves fundedAt to the last time it booked
        times = missed_times(opened_at, funded_at, LATEST, P, limit)
        if not times:
            break
        assert len(times) <= limit
        booked += times
        funded_at = times[-1]
    assert booked == expected
