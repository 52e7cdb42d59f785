"""The worker's book after its change-feed cursor fell behind what the store keeps."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side
from cogmora.domain.orders import OpenRequest

from .conftest import Rig

D = Decimal


async def _open(rig: Rig, stop_loss: str) -> str:
    request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D("0.01"), stop_loss=D(stop_loss))
    return str((await rig.system.positions.open("u", request))["id"])


async def _until(condition: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_follower_behind_the_pruned_feed_reloads_the_book(rig: Rig) -> None:
    """When the feed was pruned past the engine's cursor, the engine reloads its book from
    the store: a position closed meanwhile leaves it, one opened or amended meanwhile is
    live with its current levels, and the stops fire once."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("BTC-USDT", "60000")
    gone = await _open(rig, "59000")
    moved = await _open(rig, "59000")
    await rig.synced()
    assert gone in rig.engine.book and moved in rig.engine.book

    follow = rig.tasks.pop()  # the follower stalls...
    follow.cancel()
    await asyncio.gather(follow, return_exceptions=True)
    stale = rig.engine.cursor
    await rig.system.positions.request_close("u", gone)
    await rig.system.settler.settle_all()
    await rig.system.positions.amend("u", moved, {"stopLoss": D("59500")})
    new = await _open(rig, "59000")
    await rig.system.store.prune_changes(0)  # type: ignore[attr-defined]

    rig.tasks.append(asyncio.create_task(rig.engine.follow()))  # ...and comes back
    await _until(lambda: rig.engine.cursor > stale, "the engine never reloaded")
    await rig.synced()
    book = rig.engine.book
    assert gone not in book and moved in book and new in book

    rig.ticks("BTC-USDT", "59400")
    await rig.settle()
    assert (await rig.system.positions.get("u", moved)).details.close_price == D("59400")
    assert (await rig.system.positions.get("u", new)).status is PositionStatus.OPEN
    rig.ticks("BTC-USDT", "58990")
    await rig.settle()
    closed = await rig.system.positions.get("u", new)
    assert closed.details.close_reason is CloseReason.STOP_LOSS
    history = await rig.system.positions.history("u")
    assert sorted(h["id"] for h in history) == sorted([gone, moved, new])
