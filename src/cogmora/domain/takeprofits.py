"""Take-profit ladders (SPEC 5.2): legs, their rules, and how the book keys them.

A ladder is kept on the position (`details.takeProfits`, `details.legsFilled`,
`details.originalQty`), and each leg rests in the trigger book as a key of its own,
`{positionId}#tp{n}`, so a leg's crossing and the position's stop, liquidation or another
leg never collide in one record: each fills once, by its own level-exact check.

Each leg closes its fraction of the ORIGINAL qty (rounded down to 8 places, so legs never
add up to more than was opened) in a partial close, capped at what is still open; the last
leg closes whatever is left, and so does a leg that would leave nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cogmora.domain.enums import Side
from cogmora.domain.money import ONE, ZERO, in_money_context, quantize_down, require_places, to_str
from cogmora.errors import ValidationError

MAX_LEGS = 10
LEG_MARK = "#tp"


@dataclass(frozen=True, slots=True)
class TakeProfitLeg:
    price: Decimal
    fraction: Decimal

    def to_doc(self) -> dict[str, str]:
        return {"price": to_str(self.price), "fraction": to_str(self.fraction)}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TakeProfitLeg:
        return cls(Decimal(str(doc["price"])), Decimal(str(doc["fraction"])))


def legs_to_doc(legs: Sequence[TakeProfitLeg]) -> list[dict[str, str]]:
    return [leg.to_doc() for leg in legs]


def legs_from_doc(docs: object) -> tuple[TakeProfitLeg, ...]:
    if not docs:
        return ()
    assert isinstance(docs, list)
    return tuple(TakeProfitLeg.from_doc(d) for d in docs)


def leg_key(position_id: str, index: int) -> str:
    """The book key of leg `index` (0-based) of a position."""
    return f"{position_id}{LEG_MARK}{index}"


def split_leg_key(key: str) -> tuple[str, int] | None:
    """(position id, leg index) of a leg's book key, or None for any other key."""
    head, mark, tail = key.rpartition(LEG_MARK)
    if not mark or not head or not tail.isdigit():
        return None
    return head, int(tail)


@in_money_context
def leg_qty(leg: TakeProfitLeg, original_qty: Decimal) -> Decimal:
    return quantize_down(original_qty * leg.fraction)


def validate_ladder(
    side: Side,
    reference: Decimal | None,
    legs: Sequence[TakeProfitLeg],
    take_profit: Decimal | None,
    move_stop_after: int | None,
    reference_name: str = "entry price",
) -> None:
    """Fractions in (0, 1] summing to at most 1; prices beyond the reference (None: not
    known yet) and strictly further with each leg (a leg behind its predecessor would fill
    first and be misnamed)."""
    if not legs:
        if move_stop_after is not None:
            raise ValidationError("moveStopToEntryAfter", "moveStopToEntryAfter needs takeProfits")
        return
    if take_profit is not None:
        raise ValidationError("takeProfits", "takeProfits and takeProfit cannot both be given")
    if len(legs) > MAX_LEGS:
        raise ValidationError("takeProfits", f"takeProfits may have at most {MAX_LEGS} legs")
    side_name = "a long" if side is Side.LONG else "a short"
    above = "above" if side is Side.LONG else "below"
    total = ZERO
    for i, leg in enumerate(legs):
        name = f"takeProfits[{i}]"
        for field, value in (("price", leg.price), ("fraction", leg.fraction)):
            if not value.is_finite() or value <= 0:
                raise ValidationError(f"{name}.{field}", f"{name}.{field} must be greater than 0")
            require_places(value, f"{name}.{field}")
        if leg.fraction > ONE:
            raise ValidationError(f"{name}.fraction", f"{name}.fraction must be at most 1")
        total += leg.fraction
        if reference is None:
            beyond = False
        elif side is Side.LONG:
            beyond = leg.price <= reference
        else:
            beyond = leg.price >= reference
        if beyond:
            raise ValidationError(
                f"{name}.price",
                f"{name}.price must be {above} the {reference_name} for {side_name}",
            )
        if i:
            prev = legs[i - 1].price
            behind = leg.price <= prev if side is Side.LONG else leg.price >= prev
            if behind:
                raise ValidationError(
                    f"{name}.price",
                    f"{name}.price must be {above} takeProfits[{i - 1}].price for {side_name}",
                )
    if total > ONE:
        raise ValidationError("takeProfits", "takeProfits fractions must sum to at most 1")
    if move_stop_after is not None and not 1 <= move_stop_after <= len(legs):
        raise ValidationError(
            "moveStopToEntryAfter",
            f"moveStopToEntryAfter must be a leg number from 1 to {len(legs)}",
        )


def check_leg_sizes(
    legs: Sequence[TakeProfitLeg], qty: Decimal, min_size: Decimal | None, symbol: str
) -> None:
    """Each leg's share of the opened qty must be a tradable size on its own."""
    floor = min_size if min_size is not None and min_size > 0 else Decimal("0.00000001")
    for i, leg in enumerate(legs):
        part = leg_qty(leg, qty)
        if part < floor:
            raise ValidationError(
                f"takeProfits[{i}].fraction",
                f"takeProfits[{i}].fraction gives a qty of {part}, below the minimum size "
                f"{floor} of {symbol}",
            )


def amend_ladder(
    side: Side,
    old: Sequence[TakeProfitLeg],
    filled: Sequence[int],
    new: Sequence[TakeProfitLeg],
    take_profit: Decimal | None,
    move_stop_after: int | None,
    reference: Decimal,
    reference_name: str,
) -> None:
    """A `PATCH` of a ladder: the legs already filled stay as they were (their money has
    moved); the ladder keeps its rules, and each leg still to fill lies beyond the
    reference price (one behind it would fill on the next tick)."""
    for i in sorted(filled):
        if i >= len(new) or new[i] != old[i]:
            raise ValidationError(
                f"takeProfits[{i}]", f"takeProfits[{i}] has filled and cannot change"
            )
    validate_ladder(side, None, new, take_profit, move_stop_after)
    side_name = "a long" if side is Side.LONG else "a short"
    above = "above" if side is Side.LONG else "below"
    done = set(filled)
    for i, leg in enumerate(new):
        if i in done:
            continue
        behind = leg.price <= reference if side is Side.LONG else leg.price >= reference
        if behind:
            raise ValidationError(
                f"takeProfits[{i}].price",
                f"takeProfits[{i}].price must be {above} the {reference_name} for {side_name}",
            )
