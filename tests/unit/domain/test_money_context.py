"""Money maths in the project's own Decimal context: the global one cannot change a result."""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cogmora.domain.enums import CloseReason, Market, Side
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.positions import (
    close_fill,
    gross_pnl,
    liquidation_price,
    mark_value,
    open_fill,
    resolve_qty,
)
from cogmora.errors import ValidationError

D = Decimal
FEES = FeeSchedule()
ROUNDINGS = [
    decimal.ROUND_DOWN,
    decimal.ROUND_UP,
    decimal.ROUND_CEILING,
    decimal.ROUND_FLOOR,
    decimal.ROUND_HALF_UP,
    decimal.ROUND_HALF_DOWN,
    decimal.ROUND_05UP,
]


def _amount(low: str, high: str) -> st.SearchStrategy[Decimal]:
    return st.decimals(D(low), D(high), places=8, allow_nan=False, allow_infinity=False)


def _everything(
    market: Market, side: Side, qty: Decimal, price: Decimal, close: Decimal, leverage: Decimal
) -> list[Any]:
    """Every money function's result on one set of inputs (arithmetic only inside them)."""
    side = Side.LONG if market is Market.SPOT else side
    lev = D(1) if market is Market.SPOT else leverage
    fill = open_fill(market, side, qty, price, lev, FEES)
    out: list[Any] = [fill, gross_pnl(side, qty, price, close)]
    try:
        out.append(resolve_qty(None, fill.margin, close))
    except ValidationError as exc:
        out.append(str(exc))
    out.append(liquidation_price(side, price, lev, FEES.maintenance_margin_rate))
    out.append(mark_value(market, side, qty, price, fill.margin, close))
    for reason in (CloseReason.STOP_LOSS, CloseReason.LIQUIDATION):
        out.append(
            close_fill(market, side, qty, price, fill.margin, fill.fee_open, close, reason, FEES)
        )
    return out


def test_open_fill_keeps_its_margin_at_global_precision_6() -> None:
    """A global precision of 6 would make this margin 80780.4 (it is 80780.38487685)."""
    args = (Market.FUTURES, Side.LONG, D("1.23456789"), D("654321.12345678"), D(10), FEES)
    with decimal.localcontext(prec=6):
        assert D("1.23456789") * D("654321.12345678") / 10 == D("80780.4")  # the hazard
        fill = open_fill(*args)
    assert fill.margin == D("80780.38487685") == open_fill(*args).margin


@settings(max_examples=200, deadline=None)
@given(
    market=st.sampled_from(list(Market)),
    side=st.sampled_from(list(Side)),
    qty=_amount("0.00000001", "100000"),
    price=_amount("0.00000001", "10000000"),
    close=_amount("0.00000001", "10000000"),
    leverage=st.integers(1, 125).map(D),
    prec=st.integers(1, 30),
    rounding=st.sampled_from(ROUNDINGS),
)
def test_results_do_not_depend_on_the_global_context(
    market: Market,
    side: Side,
    qty: Decimal,
    price: Decimal,
    close: Decimal,
    leverage: Decimal,
    prec: int,
    rounding: str,
) -> None:
    """Opening, closing, liquidation, marking and sizing give identical results under any
    global precision and rounding mode."""
    expected = _everything(market, side, qty, price, close, leverage)
    with decimal.localcontext(prec=prec, rounding=rounding):
        got = _everything(market, side, qty, price, close, leverage)
    assert got == expected
