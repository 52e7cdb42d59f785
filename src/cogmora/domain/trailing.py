"""Trailing stops (SPEC 5.2): the order, its rules and its stop, once.

A long's trailing stop sits at `peak * (1 - callbackRate)`, where `peak` is the highest
trade price since it activated (at `activationPrice`, or at once); it fires on a price at
or below that. A short's is mirrored: `trough * (1 + callbackRate)`, fired at or above.

The per-tick index of many trailing stops is `trail_book`; this module is what a single
position needs: validation (API, trigger actions, the agent's guard all call it), the
stop a peak implies, and whether one price crosses it (the re-judging of a crossing whose
compare-and-set missed, the naive reference of the tests and the benchmark).

Decisions are exact: the stop is compared as the rational `peak * (1 - r)`; only the
stop *shown* (`details.trailingStop`) is quantized to the stored 8 places.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cogmora.domain.enums import Side
from cogmora.domain.money import (
    ONE,
    ZERO,
    in_money_context,
    opt_decimal,
    opt_str,
    quantize,
    require_places,
    to_str,
)
from cogmora.errors import ValidationError

MAX_CALLBACK_RATE = Decimal("0.5")
FIELD = "trailingStop"

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TrailingStop:
    """What the user asked for: a callback rate and an optional activation price."""

    callback_rate: Decimal
    activation_price: Decimal | None = None

    def to_doc(self) -> Doc:
        return {
            "callbackRate": to_str(self.callback_rate),
            "activationPrice": opt_str(self.activation_price),
        }

    @classmethod
    def from_doc(cls, doc: Doc) -> TrailingStop:
        return cls(Decimal(doc["callbackRate"]), opt_decimal(doc.get("activationPrice")))

    @classmethod
    def opt_from_doc(cls, doc: Doc | None) -> TrailingStop | None:
        return None if doc is None else cls.from_doc(doc)

    def expected(self, prefix: str = "details.trailing") -> dict[str, Any]:
        """The stored fields a compare-and-set on these parameters expects."""
        return {
            f"{prefix}.callbackRate": to_str(self.callback_rate),
            f"{prefix}.activationPrice": opt_str(self.activation_price),
        }


def check_format(trailing: TrailingStop | None, field: str = FIELD) -> None:
    """What can be checked without a price: the rate's bounds and both values' places."""
    if trailing is None:
        return
    rate = trailing.callback_rate
    name = f"{field}.callbackRate"
    if not rate.is_finite() or not ZERO < rate <= MAX_CALLBACK_RATE:
        raise ValidationError(name, f"{name} must be > 0 and <= {MAX_CALLBACK_RATE}")
    require_places(rate, name)
    activation = trailing.activation_price
    if activation is not None:
        name = f"{field}.activationPrice"
        if not activation.is_finite() or activation <= 0:
            raise ValidationError(name, f"{name} must be greater than 0")
        require_places(activation, name)


def validate(
    side: Side,
    reference: Decimal,
    trailing: TrailingStop | None,
    reference_name: str = "entry price",
    field: str = FIELD,
) -> None:
    """The rate's bounds, and an activation price on the winning side of the reference
    (one already reached would be a trailing stop without one, said in a confusing way)."""
    check_format(trailing, field)
    if trailing is None or trailing.activation_price is None:
        return
    activation = trailing.activation_price
    beyond = activation <= reference if side is Side.LONG else activation >= reference
    if beyond:
        where, who = ("above", "a long") if side is Side.LONG else ("below", "a short")
        name = f"{field}.activationPrice"
        raise ValidationError(name, f"{name} must be {where} the {reference_name} for {who}")


@in_money_context
def stop_exact(side: Side, peak: Decimal, rate: Decimal) -> Decimal:
    """`peak * (1 - r)` for a long, `trough * (1 + r)` for a short, unrounded."""
    return peak * (ONE - rate) if side is Side.LONG else peak * (ONE + rate)


def stop_shown(side: Side, peak: Decimal, rate: Decimal) -> Decimal:
    """The stop as stored and shown: quantized to 8 places, half-even like every amount."""
    return quantize(stop_exact(side, peak, rate))


def crossed(side: Side, peak: Decimal | None, rate: Decimal, price: Decimal) -> bool:
    """Whether `price` reaches the stop of an activated trailing stop whose peak is `peak`
    (the peak as it stands after `price`: a new high never crosses its own stop)."""
    if peak is None:
        return False
    if side is Side.LONG:
        peak = max(peak, price)
        return price <= stop_exact(side, peak, rate)
    peak = min(peak, price)
    return price >= stop_exact(side, peak, rate)


def activated(side: Side, trailing: TrailingStop, price: Decimal) -> bool:
    """Whether `price` reaches the activation price (always, without one)."""
    activation = trailing.activation_price
    if activation is None:
        return True
    return price >= activation if side is Side.LONG else price <= activation


def moved(
    side: Side, peak: Decimal | None, trailing: TrailingStop, price: Decimal
) -> Decimal | None:
    """The peak after one trade at `price`: activation, then the highest (lowest) price."""
    if peak is None:
        return price if activated(side, trailing, price) else None
    return max(peak, price) if side is Side.LONG else min(peak, price)


def initial_peak(
    side: Side, trailing: TrailingStop | None, price: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """(peak, stop) of a trailing stop set when the price is `price` (an open's fill, a
    PATCH's reference): active at once without an activation price, else (None, None)."""
    if trailing is None or trailing.activation_price is not None:
        return None, None
    return price, stop_shown(side, price, trailing.callback_rate)


def further(side: Side, peak: Decimal | None, other: Decimal | None) -> Decimal | None:
    """The further of two peaks (the higher for a long, the lower for a short); None only
    when both are (not activated)."""
    if peak is None or other is None:
        return other if peak is None else peak
    return max(peak, other) if side is Side.LONG else min(peak, other)


def kept_peak(
    side: Side,
    stored: TrailingStop | None,
    stored_peak: Decimal | None,
    crossing: TrailingStop | None,
    crossing_peak: Decimal | None,
) -> Decimal | None:
    """The peak to store on a position a crossing missed and that is kept open: the
    crossing's (the book's, up to a round ahead of the store) when it trailed with the
    stored parameters and got further; None when the stored peak stands. Without it the
    book would go back to the stored peak, a stop left behind the highs it saw."""
    if stored is None or crossing != stored or crossing_peak is None:
        return None
    peak = further(side, stored_peak, crossing_peak)
    return None if peak == stored_peak else peak
