"""Documents the engine cannot read (a stop that is not a number, a details field of the
wrong type) are logged and passed over: at start, from the change feed and on a reload,
the rest of the book stays live."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cogmora.domain.enums import Market, PositionStatus, Side
from cogmora.domain.orders import OpenRequest
from cogmora.domain.paths import position_path

from .conftest import Rig, close_rig, make_rig

D = Decimal

BROKEN: dict[str, Any] = {
    "a stop that is not a number": {"stopLoss": "abc"},
    "a stop of the wrong type": {"stopLoss": [1, 2]},
    "details that are not an object": None,  # the whole details field replaced by a string
}


async def _open(rig: Rig, stop_loss: str) -> str:
    request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D("0.01"), stop_loss=D(stop_loss))
    return str((await rig.system.positions.open("u", request))["id"])


async def _break(rig: Rig, pid: str, change: dict[str, Any] | None) -> None:
    path = position_path("u", pid)

    def body(tx: Any) -> None:
        doc = tx.get(path)
        if change is None:
            doc["details"] = "broken"
        else:
            doc["details"].update(change)
        tx.set(path, doc)

    await rig.system.store.transact(body)


@pytest.mark.parametrize("change", BROKEN.values(), ids=list(BROKEN))
async def test_an_unreadable_position_is_passed_over_at_start(
    tmp_path: Path, change: dict[str, Any] | None
) -> None:
    """A restart with an unreadable position in the store loads every other level."""
    rig = await make_rig(tmp_path / "engine.db")
    try:
        await rig.system.accounts.create_user("u", D("100000"))
        rig.price("BTC-USDT", "60000")
        bad = await _open(rig, "59000")
        good = await _open(rig, "59000")
        await _break(rig, bad, change)
    finally:
        await close_rig(rig)
    rig = await make_rig(tmp_path / "engine.db")
    try:
        assert good in rig.engine.book and bad not in rig.engine.book
        rig.ticks("BTC-USDT", "58990")
        await rig.settle()
        assert (await rig.system.positions.get("u", good)).status is PositionStatus.CLOSED
    finally:
        await close_rig(rig)


@pytest.mark.parametrize("change", BROKEN.values(), ids=list(BROKEN))
async def test_an_unreadable_change_does_not_stop_the_follower(
    rig: Rig, change: dict[str, Any] | None
) -> None:
    """The change feed hands the engine an unreadable document: it is skipped, and the
    changes after it still reach the book (the follower keeps running)."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("BTC-USDT", "60000")
    bad = await _open(rig, "59000")
    await rig.synced()
    await _break(rig, bad, change)
    after = await _open(rig, "59000")
    await rig.synced()
    assert not rig.tasks[1].done()
    assert after in rig.engine.book


async def test_an_unreadable_position_is_passed_over_on_a_reload(rig: Rig) -> None:
    """A reload (the feed pruned past the engine's cursor) skips the unreadable document
    and puts every other one back."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("BTC-USDT", "60000")
    bad = await _open(rig, "59000")
    await rig.synced()
    follow = rig.tasks.pop()
    follow.cancel()
    await asyncio.gather(follow, return_exceptions=True)
    stale = rig.engine.cursor
    await _break(rig, bad, {"stopLoss": "abc"})
    good = await _open(rig, "59000")
    await rig.system.store.prune_changes(0)  # type: ignore[attr-defined]
    rig.tasks.append(asyncio.create_task(rig.engine.follow()))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while rig.engine.cursor <= stale:
        assert loop.time() < deadline, "the engine never reloaded"
        assert not rig.tasks[-1].done(), rig.tasks[-1]
        await asyncio.sleep(0.02)
    await rig.synced()
    assert good in rig.engine.book and not rig.tasks[-1].done()
