"""Settling named positions, for callers that are told which ones closed (a Firestore
trigger on `users/{uid}/openPositions/{id}`), rather than finding them with a query.

It is the close handler's own transaction (`settlement.settle_in`): the documents are read
in the transaction and only those still `closing` are settled, so a retried or duplicated
event, or a close handler process that got there first, settles nothing a second time.
"""

from __future__ import annotations

from collections.abc import Sequence

from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Doc
from cogmora.services.clock import Clock
from cogmora.services.settlement import settle_in
from cogmora.store.port import Store, Tx


async def settle_positions(
    store: Store, fees: FeeSchedule, clock: Clock, paths: Sequence[str]
) -> int:
    """Settle those of `paths` that are `closing` now, in one transaction; returns how many."""
    wanted = list(dict.fromkeys(paths))
    if not wanted:
        return 0

    def body(tx: Tx) -> int:
        docs = tx.get_many(wanted)
        found = zip(wanted, docs, strict=True)
        rows: list[tuple[str, Doc]] = [(p, d) for p, d in found if d is not None]
        return settle_in(tx, rows, fees, clock)

    return await store.transact(body)
