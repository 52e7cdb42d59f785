"""Time limits (SPEC 5.2): an open position whose `expiresAt` has come closes at market,
reason `time_limit`.

Run by the jobs scheduler, not the worker: a time is not a price level, so it has no place
in the per-tick book, and a pass over one registered query (`expiring_positions`) finds
every position whose time has come whether the pass runs on time, late, or first after a
restart. The close is the worker's own compare-and-set, `open -> closing` expecting the
position still open with that `expiresAt`, so several jobs replicas, a stop loss on the
same tick and a manual close race with exactly one winner; the close handler settles it.
A symbol with no fresh price is left for the next pass (a close at a stale price would
pay the wrong amount). The compare-and-set runs in its owners' document lanes
(`store.lanes`), where this process's partial closes and settlements of the same positions
run, so it waits for them rather than aborting them.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

import structlog

from cogmora.domain.enums import CloseReason, Market, PositionStatus
from cogmora.domain.paths import user_path
from cogmora.domain.timeutil import to_iso
from cogmora.errors import Conflict
from cogmora.services.clock import Clock
from cogmora.services.crossings import closing_fields
from cogmora.services.prices import PriceSource, fresh_price
from cogmora.store import queries as q
from cogmora.store.lanes import lanes
from cogmora.store.port import Store, Tx

log = structlog.get_logger("cogmora.time_limits")


class TimeLimits:
    def __init__(
        self, store: Store, prices: PriceSource, clock: Clock, max_price_age: float = 5.0
    ) -> None:
        self._store = store
        self._prices = prices
        self._clock = clock
        self._max_age = max_price_age

    async def close_due(self, limit: int = 500) -> int:
        """Mark `closing` every open position past its time limit; returns how many."""
        now = self._clock.now()
        query = q.expired("openPositions", PositionStatus.OPEN.value, to_iso(now), limit)
        rows = await self._store.read(lambda tx: tx.query(query))
        groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for path, doc in rows:
            groups[(doc["symbol"], doc["market"], doc["expiresAt"])].append(path)
        closed = 0
        for (symbol, market, expires), paths in groups.items():
            try:
                quote = await fresh_price(self._prices, symbol, Market(market), now, self._max_age)
            except Conflict as exc:
                log.warning("time limit reached but no fresh price; next pass", error=str(exc))
                continue
            fields = closing_fields(CloseReason.TIME_LIMIT, quote.price, now)
            expect = {"details.status": PositionStatus.OPEN.value, "expiresAt": expires}

            owners = {user_path(path.split("/", 2)[1]) for path in paths}
            body = functools.partial(_close, paths, expect, fields)
            closed += await lanes(self._store).transact(owners, body)
        return closed


def _close(paths: list[str], expect: dict[str, Any], fields: dict[str, Any], tx: Tx) -> int:
    return len(tx.compare_and_set(paths, expect, fields))
