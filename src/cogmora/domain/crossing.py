"""The crossing rules of SPEC section 5, once, as plain functions over one position or trigger.

The trigger book indexes levels by the direction in which they fire (`direction`), and
anything that must decide about a single document (the engine re-checking a hit against
the document it just read, the naive benchmark, tests) calls `position_reason` or
`trigger_fires`, so the rule that a level fires *at* its price, and the order of reasons
when a gap crosses several levels, live here and nowhere else.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum

from cogmora.domain.enums import CloseReason, Side, TriggerOp
from cogmora.domain.ticks import PriceKind


class Reason(IntEnum):
    """Why an entry left the book; lower is worse for the user, so `min` picks the reason."""

    LIQUIDATION = 0
    STOP_LOSS = 1
    TRAILING_STOP = 2  # ranks with the stop loss (SPEC 5.2), just after it
    TAKE_PROFIT = 3
    TRIGGER = 4


class Direction(IntEnum):
    """Which side of its level a price must reach for the level to fire (equality fires)."""

    AT_OR_BELOW = 0
    AT_OR_ABOVE = 1


_CLOSE_REASONS = {
    Reason.LIQUIDATION: CloseReason.LIQUIDATION,
    Reason.STOP_LOSS: CloseReason.STOP_LOSS,
    Reason.TAKE_PROFIT: CloseReason.TAKE_PROFIT,
    Reason.TRAILING_STOP: CloseReason.TRAILING_STOP,
}


def close_reason(reason: Reason) -> CloseReason:
    """The stored `closeReason` of a position closed for `reason` (a trigger has none)."""
    try:
        return _CLOSE_REASONS[reason]
    except KeyError:
        raise ValueError(f"{reason.name} does not close a position") from None


def direction(side: Side, reason: Reason) -> Direction:
    """Long SL and liquidation fire on a fall, long TP on a rise; a short is the mirror."""
    if reason is Reason.TRIGGER:
        raise ValueError("a position level cannot have reason TRIGGER")
    falls = reason is not Reason.TAKE_PROFIT
    if side is Side.SHORT:
        falls = not falls
    return Direction.AT_OR_BELOW if falls else Direction.AT_OR_ABOVE


def trigger_direction(op: TriggerOp) -> Direction:
    return Direction.AT_OR_ABOVE if op is TriggerOp.ABOVE else Direction.AT_OR_BELOW


def reached(direction_: Direction, level: Decimal, price: Decimal) -> bool:
    if direction_ is Direction.AT_OR_BELOW:
        return price <= level
    return price >= level


def position_reason(
    side: Side,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    liquidation: Decimal | None,
    price: Decimal,
    kind: PriceKind = PriceKind.TRADE,
) -> Reason | None:
    """The worst reason among the levels `price` reaches, or None; a mark price only liquidates."""
    levels = (
        (Reason.LIQUIDATION, liquidation),
        (Reason.STOP_LOSS, stop_loss),
        (Reason.TAKE_PROFIT, take_profit),
    )
    for reason, level in levels:
        if kind is PriceKind.MARK and reason is not Reason.LIQUIDATION:
            break
        if level is not None and reached(direction(side, reason), level, price):
            return reason
    return None


def trigger_fires(
    op: TriggerOp, level: Decimal, price: Decimal, kind: PriceKind = PriceKind.TRADE
) -> bool:
    """`above P` fires on price >= P, `below P` on price <= P; mark prices never fire triggers."""
    return kind is PriceKind.TRADE and reached(trigger_direction(op), level, price)
