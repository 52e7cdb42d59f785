"""The close handler's transaction (the seed's `closePositionHandler`).

A `closing` position is settled in ONE transaction: realized P&L, the balance credit and
its ledger entries, the `positionHistory` document, and the position marked `closed`.
It is idempotent because it is a compare-and-set from `closing`: a second run finds the
position `closed` and does nothing; a crash before the commit leaves it `closing`, and
the next run (at start-up, or the next pass) settles it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import structlog

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import UNREADABLE, Doc, settled_doc
from cogmora.domain.money import in_money_context, to_str
from cogmora.domain.paths import history_path, user_path
from cogmora.domain.positions import close_amounts, close_ledger
from cogmora.domain.timeutil import to_iso
from cogmora.errors import NotFound
from cogmora.gcpause import gc_paused
from cogmora.services.clock import Clock
from cogmora.services.ledger import AccountBook
from cogmora.services.settle_window import ClosingWindow
from cogmora.store import queries as q
from cogmora.store.lanes import lanes
from cogmora.store.port import Store, Tx

log = structlog.get_logger("cogmora.settlement")
CLOSING = q.positions_with_status(PositionStatus.CLOSING.value)


_MARKETS = {m.value: m for m in Market}
_SIDES = {s.value: s for s in Side}
_REASONS = {r.value: r for r in CloseReason}
_CLOSING = PositionStatus.CLOSING.value
_LIQUIDATION = CloseReason.LIQUIDATION.value
_Settled = tuple[str, str, str, Doc]
# A position document it cannot read, or whose owner is gone: skipped, left `closing`.
_UNSETTLEABLE: tuple[type[Exception], ...] = (*UNREADABLE, NotFound)


def settle_in(tx: Tx, rows: Sequence[tuple[str, Doc]], fees: FeeSchedule, clock: Clock) -> int:
    """Settle the given position documents (read in this transaction) that are still closing."""
    closing = [(p, d) for p, d in rows if d["details"]["status"] == _CLOSING]
    if not closing:
        return 0
    uids = sorted({d["uid"] for _, d in closing})
    book = AccountBook.from_docs(tx.get_many([user_path(u) for u in uids]))
    settled = _settle(closing, book, fees, clock.now())
    for wpath, wdoc in book.writes():
        tx.set(wpath, wdoc)
    for path, uid, pid, closed in settled:
        tx.set(path, closed)
        tx.create(history_path(uid, pid), closed)
    return len(settled)


@in_money_context
def _settle(
    closing: Sequence[tuple[str, Doc]], book: AccountBook, fees: FeeSchedule, now: datetime
) -> list[_Settled]:
    """The batch's maths, in the money context entered once: per position, the fill
    (`close_amounts`, the one place its formula lives), the closed document from the
    stored strings, and the owner's ledger lines; the batch's time is formatted once."""
    closed_at = to_iso(now)
    takers = {m: fees.taker(m) for m in Market}
    settled: list[_Settled] = []
    for path, doc in closing:
        details = doc["details"]
        pid = path.rsplit("/", 1)[1]
        try:
            market = _MARKETS[doc["market"]]
            _REASONS[details["closeReason"]]  # a reason we know, or the position stays closing
            liquidation = details["closeReason"] == _LIQUIDATION
            credit, fee_close, payout, pnl = close_amounts(
                market,
                _SIDES[doc["side"]],
                Decimal(doc["qty"]),
                Decimal(doc["entryPrice"]),
                Decimal(doc["margin"]),
                Decimal(doc["feeOpen"]),
                Decimal(details["closePrice"]),
                liquidation,
                takers[market],
            )
            closed = settled_doc(doc, closed_at, to_str(fee_close), to_str(pnl), to_str(payout))
            uid = doc["uid"]
            book.post_in_context(uid, close_ledger(liquidation, credit, fee_close), now, pid)
        except _UNSETTLEABLE as exc:
            # One unreadable document must not stop everyone else's settlement: it stays
            # `closing`, for an operator, and the rest of the batch goes through.
            log.error("cannot settle position; skipped", path=path, error=repr(exc))
            continue
        settled.append((path, uid, pid, closed))
    return settled


class Settler:
    def __init__(
        self, store: Store, fees: FeeSchedule, clock: Clock, batch_size: int = 1000
    ) -> None:
        self._store = store
        self._fees = fees
        self._clock = clock
        # Each settlement writes about six documents; stay under the backend's cap.
        self._batch = max(1, min(batch_size, store.max_writes_per_tx // 6))
        self._window = ClosingWindow(store, self._batch)

    async def settle_pending(self) -> int:
        """Settle one batch of whatever is `closing`; returns how many were settled.

        The query runs on a snapshot, outside the transaction: a query inside a read-write
        transaction locks every document it scans, so each settlement would contend with
        every position change. The transaction then re-reads just the documents found and
        settles those still closing; another replica that got there first leaves nothing.
        The batch is owner by owner, so each user document is written once per batch;
        which batch comes next is `ClosingWindow`'s (replicas start apart), and the
        transaction runs in its owners' lanes (this process's opens wait, not abort).
        """
        while (paths := await self._window.next_batch()) is not None:

            def body(tx: Tx, paths: list[str] = paths) -> int:
                with gc_paused():
                    docs = tx.get_many(paths)
                    return settle_in(
                        tx,
                        [(p, d) for p, d in zip(paths, docs, strict=True) if d is not None],
                        self._fees,
                        self._clock,
                    )

            owners = {user_path(p.split("/", 2)[1]) for p in paths}
            n = await lanes(self._store).transact(owners, body)
            self._window.settled(n)
            if n:
                return n
        return 0

    async def settle_all(self) -> int:
        total = 0
        while n := await self.settle_pending():
            total += n
        return total
