"""Exact decimal arithmetic for money, prices and quantities.

Floats never hold money here: a float cannot represent 0.1, and a ledger that drifts by one
satoshi per trade stops summing to the balance. Values are `Decimal` in code and decimal
strings in storage and JSON. They are quantized to 8 places, half-even, only when stored,
so intermediate maths keeps full precision.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal, getcontext, setcontext
from typing import ParamSpec, TypeVar

from cogmora.errors import ValidationError

PLACES = 8
QUANTUM = Decimal(1).scaleb(-PLACES)
ZERO = Decimal(0)
ONE = Decimal(1)

# 40 significant digits: 1e12 USDT balances with 8 places and room to spare, and a
# context of our own so nobody's `getcontext().prec = 6` elsewhere can touch our maths.
MONEY_CONTEXT = Context(prec=40, rounding=ROUND_HALF_EVEN)
P = ParamSpec("P")
R = TypeVar("R")


def in_money_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn`'s arithmetic in MONEY_CONTEXT, whatever the caller's thread has set.

    Decimal's `+ - * /` round to the *current* context's precision: a caller (or a
    library) that set `getcontext().prec = 6` would turn a margin of 80780.38182853 into
    80780.4. Every domain function that computes money is wrapped, so the global context
    cannot reach it. The thread's context is swapped for MONEY_CONTEXT itself rather than
    a `localcontext` copy: 0.45 us a call against 1.7 us (measured, BENCHMARKS.md), on the
    settlement path's every position. The swapped-in context is shared, so nothing here
    may change it; only its flags ever move, and nobody reads them.
    """

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        saved = getcontext()
        setcontext(MONEY_CONTEXT)
        try:
            return fn(*args, **kwargs)
        finally:
            setcontext(saved)

    return run


# What a decimal string may look like: ASCII digits, one optional point, an optional
# exponent. Python's Decimal() is far more lenient ("1_000", Arabic-Indic or full-width
# digits, "NaN", "Infinity", surrounding Unicode spaces), and every one of those would be
# a number the user may not have meant.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ASCII_SPACE = " \t\r\n"
_SPECIAL = frozenset({"nan", "snan", "inf", "infinity"})


def decimal_text(text: str) -> Decimal | None:
    """The exact value of a decimal string in the strict grammar, or None if it is not one."""
    stripped = text.strip(_ASCII_SPACE)
    if _DECIMAL_TEXT.fullmatch(stripped) is None:
        return None
    return Decimal(stripped)


# The arguments positionally: `Decimal.quantize` with keywords was measured at twice the
# cost (a settled position quantizes about ten amounts).
def quantize(value: Decimal) -> Decimal:
    """Round to the stored precision (8 places, half-even)."""
    return value.quantize(QUANTUM, ROUND_HALF_EVEN, MONEY_CONTEXT)


def quantize_down(value: Decimal) -> Decimal:
    """Round toward zero: a quantity bought for a fixed notional never costs more than it."""
    return value.quantize(QUANTUM, ROUND_DOWN, MONEY_CONTEXT)


def require_places(value: Decimal, field: str) -> Decimal:
    """Refuse a value finer than the 8 stored places: storage would silently change it, and
    a quantity, a level or an amount that is not what the user asked for is a wrong trade."""
    if quantize_down(value) != value:
        raise ValidationError(field, f"{field} must have at most {PLACES} decimal places")
    return value


def to_str(value: Decimal) -> str:
    """The storage form: quantized, fixed-point, no exponent."""
    return format(value.quantize(QUANTUM, ROUND_HALF_EVEN, MONEY_CONTEXT), "f")


def opt_str(value: Decimal | None) -> str | None:
    """The storage form of an optional amount or level (None stays None)."""
    return None if value is None else to_str(value)


def opt_decimal(value: object) -> Decimal | None:
    """An optional stored amount or level back as a Decimal (None stays None)."""
    return None if value is None else Decimal(str(value))


def parse(value: object, field: str, *, positive: bool = False, allow_zero: bool = True) -> Decimal:
    """Turn a JSON value into a finite Decimal, naming `field` when it is not one.

    Strings (ASCII digits only, see `decimal_text`), integers and Decimals (a JSON number
    read exactly) are accepted; floats are refused because they have already lost the
    exact value the user typed.
    """
    if isinstance(value, bool) or value is None:
        raise ValidationError(field, f"{field} must be a decimal number")
    if isinstance(value, float):
        raise ValidationError(field, f"{field} must be a decimal string, not a float")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = decimal_text(value)
        if text is None and value.strip(_ASCII_SPACE).lstrip("+-").lower() in _SPECIAL:
            raise ValidationError(field, f"{field} must be a finite number")
        if text is None:
            raise ValidationError(
                field, f"{field} must be a decimal number in ASCII digits, e.g. \"12.5\""
            )
        result = text
    else:
        raise ValidationError(field, f"{field} must be a decimal number")
    if not result.is_finite():
        raise ValidationError(field, f"{field} must be a finite number")
    if positive and result <= 0:
        raise ValidationError(field, f"{field} must be greater than 0")
    if not allow_zero and result == 0:
        raise ValidationError(field, f"{field} must not be 0")
    if result != 0 and result.adjusted() > 15:
        raise ValidationError(field, f"{field} is too large")
    return result
