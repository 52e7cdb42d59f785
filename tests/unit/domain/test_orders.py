"""Orders from any source become positions by the same rules and the same maths."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from cogmora.domain.enums import Market, PositionStatus, Side, Source, TriggerOp
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest, build_position, precheck
from cogmora.errors import ValidationError

FEES = FeeSchedule()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_futures_order_builds_the_position_document_fields() -> None:
    """A futures long x10 of 2 at 3000 carries margin 600, fee 3.6, liq 2715 and its levels."""
    request = OpenRequest(
        "XBTUSDTM", Market.FUTURES, Side.LONG, qty=D(2), leverage=D(10),
        stop_loss=D(2800), take_profit=D(3300),
    )
    p = build_position(request, "alice", "p1", D(3000), FEES, NOW)
    assert (p.uid, p.id, p.symbol, p.market, p.side) == (
        "alice", "p1", "XBTUSDTM", Market.FUTURES, Side.LONG
    )
    assert (p.qty, p.entry_price, p.leverage, p.margin, p.fee_open) == (
        D(2), D(3000), D(10), D(600), D("3.6")
    )
    assert p.details.status is PositionStatus.OPEN
    assert p.details.liquidation_price == D(2715)
    assert (p.details.stop_loss, p.details.take_profit) == (D(2800), D(3300))
    assert p.opened_at == NOW
    assert p.source is Source.API


def test_spot_order_by_notional_buys_what_it_pays_for() -> None:
    """Spot notional 100 at 30000 buys 0.00333333 and locks 99.9999 plus fee 0.0999999."""
    request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, notional=D(100))
    p = build_position(request, "alice", "p1", D(30000), FEES, NOW)
    assert p.qty == D("0.00333333")
    assert p.margin == D("99.9999")
    assert p.fee_open == D("0.0999999")
    assert p.margin + p.fee_open <= D(100) * (1 + FEES.spot_taker)
    assert p.details.liquidation_price is None


def test_stop_loss_beyond_liquidation_is_refused_at_open() -> None:
    """A x10 long at 3000 liquidates at 2715, so a stop loss at 2700 could never fire."""
    request = OpenRequest(
        "XBTUSDTM", Market.FUTURES, Side.LONG, qty=D(1), leverage=D(10), stop_loss=D(2700)
    )
    with pytest.raises(ValidationError) as info:
        build_position(request, "alice", "p1", D(3000), FEES, NOW)
    assert info.value.field == "stopLoss"
    assert str(info.value) == (
        "stopLoss must be above the liquidation price 2715.00000000 for a long"
    )


def test_stop_loss_is_checked_against_the_fill_price() -> None:
    """A long's stop loss at or above the fill price is refused, naming the entry price."""
    request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D(1), stop_loss=D(50000))
    with pytest.raises(ValidationError, match="stopLoss must be below the entry price for a long"):
        build_position(request, "alice", "p1", D(50000), FEES, NOW)


def test_precheck_validates_against_the_trigger_price() -> None:
    """A trigger's order is checked against its own level and names it."""
    request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D(1), take_profit=D(3900))
    with pytest.raises(
        ValidationError, match="takeProfit must be above the trigger price for a long"
    ):
        precheck(request, D(4000), FEES, "trigger price")
    precheck(
        OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D(1), take_profit=D(4100)),
        D(4000), FEES, "trigger price",
    )


def test_precheck_refuses_what_could_never_open() -> None:
    """Spot shorts, bad leverage and missing quantities are refused when placed."""
    cases = [
        (OpenRequest("BTC-USDT", Market.SPOT, Side.SHORT, qty=D(1)), "side"),
        (OpenRequest("XBTUSDTM", Market.FUTURES, Side.LONG, qty=D(1), leverage=D(500)),
         "leverage"),
        (OpenRequest("XBTUSDTM", Market.FUTURES, Side.LONG), "qty"),
    ]
    for request, field in cases:
        with pytest.raises(ValidationError) as info:
            precheck(request, D(100), FEES, "trigger price")
        assert info.value.field == field


def test_from_action_carries_the_trigger_identity() -> None:
    """An order from a trigger keeps the trigger's id and source."""
    action = TriggerAction(Side.SHORT, qty=D(1), leverage=D(5), stop_loss=D(110))
    request = OpenRequest.from_action("ETHUSDTM", Market.FUTURES, action, "t1")
    p = build_position(request, "bob", "p9", D(100), FEES, NOW)
    assert p.trigger_id == "t1"
    assert p.source is Source.TRIGGER
    assert p.side is Side.SHORT
    assert p.details.stop_loss == D(110)
    assert TriggerCondition(TriggerOp.ABOVE, D(1)).op is TriggerOp.ABOVE
