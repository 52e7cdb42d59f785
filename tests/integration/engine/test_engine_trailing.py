"""Trailing stops through the engine (SPEC 5.2): fired by ticks, opened by triggers, and
their peaks stored from the book."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side, TriggerOp
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.domain.trailing import TrailingStop
from conditions import until

from .conftest import Rig, pause, restart, trailed_long

COMMITS, FEED = 0, 1


async def test_a_trigger_opens_a_trailing_stop_that_the_same_burst_fires(rig: Rig) -> None:
    """The fire's position carries the action's trailing stop: the peak rises to 4100 and
    the burst's next tick at 4100 * 0.97 closes it for `trailing_stop`."""
    await rig.system.accounts.create_user("u", D("10000"))
    await rig.system.triggers.create(
        "u",
        "ETH-USDT",
        Market.SPOT,
        TriggerCondition(TriggerOp.ABOVE, D("4000")),
        TriggerAction(Side.LONG, qty=D("1"), trailing_stop=TrailingStop(D("0.03"))),
    )
    await rig.synced()
    rig.ticks("ETH-USDT", "3990", "4001", "4100", "3977.00000001", "3977")
    await rig.settle()
    [trigger] = await rig.system.triggers.list_for_user("u")
    position = await rig.system.positions.get("u", str(trigger.details.position_id))
    assert position.details.trailing == TrailingStop(D("0.03"))
    assert (position.details.close_reason, position.details.close_price) == (
        CloseReason.TRAILING_STOP,
        D("3977"),
    )
    assert position.status is PositionStatus.CLOSED


async def test_the_engine_stores_the_moving_peak_and_the_api_shows_it(rig: Rig) -> None:
    """A position opened through the service trails in the book; a flush stores the peak
    and the stop, which the position document then shows; a PATCH to a new rate trails
    from the current price and fires at its own stop."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("BTC-USDT", "60000")
    request = OpenRequest(
        "BTC-USDT", Market.SPOT, Side.LONG, qty=D("0.1"), trailing_stop=TrailingStop(D("0.05"))
    )
    pid = str((await rig.system.positions.open("u", request))["id"])
    await rig.synced()
    rig.ticks("BTC-USDT", "61000", "64000", "63000")
    assert await rig.engine.trailing.flush() == 1
    details = (await rig.system.positions.get("u", pid)).details
    assert (details.trailing_peak, details.trailing_stop) == (D("64000"), D("60800"))
    await rig.synced()
    assert rig.engine.book.trailing_state(pid) is not None
    rig.price("BTC-USDT", "63000")
    await rig.system.positions.amend("u", pid, {"trailingStop": TrailingStop(D("0.01"))})

    async def retrailed() -> bool:
        await rig.synced()
        state = rig.engine.book.trailing_state(pid)
        return state is not None and state.spec == TrailingStop(D("0.01"))

    await until(retrailed, what="the PATCHed trailing stop in the book")
    rig.ticks("BTC-USDT", "62370.00000001", "62370")
    await rig.settle()
    position = await rig.system.positions.get("u", pid)
    assert (position.details.close_reason, position.details.close_price) == (
        CloseReason.TRAILING_STOP,
        D("62370"),
    )


async def _fired_trailing_position(rig: Rig, flush_before_commit: bool) -> str:
    """A trigger whose action trails 3% fires at 4001; the burst's next tick raises the
    predicted position's peak to 4100 before its commit, and a writer round may come
    between the two (its compare-and-set finds no document yet)."""
    await rig.system.accounts.create_user("u", D("10000"))
    await rig.system.triggers.create(
        "u",
        "ETH-USDT",
        Market.SPOT,
        TriggerCondition(TriggerOp.ABOVE, D("4000")),
        TriggerAction(Side.LONG, qty=D("1"), trailing_stop=TrailingStop(D("0.03"))),
    )
    await rig.synced()
    rig.ticks("ETH-USDT", "4001", "4100")
    if flush_before_commit:
        assert await rig.engine.trailing.flush() == 0  # no document yet: nothing written
    await rig.settle()
    await rig.synced()
    [trigger] = await rig.system.triggers.list_for_user("u")
    return str(trigger.details.position_id)


async def test_a_fired_triggers_trailing_peak_is_stored_after_its_commit(rig: Rig) -> None:
    pid = await _fired_trailing_position(rig, flush_before_commit=False)
    assert await rig.engine.trailing.flush() == 1
    details = (await rig.system.positions.get("u", pid)).details
    assert (details.trailing_peak, details.trailing_stop) == (D("4100"), D("3977"))


async def test_a_fired_triggers_peak_missed_by_an_early_round_is_stored_by_the_next(
    rig: Rig,
) -> None:
    """The round before the commit wrote nothing; the commit's document (peak 4001) comes
    back through the feed, behind the book: the next round stores 4100."""
    pid = await _fired_trailing_position(rig, flush_before_commit=True)
    stored = (await rig.system.positions.get("u", pid)).details
    assert stored.trailing_peak == D("4001")
    assert await rig.engine.trailing.flush() == 1
    details = (await rig.system.positions.get("u", pid)).details
    assert (details.trailing_peak, details.trailing_stop) == (D("4100"), D("3977"))


@pytest.mark.parametrize("feed_first", [True, False], ids=["feed-first", "commit-first"])
async def test_a_crossing_lost_to_a_patch_keeps_the_books_peak(rig: Rig, feed_first: bool) -> None:
    """The peak rose to 62000 (not stored yet: the store has 60000) and 58950 crossed the
    stop loss, but a PATCH clearing it committed first; judged again, the position stays
    open, trailing from 62000 (stop 58900), not from the stored 60000 (stop 57000): 58900
    closes it, and the store holds 62000 by the writer's next round at the latest."""
    pid = await trailed_long(rig)
    rig.ticks("BTC-USDT", "62000")
    await pause(rig, COMMITS)
    if not feed_first:
        await pause(rig, FEED)
    rig.ticks("BTC-USDT", "58950")
    await rig.system.positions.amend("u", pid, {"stopLoss": None})
    if feed_first:
        await rig.synced()
    restart(rig, COMMITS)
    await rig.settle()
    if not feed_first:
        restart(rig, FEED)
    await rig.synced()
    kept = await rig.system.positions.get("u", pid)
    assert kept.status is PositionStatus.OPEN and kept.details.stop_loss is None
    state = rig.engine.book.trailing_state(pid)
    assert state is not None and state.peak_price() == D("62000")
    await rig.engine.trailing.flush()  # the judging again may have stored it already
    stored = (await rig.system.positions.get("u", pid)).details
    assert (stored.trailing_peak, stored.trailing_stop) == (D("62000"), D("58900"))
    rig.ticks("BTC-USDT", "58900")
    await rig.settle()
    closed = await rig.system.positions.get("u", pid)
    assert (closed.details.close_reason, closed.details.close_price) == (
        CloseReason.TRAILING_STOP,
        D("58900"),
    )
