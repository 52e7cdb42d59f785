"""SPEC 5.1 on a real engine and SQLite: a crossing commits only against the level it
crossed; a PATCH that committed first wins and the crossing is judged again at its price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side, TriggerOp, TriggerStatus
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.domain.paths import trigger_path
from cogmora.errors import Conflict
from cogmora.store.port import Tx

from .conftest import Rig, book_matches_store, pause, restart

D = Decimal
COMMITS, FEED = 0, 1


async def open_long(rig: Rig, **levels: str) -> str:
    doc = await rig.system.positions.open(
        "u",
        OpenRequest(
            "BTC-USDT",
            Market.SPOT,
            Side.LONG,
            qty=D("0.1"),
            stop_loss=D(levels["sl"]) if "sl" in levels else None,
            take_profit=D(levels["tp"]) if "tp" in levels else None,
        ),
    )
    await rig.synced()
    return str(doc["id"])


async def race(rig: Rig, tick: str, change: Any, feed_first: bool) -> None:
    """The tick takes the level out of the book, `change` commits, then the crossing
    commits; the change's feed entry reaches the book before or after that commit."""
    await pause(rig, COMMITS)
    if not feed_first:
        await pause(rig, FEED)
    rig.ticks("BTC-USDT", tick)
    await change()
    if feed_first:
        await rig.synced()
    restart(rig, COMMITS)
    await rig.settle()
    if not feed_first:
        restart(rig, FEED)
    await rig.synced()
    await book_matches_store(rig)


@pytest.fixture
async def user(rig: Rig) -> Rig:
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("BTC-USDT", "60000")
    return rig


@pytest.mark.parametrize("feed_first", [True, False], ids=["feed-first", "commit-first"])
async def test_a_cleared_stop_committed_before_the_crossing_keeps_the_position_open(
    user: Rig, feed_first: bool
) -> None:
    """`PATCH {"stopLoss": null}` that wins the race: the position stays open, unstopped."""
    rig = user
    pid = await open_long(rig, sl="59000")
    await race(
        rig, "58900", lambda: rig.system.positions.amend("u", pid, {"stopLoss": None}), feed_first
    )
    position = await rig.system.positions.get("u", pid)
    assert position.status is PositionStatus.OPEN
    assert position.details.stop_loss is None
    assert position.details.close_reason is None


@pytest.mark.parametrize("feed_first", [True, False], ids=["feed-first", "commit-first"])
async def test_a_lowered_stop_is_judged_again_and_fires_later_at_its_own_level(
    user: Rig, feed_first: bool
) -> None:
    """A stop moved below the tick keeps the position open; the next tick through it closes it."""
    rig = user
    pid = await open_long(rig, sl="59000")
    await race(
        rig,
        "58900",
        lambda: rig.system.positions.amend("u", pid, {"stopLoss": D("58500")}),
        feed_first,
    )
    assert (await rig.system.positions.get("u", pid)).status is PositionStatus.OPEN
    rig.ticks("BTC-USDT", "58400")
    await rig.settle()
    position = await rig.system.positions.get("u", pid)
    assert position.details.close_reason is CloseReason.STOP_LOSS
    assert position.details.close_price == D("58400")
    assert position.details.stop_loss == D("58500")


@pytest.mark.parametrize("feed_first", [True, False], ids=["feed-first", "commit-first"])
async def test_a_raised_stop_the_tick_still_reaches_closes_with_the_new_level(
    user: Rig, feed_first: bool
) -> None:
    """A stop moved up to 59500 (checked against a quote of 60000) that the tick at 58900
    still reaches: closed for the stop loss, at the tick, with the new level."""
    rig = user
    pid = await open_long(rig, sl="59000")

    async def raise_stop() -> None:
        rig.price("BTC-USDT", "60000")  # the API's quote, older than the crossing tick
        await rig.system.positions.amend("u", pid, {"stopLoss": D("59500")})

    await race(rig, "58900", raise_stop, feed_first)
    [closed] = await rig.system.positions.history("u")
    assert (closed["closeReason"], closed["closePrice"]) == ("stop_loss", "58900.00000000")
    assert closed["details"]["stopLoss"] == "59500.00000000"


@pytest.mark.parametrize("feed_first", [True, False], ids=["feed-first", "commit-first"])
async def test_a_cleared_take_profit_committed_first_keeps_the_position_open(
    user: Rig, feed_first: bool
) -> None:
    """`PATCH {"takeProfit": null}` that wins: the take-profit tick closes nothing."""
    rig = user
    pid = await open_long(rig, sl="59000", tp="61000")
    await race(
        rig,
        "61100",
        lambda: rig.system.positions.amend("u", pid, {"takeProfit": None}),
        feed_first,
    )
    position = await rig.system.positions.get("u", pid)
    assert position.status is PositionStatus.OPEN
    assert position.details.take_profit is None
    rig.ticks("BTC-USDT", "58000")  # the stop loss is still armed
    await rig.settle()
    closed = await rig.system.positions.get("u", pid)
    assert closed.details.close_reason is CloseReason.STOP_LOSS


async def test_a_patch_of_a_closing_or_closed_position_is_a_conflict_naming_its_status(
    user: Rig,
) -> None:
    """After the stop fired, PATCH is 409 and says the position is closing (or closed)."""
    rig = user
    pid = await open_long(rig, sl="59000")
    await pause(rig, COMMITS)
    rig.ticks("BTC-USDT", "58900")
    restart(rig, COMMITS)
    await rig.engine.drained()
    with pytest.raises(Conflict, match=f"position {pid} is closing, not open"):
        await rig.system.positions.amend("u", pid, {"stopLoss": None})
    await rig.settle()
    with pytest.raises(Conflict, match=f"position {pid} is closed, not open"):
        await rig.system.positions.amend("u", pid, {"stopLoss": None})
    position = await rig.system.positions.get("u", pid)
    assert (position.details.close_reason, position.details.stop_loss) == (
        CloseReason.STOP_LOSS,
        D("59000"),
    )


@pytest.mark.parametrize("feed_first", [True, False], ids=["feed-first", "commit-first"])
async def test_a_trigger_whose_condition_changed_is_judged_again_at_the_tick(
    user: Rig, feed_first: bool
) -> None:
    """A trigger moved from below 59000 to below 58000 does not fire at 58900, fires at 57900."""
    rig = user
    doc = await rig.system.triggers.create(
        "u",
        "BTC-USDT",
        Market.SPOT,
        TriggerCondition(TriggerOp.BELOW, D("59000")),
        TriggerAction(Side.LONG, qty=D("0.1")),
    )
    tid = str(doc["id"])
    await rig.synced()

    async def move() -> None:
        def body(tx: Tx) -> None:
            stored = tx.get(trigger_path("u", tid))
            assert stored is not None
            stored["condition"]["price"] = "58000.00000000"
            tx.set(trigger_path("u", tid), stored)

        await rig.system.store.transact(body)

    await race(rig, "58900", move, feed_first)
    assert (await rig.system.triggers.get("u", tid)).status is TriggerStatus.ACTIVE
    rig.ticks("BTC-USDT", "57900")
    await rig.settle()
    fired = await rig.system.triggers.get("u", tid)
    assert (fired.status, fired.details.fired_price) == (TriggerStatus.TRIGGERED, D("57900"))
