"""Opening and closing maths for spot and linear futures positions (SPEC section 4).

Every formula lives here once; the API, the trigger engine, the agent and settlement all
call these functions. Results are quantized because they are what gets stored, and the
ledger only sums to the balance if every stored amount is the amount that moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cogmora.domain.enums import CloseReason, LedgerKind, Market, Side
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.money import (
    ONE,
    ZERO,
    in_money_context,
    quantize,
    quantize_down,
    require_places,
)
from cogmora.errors import ValidationError


@dataclass(frozen=True, slots=True)
class OpenFill:
    """What an open costs. `margin` is the capital locked: qty*e/L for futures, qty*e for spot."""

    qty: Decimal
    entry_price: Decimal
    leverage: Decimal
    margin: Decimal
    fee_open: Decimal
    liquidation_price: Decimal | None

    @property
    def debit(self) -> Decimal:
        return self.margin + self.fee_open

    def ledger(self) -> list[tuple[LedgerKind, Decimal]]:
        return open_ledger(self.margin, self.fee_open)


def open_ledger(margin: Decimal, fee_open: Decimal) -> list[tuple[LedgerKind, Decimal]]:
    """An open books its margin and its fee as two entries, so fees are visible in the ledger."""
    return [(LedgerKind.OPEN, -margin), (LedgerKind.FEE, -fee_open)]


@dataclass(frozen=True, slots=True)
class CloseFill:
    """What a close pays. `payout` is what the balance gains; `fee_close` what was charged."""

    close_price: Decimal
    reason: CloseReason
    payout: Decimal
    fee_close: Decimal
    realized_pnl: Decimal
    ledger: tuple[tuple[LedgerKind, Decimal], ...]


def check_size(qty: Decimal | None, notional: Decimal | None) -> None:
    """Exactly one of qty and notional, positive; a qty exact at the stored 8 places (stored
    rounded, the close would pay for a different qty than the open charged)."""
    if (qty is None) == (notional is None):
        raise ValidationError("qty", "exactly one of qty and notional must be given")
    for name, value in (("qty", qty), ("notional", notional)):
        if value is not None and (not value.is_finite() or value <= 0):
            raise ValidationError(name, f"{name} must be greater than 0")
    if qty is not None:
        require_places(qty, "qty")


def check_level(name: str, level: Decimal | None) -> None:
    """A level is positive and exact at 8 places: stored rounded, a level just past the entry
    could land on it, or a tiny one on 0."""
    if level is not None:
        if not level.is_finite() or level <= 0:
            raise ValidationError(name, f"{name} must be greater than 0")
        require_places(level, name)


@in_money_context
def resolve_qty(qty: Decimal | None, notional: Decimal | None, price: Decimal) -> Decimal:
    """The quantity to fill; a notional buys at most what it pays for."""
    check_size(qty, notional)
    if qty is not None:
        return qty
    assert notional is not None
    resolved = quantize_down(notional / price)
    if resolved <= 0:
        raise ValidationError("notional", f"notional is too small to buy any quantity at {price}")
    return resolved


@in_money_context
def check_leverage(market: Market, leverage: Decimal | None, fees: FeeSchedule) -> Decimal:
    """Spot is unlevered; futures take a whole leverage from 1 to the configured maximum."""
    if market is Market.SPOT:
        if leverage is not None and leverage != ONE:
            raise ValidationError("leverage", "leverage must be 1 for spot")
        return ONE
    if leverage is None:
        return ONE
    if leverage != leverage.to_integral_value() or not ONE <= leverage <= fees.max_leverage:
        raise ValidationError(
            "leverage", f"leverage must be a whole number from 1 to {fees.max_leverage}"
        )
    return Decimal(int(leverage))


def check_side(market: Market, side: Side) -> None:
    if market is Market.SPOT and side is Side.SHORT:
        raise ValidationError("side", "side must be long for spot")


@in_money_context
def liquidation_price(side: Side, entry: Decimal, leverage: Decimal, mmr: Decimal) -> Decimal:
    """Long `e*(1 - 1/L + m)`, short `e*(1 + 1/L - m)`."""
    if side is Side.LONG:
        return quantize(entry * (ONE - ONE / leverage + mmr))
    return quantize(entry * (ONE + ONE / leverage - mmr))


@in_money_context
def open_fill(
    market: Market,
    side: Side,
    qty: Decimal,
    price: Decimal,
    leverage: Decimal,
    fees: FeeSchedule,
) -> OpenFill:
    check_side(market, side)
    notional = qty * price
    margin = quantize(notional / leverage)
    fee_open = quantize(notional * fees.taker(market))
    liq = (
        liquidation_price(side, price, leverage, fees.maintenance_margin_rate)
        if market is Market.FUTURES
        else None
    )
    return OpenFill(qty, price, leverage, margin, fee_open, liq)


@in_money_context
def gross_pnl(side: Side, qty: Decimal, entry: Decimal, price: Decimal) -> Decimal:
    """Price move times quantity, before fees: `qty*(x-e)` long, `qty*(e-x)` short."""
    return _gross(side, qty, entry, price)


def close_amounts(
    market: Market,
    side: Side,
    qty: Decimal,
    entry: Decimal,
    margin: Decimal,
    fee_open: Decimal,
    close_price: Decimal,
    liquidation: bool,
    taker: Decimal,
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """`(credit, fee_close, payout, realized_pnl)` of a close; `close_fill`'s maths, unwrapped.

    The caller must already run in MONEY_CONTEXT (`in_money_context`): settlement runs a
    whole batch in it once, rather than swapping the thread's context for each position.
    """
    if liquidation:
        return ZERO, ZERO, ZERO, -margin - fee_open
    if market is Market.SPOT:
        credit = quantize(qty * close_price)
    else:
        credit = max(ZERO, quantize(margin + _gross(side, qty, entry, close_price)))
    fee_close = min(credit, quantize(qty * close_price * taker))
    payout = credit - fee_close
    return credit, fee_close, payout, payout - margin - fee_open


def _gross(side: Side, qty: Decimal, entry: Decimal, price: Decimal) -> Decimal:
    return qty * (price - entry) if side is Side.LONG else qty * (entry - price)


def close_ledger(
    liquidation: bool, credit: Decimal, fee_close: Decimal
) -> tuple[tuple[LedgerKind, Decimal], ...]:
    """The credit and the fee as two entries, so that the ledger shows the fee; a
    liquidation books one entry of 0 (the margin was debited at the open)."""
    if liquidation:
        return ((LedgerKind.LIQUIDATION, ZERO),)
    return ((LedgerKind.CLOSE, credit), (LedgerKind.FEE, -fee_close))


@in_money_context
def close_fill(
    market: Market,
    side: Side,
    qty: Decimal,
    entry: Decimal,
    margin: Decimal,
    fee_open: Decimal,
    close_price: Decimal,
    reason: CloseReason,
    fees: FeeSchedule,
) -> CloseFill:
    """Settle at `close_price`. A liquidation pays nothing; otherwise the payout is floored at 0.

    The credit and the fee are booked separately so that the ledger shows the fee; when a
    loss has eaten the margin the fee is charged only up to what is left, which keeps
    `payout = max(0, margin + g - feeClose)` and never takes more than the margin.
    """
    liquidation = reason is CloseReason.LIQUIDATION
    credit, fee_close, payout, pnl = close_amounts(
        market, side, qty, entry, margin, fee_open, close_price, liquidation, fees.taker(market)
    )
    return CloseFill(
        close_price, reason, payout, fee_close, pnl, close_ledger(liquidation, credit, fee_close)
    )


@in_money_context
def mark_value(
    market: Market, side: Side, qty: Decimal, entry: Decimal, margin: Decimal, price: Decimal
) -> Decimal:
    """What the position is worth to the account at `price`, before closing fees."""
    if market is Market.SPOT:
        return qty * price
    return max(ZERO, margin + gross_pnl(side, qty, entry, price))


def validate_levels(
    side: Side,
    reference: Decimal,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    liquidation: Decimal | None,
    reference_name: str = "entry price",
) -> None:
    """SL/TP must sit on the losing/winning side of the reference and inside liquidation.

    A stop loss beyond the liquidation price could never fire, so a user who set one would
    believe they were protected when they were not: that is refused, not silently kept.
    """
    side_name = "a long" if side is Side.LONG else "a short"
    below, above = ("below", "above") if side is Side.LONG else ("above", "below")
    check_level("stopLoss", stop_loss)
    check_level("takeProfit", take_profit)
    if stop_loss is not None:
        beyond = stop_loss >= reference if side is Side.LONG else stop_loss <= reference
        if beyond:
            raise ValidationError(
                "stopLoss", f"stopLoss must be {below} the {reference_name} for {side_name}"
            )
        if liquidation is not None:
            past_liq = stop_loss <= liquidation if side is Side.LONG else stop_loss >= liquidation
            if past_liq:
                raise ValidationError(
                    "stopLoss",
                    f"stopLoss must be {above} the liquidation price {liquidation} for {side_name}",
                )
    if take_profit is not None:
        beyond = take_profit <= reference if side is Side.LONG else take_profit >= reference
        if beyond:
            raise ValidationError(
                "takeProfit", f"takeProfit must be {above} the {reference_name} for {side_name}"
            )
