"""Which closing positions a close handler takes next: every one, apart from the others."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from cogmora.domain.enums import Market, Side
from cogmora.domain.orders import OpenRequest
from cogmora.services.settle_window import ClosingWindow

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
