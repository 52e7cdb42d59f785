"""Decimal money helpers: 8-place half-even storage form and strict parsing."""

from __future__ import annotations

from decimal import Decimal, getcontext, localcontext

import pytest

from cogmora.domain.money import QUANTUM, parse, quantize, quantize_down, to_str
from cogmora.errors import ValidationError


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("0.000000005", "0.00000000"),  # half-even: ties go to the even neighbour (0)
        ("0.000000015", "0.00000002"),  # ... and here to 2
        ("0.000000025", "0.00000002"),
        ("-0.000000015", "-0.00000002"),
        ("1.123456785", "1.12345678"),
        ("1.1234567851", "1.12345679"),
        ("12345678901234.5", "12345678901234.50000000"),
    ],
)
def test_quantize_rounds_half_even_to_eight_places(raw: str, stored: str) -> None:
    """Quantizing rounds to 8 places with ties to even."""
    result = quantize(Decimal(raw))
    assert format(result, "f") == stored
    assert result.as_tuple().exponent == -8


def test_quantize_down_never_rounds_up() -> None:
    """Rounding toward zero keeps a bought quantity within what the notional pays for."""
    assert quantize_down(Decimal("0.333333339")) == Decimal("0.33333333")
    assert quantize_down(Decimal("-0.333333339")) == Decimal("-0.33333333")


def test_to_str_is_fixed_point_without_exponent() -> None:
    """The storage form is plain fixed-point text with exactly 8 places."""
    assert to_str(Decimal("1E+3")) == "1000.00000000"
    assert to_str(Decimal("0")) == "0.00000000"
    assert to_str(Decimal("1E-9")) == "0.00000000"


def test_quantize_ignores_a_hostile_global_context() -> None:
    """Another module's low global precision cannot truncate a large balance."""
    with localcontext() as ctx:
        ctx.prec = 6
        assert quantize(Decimal("123456789.123456789")) == Decimal("123456789.12345679")
    assert getcontext().prec >= 28
    assert Decimal("0.00000001") == QUANTUM


@pytest.mark.parametrize("value", ["1.5", 3, Decimal("2.25"), " 7 "])
def test_parse_accepts_strings_integers_and_decimals(value: object) -> None:
    """Strings, integers and Decimals parse to the exact Decimal."""
    assert parse(value, "qty") == Decimal(str(value).strip())


ASCII = 'qty must be a decimal number in ASCII digits, e.g. "12.5"'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.1, "qty must be a decimal string, not a float"),
        (True, "qty must be a decimal number"),
        (None, "qty must be a decimal number"),
        ("abc", ASCII),
        ([1], "qty must be a decimal number"),
        ("NaN", "qty must be a finite number"),
        ("-Infinity", "qty must be a finite number"),
        ("sNaN", "qty must be a finite number"),
        (Decimal("NaN"), "qty must be a finite number"),
        ("1e16", "qty is too large"),
    ],
)
def test_parse_refuses_non_decimals_naming_the_field(value: object, message: str) -> None:
    """Anything that is not an exact finite decimal is refused with the field's name."""
    with pytest.raises(ValidationError) as info:
        parse(value, "qty")
    assert str(info.value) == message
    assert info.value.field == "qty"


def test_parse_positive_and_nonzero_rules() -> None:
    """`positive` refuses zero and negatives; `allow_zero=False` refuses only zero."""
    with pytest.raises(ValidationError, match="qty must be greater than 0"):
        parse("0", "qty", positive=True)
    with pytest.raises(ValidationError, match="qty must be greater than 0"):
        parse("-1", "qty", positive=True)
    with pytest.raises(ValidationError, match="qty must not be 0"):
        parse("0", "qty", allow_zero=False)
    assert parse("-1", "qty", allow_zero=False) == Decimal(-1)


@pytest.mark.parametrize(
    "text",
    [
        "1_000",  # Python's Decimal reads it as 1000
        "\u0661\u0660\u0660\u0660",  # Arabic-Indic 1000
        "\uff11\uff10\uff10\uff10",  # full-width 1000
        "\u00a01",  # a no-break space
        "1 000",
        "1,5",
        "0x10",
        "1e",
        ".",
        "",
        "--1",
        "1e3.5",
    ],
)
def test_parse_refuses_what_is_not_ascii_decimal_text(text: str) -> None:
    """Underscores, other scripts' digits, odd spaces and special values are refused,
    though Python's Decimal would read several of them as numbers."""
    with pytest.raises(ValidationError) as info:
        parse(text, "qty")
    assert str(info.value) == ASCII


@pytest.mark.parametrize(
    ("text", "value"),
    [("12.5", "12.5"), ("+3", "3"), ("-0.5", "-0.5"), (".5", "0.5"), ("5.", "5"), ("1e3", "1000"),
     ("2.5E-2", "0.025"), ("\t42\n", "42")],
)
def test_parse_reads_ascii_decimal_text_exactly(text: str, value: str) -> None:
    """Plain ASCII decimals, with a sign, a point or an exponent, parse exactly."""
    assert parse(text, "qty") == Decimal(value)
