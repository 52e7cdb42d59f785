"""Trailing stops through the engine (SPEC 5.2): fired by ticks, opened by triggers, and
their peaks stored from the book."""

from __future__ import annotations

from decimal import Decimal as D

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side, TriggerOp
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.domain.trailing import TrailingStop
from conditions import until

from .conftest import Rig


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
