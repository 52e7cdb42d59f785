"""The single-document crossing rules the book is built on (cogmora.domain.crossing)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cogmora.domain.crossing import (
    Direction,
    Reason,
    close_reason,
    direction,
    position_reason,
    trigger_direction,
    trigger_fires,
)
from cogmora.domain.enums import CloseReason, Side, TriggerOp
from cogmora.domain.ticks import PriceKind

D = Decimal


@pytest.mark.parametrize(
    ("side", "reason", "expected"),
    [
        (Side.LONG, Reason.STOP_LOSS, Direction.AT_OR_BELOW),
        (Side.LONG, Reason.LIQUIDATION, Direction.AT_OR_BELOW),
        (Side.LONG, Reason.TAKE_PROFIT, Direction.AT_OR_ABOVE),
        (Side.SHORT, Reason.STOP_LOSS, Direction.AT_OR_ABOVE),
        (Side.SHORT, Reason.LIQUIDATION, Direction.AT_OR_ABOVE),
        (Side.SHORT, Reason.TAKE_PROFIT, Direction.AT_OR_BELOW),
    ],
)
def test_each_position_level_fires_in_its_sides_direction(
    side: Side, reason: Reason, expected: Direction
) -> None:
    """Long SL and liquidation fire on a fall and TP on a rise; a short is the mirror."""
    assert direction(side, reason) is expected


def test_a_position_level_never_has_the_trigger_reason() -> None:
    """Asking for the direction of a position's TRIGGER level is an error."""
    with pytest.raises(ValueError):
        direction(Side.LONG, Reason.TRIGGER)


def test_trigger_ops_map_to_directions() -> None:
    """`above` fires at or above its price and `below` at or below it."""
    assert trigger_direction(TriggerOp.ABOVE) is Direction.AT_OR_ABOVE
    assert trigger_direction(TriggerOp.BELOW) is Direction.AT_OR_BELOW


def test_the_worst_reason_wins_when_a_price_reaches_several_levels() -> None:
    """A price past both a long's SL and its liquidation reports liquidation."""
    assert position_reason(Side.LONG, D(95), D(120), D(90), D(90)) is Reason.LIQUIDATION
    assert position_reason(Side.LONG, D(95), D(120), D(90), D(95)) is Reason.STOP_LOSS
    assert position_reason(Side.LONG, D(95), D(120), D(90), D(120)) is Reason.TAKE_PROFIT
    assert position_reason(Side.LONG, D(95), D(120), D(90), D("119.99999999")) is None


def test_a_mark_price_only_reaches_liquidation() -> None:
    """With a mark price, SL, TP and triggers do not fire; liquidation does."""
    assert position_reason(Side.SHORT, D(105), D(90), D(110), D(107), PriceKind.MARK) is None
    assert position_reason(Side.SHORT, D(105), D(90), D(110), D(110), PriceKind.MARK) is (
        Reason.LIQUIDATION
    )
    assert not trigger_fires(TriggerOp.ABOVE, D(1), D(2), PriceKind.MARK)
    assert trigger_fires(TriggerOp.ABOVE, D(2), D(2))
    assert not trigger_fires(TriggerOp.BELOW, D(2), D("2.00000001"))


def test_reasons_order_from_worst_to_best_for_the_user() -> None:
    """Liquidation < stop loss < trailing stop < take profit < trigger: `min` picks the worst."""
    assert sorted(Reason) == [
        Reason.LIQUIDATION,
        Reason.STOP_LOSS,
        Reason.TRAILING_STOP,
        Reason.TAKE_PROFIT,
        Reason.TRIGGER,
    ]


def test_close_reasons_are_the_stored_strings_and_triggers_have_none() -> None:
    """Each closing reason maps to its stored closeReason; TRIGGER closes nothing."""
    assert close_reason(Reason.LIQUIDATION) is CloseReason.LIQUIDATION
    assert close_reason(Reason.STOP_LOSS) is CloseReason.STOP_LOSS
    assert close_reason(Reason.TAKE_PROFIT) is CloseReason.TAKE_PROFIT
    with pytest.raises(ValueError):
        close_reason(Reason.TRIGGER)
