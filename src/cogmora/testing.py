"""Fakes we ship, as structlog ships its own: what tests, benchmarks and anyone embedding
Cogmora need to run it on their own terms without touching a network or the wall clock.

- `ManualClock` (re-exported from `services.clock`): time that moves only when told.
- `FixedCandles`: a `CandleSource` serving prepared series, counting its calls.
- `InMemoryCallBudget`: the LLM call budget in one process's memory.

The emulators that stand in for Google's services (Firestore, Auth) are started by
`cogmora.emulators`, next to this module and shared the same way.

Production code never imports this module; a fake lives here once, not in each test.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

from cogmora.jobs.agent.context import Candle
from cogmora.services.clock import ManualClock

__all__ = ["EPOCH", "FixedCandles", "InMemoryCallBudget", "ManualClock"]

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FixedCandles:
    """A `CandleSource` serving prepared series (none for an unknown symbol)."""

    def __init__(self, series: Mapping[str, tuple[Candle, ...]] | None = None) -> None:
        self.series = dict(series or {})
        self.calls = 0

    async def candles(
        self, symbol: str, interval: str, now: datetime, count: int
    ) -> tuple[Candle, ...]:
        self.calls += 1
        return self.series.get(symbol, ())[-count:]


class InMemoryCallBudget:
    """The per-user daily LLM call budget, kept in memory (the store-backed one is
    `jobs.agent.store_budget.StoreCallBudget`, shared by every replica)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._spent: dict[tuple[str, date], int] = {}
        self._day: date | None = None

    async def try_spend(self, uid: str, day: date) -> bool:
        if self._day is None or day > self._day:
            # Past days can never be spent from again; drop them so the map stays small.
            self._spent = {k: v for k, v in self._spent.items() if k[1] >= day}
            self._day = day
        key = (uid, day)
        spent = self._spent.get(key, 0)
        if spent >= self._limit:
            return False
        self._spent[key] = spent + 1
        return True

    def spent(self, uid: str, day: date) -> int:
        return self._spent.get((uid, day), 0)
