"""The per-user daily budget of LLM calls, as a port.

Each HTTP request to the model spends one call, retries included: a retry after a timeout
may well have been billed. The store-backed implementation keeps the counter in the store
so that every replica spends from the same budget; `cogmora.testing.InMemoryCallBudget`
keeps it in memory.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol


class CallBudget(Protocol):
    async def try_spend(self, uid: str, day: date) -> bool:
        """Spend one call of `uid`'s budget for `day` (UTC); False, spending nothing, if empty."""
        ...
