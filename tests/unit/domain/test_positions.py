"""SPEC section 4 against numbers worked out by hand (spot taker 0.001, futures 0.0006, m 0.005).

Each case states the hand computation in its docstring or comments, so a reader can check
the arithmetic without running anything.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cogmora.domain.enums import CloseReason, LedgerKind, Market, Side
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.positions import (
    check_leverage,
    check_side,
    close_fill,
    gross_pnl,
    liquidation_price,
    mark_value,
    open_fill,
    resolve_qty,
    validate_levels,
)
from cogmora.errors import ValidationError

FEES = FeeSchedule()


# ---------------------------------------------------------------- spot long


def test_spot_open_debits_notional_plus_taker_fee() -> None:
    """Spot 0.5 at 40000: notional 20000, fee 20, balance -= 20020."""
    fill = open_fill(Market.SPOT, Side.LONG, D("0.5"), D("40000"), D(1), FEES)
    assert fill.margin == D("20000")
    assert fill.fee_open == D("20")
    assert fill.debit == D("20020")
    assert fill.liquidation_price is None
    assert fill.ledger() == [(LedgerKind.OPEN, D("-20000")), (LedgerKind.FEE, D("-20"))]


def test_spot_close_at_a_gain_matches_spec() -> None:
    """Spot 0.5 from 40000 to 42000: +21000 - 21 fee = 20979; pnl 1000 - 20 - 21 = 959."""
    fill = close_fill(
        Market.SPOT, Side.LONG, D("0.5"), D("40000"), D("20000"), D("20"),
        D("42000"), CloseReason.TAKE_PROFIT, FEES,
    )
    assert fill.payout == D("20979")
    assert fill.fee_close == D("21")
    assert fill.realized_pnl == D("959")
    assert fill.ledger == ((LedgerKind.CLOSE, D("21000")), (LedgerKind.FEE, D("-21")))


def test_spot_close_at_a_loss_matches_spec() -> None:
    """Spot 0.5 from 40000 to 38000: +19000 - 19 = 18981; pnl -1000 - 20 - 19 = -1039."""
    fill = close_fill(
        Market.SPOT, Side.LONG, D("0.5"), D("40000"), D("20000"), D("20"),
        D("38000"), CloseReason.STOP_LOSS, FEES,
    )
    assert fill.payout == D("18981")
    assert fill.fee_close == D("19")
    assert fill.realized_pnl == D("-1039")


def test_spot_realized_pnl_equals_the_spec_formula_for_awkward_numbers() -> None:
    """qty*(x-e) - qty*e*fee - qty*x*fee, quantized once, for prices that do not divide."""
    qty, e, x = D("0.01234567"), D("61234.56"), D("62345.67")
    fill = open_fill(Market.SPOT, Side.LONG, qty, e, D(1), FEES)
    close = close_fill(
        Market.SPOT, Side.LONG, qty, e, fill.margin, fill.fee_open, x, CloseReason.MANUAL, FEES
    )
    exact = qty * (x - e) - qty * e * FEES.spot_taker - qty * x * FEES.spot_taker
    # each stored amount is quantized on its own, so the sum may be off by one unit per leg
    assert abs(close.realized_pnl - exact) <= D("0.00000004")
    assert close.realized_pnl == close.payout - fill.margin - fill.fee_open


# ---------------------------------------------------------------- futures


def test_futures_long_open_locks_margin_and_fee() -> None:
    """Long 2 at 3000 x10: margin 600, fee 6000*0.0006 = 3.6, liq 3000*(1-0.1+0.005) = 2715."""
    fill = open_fill(Market.FUTURES, Side.LONG, D(2), D(3000), D(10), FEES)
    assert fill.margin == D("600")
    assert fill.fee_open == D("3.6")
    assert fill.debit == D("603.6")
    assert fill.liquidation_price == D("2715")


def test_futures_long_close_at_a_gain_matches_spec() -> None:
    """Long 2 from 3000 to 3150: g 300, fee 3.78, payout 896.22, pnl 896.22-600-3.6 = 292.62."""
    fill = close_fill(
        Market.FUTURES, Side.LONG, D(2), D(3000), D(600), D("3.6"),
        D(3150), CloseReason.TAKE_PROFIT, FEES,
    )
    assert fill.fee_close == D("3.78")
    assert fill.payout == D("896.22")
    assert fill.realized_pnl == D("292.62")
    assert fill.ledger == ((LedgerKind.CLOSE, D("900")), (LedgerKind.FEE, D("-3.78")))


def test_futures_short_open_and_close_at_a_gain_match_spec() -> None:
    """Short 2 at 3000 x5: margin 1200, fee 3.6, liq 3585; close 2900: g 200, fee 3.48,
    payout 1396.52, pnl 192.92."""
    opened = open_fill(Market.FUTURES, Side.SHORT, D(2), D(3000), D(5), FEES)
    assert (opened.margin, opened.fee_open) == (D(1200), D("3.6"))
    assert opened.liquidation_price == D("3585")
    fill = close_fill(
        Market.FUTURES, Side.SHORT, D(2), D(3000), D(1200), D("3.6"),
        D(2900), CloseReason.TAKE_PROFIT, FEES,
    )
    assert fill.fee_close == D("3.48")
    assert fill.payout == D("1396.52")
    assert fill.realized_pnl == D("192.92")


def test_futures_short_close_at_a_loss_matches_spec() -> None:
    """Short 2 from 3000 to 3100 x5: g -200, fee 3.72, payout 996.28, pnl -207.32."""
    fill = close_fill(
        Market.FUTURES, Side.SHORT, D(2), D(3000), D(1200), D("3.6"),
        D(3100), CloseReason.STOP_LOSS, FEES,
    )
    assert fill.fee_close == D("3.72")
    assert fill.payout == D("996.28")
    assert fill.realized_pnl == D("-207.32")


def test_liquidation_pays_nothing_and_loses_margin_and_open_fee() -> None:
    """A liquidated long (margin 600, fee 3.6) pays 0 and realizes -603.6."""
    fill = close_fill(
        Market.FUTURES, Side.LONG, D(2), D(3000), D(600), D("3.6"),
        D(2715), CloseReason.LIQUIDATION, FEES,
    )
    assert fill.payout == 0
    assert fill.fee_close == 0
    assert fill.realized_pnl == D("-603.6")
    assert sum(amount for _, amount in fill.ledger) == 0


def test_futures_loss_beyond_the_margin_pays_zero_not_a_debit() -> None:
    """Long 2 from 3000 x10 closed by a gap at 2600: margin+g = -200, payout max(0, .) = 0."""
    fill = close_fill(
        Market.FUTURES, Side.LONG, D(2), D(3000), D(600), D("3.6"),
        D(2600), CloseReason.STOP_LOSS, FEES,
    )
    assert fill.payout == 0
    assert fill.realized_pnl == D("-603.6")
    assert all(amount >= -0 for kind, amount in fill.ledger if kind is LedgerKind.CLOSE)


def test_futures_fee_is_capped_by_what_is_left_of_the_margin() -> None:
    """Long 2 from 3000 x10 at 2700.5: margin+g = 1 < fee 3.2406, so payout 0 and fee 1."""
    fill = close_fill(
        Market.FUTURES, Side.LONG, D(2), D(3000), D(600), D("3.6"),
        D("2700.5"), CloseReason.STOP_LOSS, FEES,
    )
    assert fill.payout == 0
    assert fill.fee_close == D(1)
    assert fill.realized_pnl == D("-603.6")


@pytest.mark.parametrize(
    ("side", "leverage", "entry", "liq"),
    [
        (Side.LONG, D(1), D(1000), D(5)),  # 1000*(1-1+0.005)
        (Side.LONG, D(10), D(1000), D(905)),  # 1000*(0.905)
        (Side.LONG, D(125), D(1000), D(997)),  # 1000*(1-0.008+0.005)
        (Side.SHORT, D(1), D(1000), D(1995)),  # 1000*(1+1-0.005)
        (Side.SHORT, D(10), D(1000), D(1095)),
        (Side.SHORT, D(3), D(100), D("132.83333333")),  # 100*(1+1/3-0.005), half-even
    ],
)
def test_liquidation_price_formula(side: Side, leverage: D, entry: D, liq: D) -> None:
    """Long e*(1 - 1/L + m), short e*(1 + 1/L - m), stored at 8 places."""
    assert liquidation_price(side, entry, leverage, D("0.005")) == liq


def test_gross_pnl_and_mark_value() -> None:
    """Gross P&L is signed by side; a futures position is never worth less than 0."""
    assert gross_pnl(Side.LONG, D(2), D(100), D(110)) == D(20)
    assert gross_pnl(Side.SHORT, D(2), D(100), D(110)) == D(-20)
    assert mark_value(Market.SPOT, Side.LONG, D(2), D(100), D(200), D(90)) == D(180)
    assert mark_value(Market.FUTURES, Side.LONG, D(2), D(100), D(20), D(95)) == D(10)
    assert mark_value(Market.FUTURES, Side.LONG, D(2), D(100), D(20), D(50)) == 0


# ---------------------------------------------------------------- validation


def test_resolve_qty_from_notional_rounds_down() -> None:
    """1000 USDT at 30000 buys 0.03333333, never a fraction more than it pays for."""
    assert resolve_qty(None, D(1000), D(30000)) == D("0.03333333")
    assert resolve_qty(D("0.5"), None, D(30000)) == D("0.5")


@pytest.mark.parametrize(
    ("qty", "notional", "field", "message"),
    [
        (None, None, "qty", "exactly one of qty and notional must be given"),
        (D(1), D(1), "qty", "exactly one of qty and notional must be given"),
        (D(0), None, "qty", "qty must be greater than 0"),
        (D(-1), None, "qty", "qty must be greater than 0"),
        (None, D(0), "notional", "notional must be greater than 0"),
        (None, D("0.0000001"), "notional", "notional is too small to buy any quantity at 30000"),
    ],
)
def test_resolve_qty_refusals(qty: D | None, notional: D | None, field: str, message: str) -> None:
    """Quantity rules name the field they break."""
    with pytest.raises(ValidationError) as info:
        resolve_qty(qty, notional, D(30000))
    assert (info.value.field, str(info.value)) == (field, message)


@pytest.mark.parametrize("qty", [D("1.123456789"), D("0.000000001")])
def test_qty_finer_than_storage_precision_is_refused(qty: D) -> None:
    """A qty with more than 8 places is refused: it would be stored rounded, and the close
    would pay for a different quantity than the open charged for."""
    with pytest.raises(ValidationError) as info:
        resolve_qty(qty, None, D(50000))
    assert info.value.field == "qty"
    assert str(info.value) == "qty must have at most 8 decimal places"


def test_leverage_rules() -> None:
    """Spot is unlevered; futures take a whole leverage from 1 to 125, default 1."""
    assert check_leverage(Market.SPOT, None, FEES) == 1
    assert check_leverage(Market.SPOT, D(1), FEES) == 1
    assert check_leverage(Market.FUTURES, None, FEES) == 1
    assert check_leverage(Market.FUTURES, D("10.0"), FEES) == 10
    assert check_leverage(Market.FUTURES, D(125), FEES) == 125
    with pytest.raises(ValidationError, match="leverage must be 1 for spot"):
        check_leverage(Market.SPOT, D(2), FEES)
    for bad in (D(0), D("2.5"), D(126), D(-3)):
        with pytest.raises(ValidationError, match="leverage must be a whole number from 1 to 125"):
            check_leverage(Market.FUTURES, bad, FEES)


def test_spot_cannot_be_short() -> None:
    """Spot is long only."""
    with pytest.raises(ValidationError, match="side must be long for spot"):
        check_side(Market.SPOT, Side.SHORT)
    check_side(Market.FUTURES, Side.SHORT)


@pytest.mark.parametrize(
    ("side", "sl", "tp", "liq", "message"),
    [
        (Side.LONG, D(101), None, None, "stopLoss must be below the entry price for a long"),
        (Side.LONG, D(100), None, None, "stopLoss must be below the entry price for a long"),
        (Side.LONG, None, D(99), None, "takeProfit must be above the entry price for a long"),
        (Side.SHORT, D(99), None, None, "stopLoss must be above the entry price for a short"),
        (Side.SHORT, None, D(101), None, "takeProfit must be below the entry price for a short"),
        (Side.LONG, D(90), None, D(91),
         "stopLoss must be above the liquidation price 91 for a long"),
        (Side.SHORT, D(110), None, D(109),
         "stopLoss must be below the liquidation price 109 for a short"),
        (Side.LONG, D(-1), None, None, "stopLoss must be greater than 0"),
        (Side.SHORT, None, D(0), None, "takeProfit must be greater than 0"),
    ],
)
def test_stop_loss_and_take_profit_rules(
    side: Side, sl: D | None, tp: D | None, liq: D | None, message: str
) -> None:
    """SL/TP sit on the losing/winning side of the reference, inside liquidation."""
    with pytest.raises(ValidationError) as info:
        validate_levels(side, D(100), sl, tp, liq)
    assert str(info.value) == message


@pytest.mark.parametrize(("sl", "tp"), [(D("1e-30"), None), (None, D("100.000000001"))])
def test_levels_finer_than_storage_precision_are_refused(sl: D | None, tp: D | None) -> None:
    """A level with more than 8 places would be stored rounded, perhaps onto the entry."""
    with pytest.raises(ValidationError, match="must have at most 8 decimal places"):
        validate_levels(Side.LONG, D(100), sl, tp, None)


def test_levels_on_the_right_sides_pass() -> None:
    """Sensible levels are accepted for both sides."""
    validate_levels(Side.LONG, D(100), D(95), D(110), D(91))
    validate_levels(Side.SHORT, D(100), D(105), D(90), D(109))
    validate_levels(Side.LONG, D(100), None, None, None)
