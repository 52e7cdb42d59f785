"""The close handler's transaction (the seed's `closePositionHandler`).

A `closing` position is settled in ONE transaction: realized P&L, the balance credit and
its ledger entries, the `positionHistory` document, and the position marked `closed`.
It is idempotent because it is a compare-and-set from `closing`: a second run finds the
position `closed` and does nothing; a crash before the commit leaves it `closing`, and
the next run (at start-up, or the next pass) settles it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cogmora.domain.enums import PositionStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Position, Settlement, history_path, user_path
from cogmora.domain.positions import close_fill
from cogmora.services.clock import Clock
from cogmora.services.ledger import AccountBook
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx

CLOSING = q.Query("openPositions").where("details.status", "==", PositionStatus.CLOSING.value)


def settle_in(tx: Tx, positions: Sequence[Position], fees: FeeSchedule, clock: Clock) -> int:
    """Settle the given positions (already read in this transaction) that are still closing."""
    closing = [p for p in positions if p.status is PositionStatus.CLOSING]
    if not closing:
        return 0
    uids = sorted({p.uid for p in closing})
    book = AccountBook.from_docs(tx.get_many([user_path(u) for u in uids]))
    now = clock.now()
    settled: list[Position] = []
    for p in closing:
        reason, price = p.details.close_reason, p.details.close_price
        assert reason is not None and price is not None, f"{p.path} is closing without a price"
        fill = close_fill(
            p.market, p.side, p.qty, p.entry_price, p.margin, p.fee_open, price, reason, fees
        )
        book.post(p.uid, fill.ledger, now, p.id)
        settled.append(
            replace(
                p.with_details(status=PositionStatus.CLOSED),
                settlement=Settlement(now, fill.fee_close, fill.realized_pnl, fill.payout),
            )
        )
    for path, doc in book.writes():
        tx.set(path, doc)
    for p in settled:
        doc = p.to_doc()
        tx.set(p.path, doc)
        tx.create(history_path(p.uid, p.id), doc)
    return len(settled)


class Settler:
    def __init__(
        self, store: Store, fees: FeeSchedule, clock: Clock, batch_size: int = 1000
    ) -> None:
        self._store = store
        self._fees = fees
        self._clock = clock
        # Each settlement writes about six documents; stay under the backend's cap.
        self._batch = max(1, min(batch_size, store.max_writes_per_tx // 6))

    async def settle_pending(self) -> int:
        """Settle one batch of whatever is `closing`; returns how many were settled."""
        query = CLOSING.limited(self._batch)

        def body(tx: Tx) -> int:
            rows = tx.query(query)
            positions = [Position.from_doc(p.rsplit("/", 1)[1], d) for p, d in rows]
            return settle_in(tx, positions, self._fees, self._clock)

        return await self._store.transact(body)

    async def settle_all(self) -> int:
        total = 0
        while n := await self.settle_pending():
            total += n
        return total
