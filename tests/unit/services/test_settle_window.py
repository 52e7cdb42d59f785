"""Which closing positions a close handler takes next: every one, apart from the others."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from cogmora.domain.enums import LedgerKind, Market, Side
from cogmora.domain.orders import OpenRequest
from cogmora.services.settle_window import ClosingWindow
from cogmora.services.settlement import Settler

# Owners on both sides of any random bound: digits sort before capitals before lowercase.
OWNERS = ("0ann", "4bob", "Cyd", "Pam", "dee", "zoe")


async def _closing(system: Any, quote: Any, make_user: Any) -> set[str]:
    quote("BTC-USDT", "100")
    paths = set()
    for uid in OWNERS:
        await make_user(uid, "10000")
        doc = await system.positions.open(
            uid, OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=Decimal(1))
        )
        await system.positions.request_close(uid, doc["id"])
        paths.add(f"users/{uid}/openPositions/{doc['id']}")
    return paths


async def test_a_window_from_any_owner_on_still_holds_every_closing_position(
    system: Any, quote: Any, make_user: Any
) -> None:
    """Whichever owner a window starts from, the owners sorting before it come round too."""
    paths = await _closing(system, quote, make_user)
    for seed in range(20):
        random.seed(seed)
        window = ClosingWindow(system.store, batch=2)
        taken: list[str] = []
        while (batch := await window.next_batch()) is not None and len(taken) < len(paths):
            taken += batch
            window.settled(0)  # nothing settles: the window is walked once, then re-read
        assert set(taken) == paths


async def test_a_handler_that_finds_its_batch_taken_jumps_half_its_queue_ahead(
    system: Any, quote: Any, make_user: Any
) -> None:
    """Settling fewer than it took means another handler is on the same batches: following
    it would mean waiting on its locks batch after batch, so the next batch is half the
    remaining queue away, not the neighbour."""
    await _closing(system, quote, make_user)
    random.seed(1)
    window = ClosingWindow(system.store, batch=1)
    first = await window.next_batch()
    assert first is not None
    order = [window._queue[i][0] for i in range(len(window._queue))]  # the walk ahead
    window.settled(1)  # ours, all of it: the walk goes on in order
    assert await window.next_batch() == [order[0]]
    window.settled(0)  # someone else settled it first
    ahead = order[1:]
    assert await window.next_batch() == [ahead[len(ahead) // 2]]


class _CountingReads:
    """The test's store, with its snapshot reads counted (everything else is the store's)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def read(self, body: Any) -> Any:
        self.reads += 1
        return await self._store.read(body)


async def test_the_next_batch_is_read_while_the_caller_settles_the_one_handed_out(
    system: Any, quote: Any, make_user: Any
) -> None:
    """Handing out a batch begins the snapshot read of the next one, so the caller's
    transaction and that read run at once; asking for the next batch then uses it."""
    await _closing(system, quote, make_user)
    store = _CountingReads(system.store)
    window = ClosingWindow(store, batch=2)
    assert await window.next_batch() is not None
    ahead = window._ahead
    assert ahead is not None and ahead[0] is window._queue[0]
    await ahead[1]  # done without anyone asking for the next batch
    reads = store.reads
    assert await window.next_batch() == ahead[0]
    third = window._ahead
    assert third is not None
    await third[1]
    assert store.reads == reads + 1  # the read ahead of the third only: none for the second


async def test_a_batch_settled_by_another_handler_after_it_was_read_ahead_is_settled_once(
    system: Any, quote: Any, make_user: Any
) -> None:
    """The read ahead may be older than another handler's settlement: the settling
    transaction re-reads, so the two handlers together settle each position exactly once."""
    paths = await _closing(system, quote, make_user)
    mine = Settler(system.store, system.settings.fees, system.clock, batch_size=2)
    theirs = Settler(system.store, system.settings.fees, system.clock, batch_size=100)
    first = await mine.settle_pending()  # one batch, and the next one read ahead
    assert first == 2 and mine._window._ahead is not None
    assert await theirs.settle_all() == len(paths) - first
    assert await mine.settle_all() == 0
    for uid in OWNERS:
        kinds = [e.kind for e in await system.accounts.ledger(uid)]
        assert kinds.count(LedgerKind.CLOSE) == 1
