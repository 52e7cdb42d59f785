"""Whether a trade price is one the market could have printed (SPEC 5.1).

A price moves money only if it is a positive finite number, below the storage bound
(10^16, as `money.parse` and the API refuse), with at most 8 decimal places once rounded
to the symbol's tick, and within a band (default a factor of 10 either way) around the
last price accepted for that symbol. Anything else is a feed glitch, a decoding accident
or a lie, and a stop fired on it would be a close the trader could never have had.

`judge` is the exact rule; it never raises, whatever the Decimal (`1e-400`, `1e400`,
`sNaN`): quantizing an enormous value raises InvalidOperation in Decimal, and that must
not escape into the engine. The price filter (engine/price_filter.py) calls it only for
prices its float prefilter cannot wave through.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, DecimalException
from enum import StrEnum

PLACES = 8
EIGHT_PLACES = Decimal(1).scaleb(-PLACES)
# Highest `Decimal.adjusted()` a price may have: below 10^16.
MAX_ADJUSTED = 15
DEFAULT_BAND = Decimal(10)

# Our own context: 40 digits cover 10^16 with 8 places and more; nothing else's
# `getcontext()` can change these results.
_CONTEXT = Context(prec=40, rounding=ROUND_HALF_EVEN)


class Drop(StrEnum):
    """Why a price was dropped (the `reason` label of the drop counter)."""

    NOT_FINITE = "not_finite"  # NaN, sNaN, Infinity
    NOT_POSITIVE = "not_positive"  # zero, negative, or rounds to zero at the tick
    TOO_LARGE = "too_large"  # 10^16 or more
    TOO_PRECISE = "too_precise"  # more than 8 places even after rounding to the tick
    OUT_OF_BAND = "out_of_band"  # more than `band` times away from the last accepted price


def exponent(value: Decimal) -> int:
    """The exponent of a finite Decimal (`Decimal("0.10")` is -2)."""
    exp = value.as_tuple().exponent
    return exp if isinstance(exp, int) else 0


def quantum_of(tick: Decimal | None) -> Decimal:
    """What a price is rounded to: the tick's places (`0.00010` is `0.0001`; a tick of 1 or
    more, such as 5, means whole numbers), or 8 places when the tick is not known."""
    if tick is None or not tick.is_finite() or tick <= 0:
        return EIGHT_PLACES
    return tick.normalize() if tick < 1 else Decimal(1)


def band_bounds(reference: Decimal, band: Decimal) -> tuple[Decimal, Decimal]:
    """The accepted range around `reference`, both ends included."""
    return _CONTEXT.divide(reference, band), _CONTEXT.multiply(reference, band)


def judge(
    price: Decimal, tick: Decimal | None, reference: Decimal | None, band: Decimal
) -> Decimal | Drop:
    """The price as it may enter the book (rounded half-even to the tick), or why not.

    `reference` is the last accepted price of the symbol (None: nothing to compare with,
    only the absolute rules apply); `band` > 1."""
    try:
        if not price.is_finite():
            return Drop.NOT_FINITE
        if price <= 0:
            return Drop.NOT_POSITIVE
        if price.adjusted() > MAX_ADJUSTED:
            return Drop.TOO_LARGE
        quantum = quantum_of(tick)
        if exponent(price) < exponent(quantum):
            price = price.quantize(quantum, context=_CONTEXT)
            if price <= 0:
                return Drop.NOT_POSITIVE
        if exponent(price) < -PLACES and (
            price.quantize(EIGHT_PLACES, context=_CONTEXT) != price
        ):
            return Drop.TOO_PRECISE
        if reference is not None:
            low, high = band_bounds(reference, band)
            if not low <= price <= high:
                return Drop.OUT_OF_BAND
    except (DecimalException, ValueError, TypeError):  # defensive: never raise
        return Drop.NOT_FINITE
    return price
