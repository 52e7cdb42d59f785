"""The per-user daily budget of LLM calls, as a port, with an in-memory implementation.

Each HTTP request to the model spends one call, retries included: a retry after a timeout
may well have been billed. The store-backed implementation keeps the counter in the store
so that every replica spends from the same budget; this one is for tests and the demo.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol


class CallBudget(Protocol):
    async def try_spend(self, uid: str, day: date) -> bool:
        """Spend one call of `uid`'s budget for `day` (UTC); False, spending nothing, if empty."""
        ...


class InMemoryCallBudget:
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
