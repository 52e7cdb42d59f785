"""The LLM daily call budget kept in the store, so every replica spends from one counter.

`users/{uid}/llmBudget/{YYYY-MM-DD}` holds the day's count and is incremented in a
transaction: two replicas spending the last call at once cannot both get it. A new day is
a new document, so nothing has to reset the counters at midnight.
"""

from __future__ import annotations

from datetime import date

from cogmora.domain.paths import budget_path
from cogmora.store.port import Store, Tx


class StoreCallBudget:
    def __init__(self, store: Store, limit: int) -> None:
        self._store = store
        self._limit = limit

    async def try_spend(self, uid: str, day: date) -> bool:
        path = budget_path(uid, day)
        limit = self._limit

        def body(tx: Tx) -> bool:
            doc = tx.get(path)
            spent = int(doc["calls"]) if doc is not None else 0
            if spent >= limit:
                return False
            tx.set(path, {"uid": uid, "day": day.isoformat(), "calls": spent + 1, "limit": limit})
            return True

        return await self._store.transact(body)

    async def spent(self, uid: str, day: date) -> int:
        doc = await self._store.read(lambda tx: tx.get(budget_path(uid, day)))
        return 0 if doc is None else int(doc["calls"])
