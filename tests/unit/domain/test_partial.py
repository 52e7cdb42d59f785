"""Partial closes and ladders in the domain: pro-rata shares that add up exactly, and the
rules' messages naming their field."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cogmora.domain.enums import Side
from cogmora.domain.partial import check_part, split
from cogmora.domain.takeprofits import (
    TakeProfitLeg,
    leg_key,
    leg_qty,
    split_leg_key,
    validate_ladder,
)
from cogmora.errors import ValidationError

EIGHT = st.decimals(min_value=D("0.00000001"), max_value=D(1000), places=8)


@given(qty=EIGHT, margin=EIGHT, fee=EIGHT, share=st.fractions(min_value=0, max_value=1))
def test_a_split_adds_up_to_the_whole_and_is_stored_exact(
    qty: D, margin: D, fee: D, share: object
) -> None:
    """Part plus rest is exactly the whole, every amount at 8 places (half-even part)."""
    part = max(D("0.00000001"), min(qty, (qty * D(str(float(share)))).quantize(D("1e-8"))))
    s = split(qty, margin, fee, part)
    assert (s.qty + s.rest_qty, s.margin + s.rest_margin, s.fee_open + s.rest_fee_open) == (
        qty, margin, fee
    )
    for value in (s.margin, s.fee_open, s.rest_margin, s.rest_fee_open):
        assert value == value.quantize(D("1e-8"))


def test_the_share_is_rounded_half_even_and_the_remainder_stays_open() -> None:
    """A third of 0.00000010 margin is 0.00000003 (rounded), the rest 0.00000007."""
    s = split(D(3), D("0.00000010"), D("0.00000002"), D(1))
    assert (s.margin, s.rest_margin, s.fee_open, s.rest_fee_open) == (
        D("0.00000003"), D("0.00000007"), D("0.00000001"), D("0.00000001")
    )


@pytest.mark.parametrize(
    ("qty", "message"),
    [
        ("0", "qty must be greater than 0"),
        ("0.000000001", "qty must have at most 8 decimal places"),
        ("2.5", "qty must be at most the open qty 2"),
        ("0.05", "qty must be at least the minimum size 0.1 of XBTUSDTM"),
        ("1.95", "qty must leave 0 or at least the minimum size 0.1 of XBTUSDTM open"),
    ],
)
def test_a_partial_qty_breaking_a_rule_names_qty(qty: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_part(D(qty), D(2), D("0.1"), "XBTUSDTM")
    assert err.value.field == "qty"
    assert message in str(err.value)


def test_a_leg_key_never_collides_with_its_position_and_reads_back() -> None:
    assert leg_key("p1", 2) == "p1#tp2"
    assert split_leg_key("p1#tp2") == ("p1", 2)
    assert split_leg_key("p1") is None and split_leg_key("#tp1") is None


def test_a_legs_qty_is_its_fraction_of_the_original_rounded_down() -> None:
    assert leg_qty(TakeProfitLeg(D(1), D("0.5")), D("0.00000003")) == D("0.00000001")


@pytest.mark.parametrize(
    ("side", "legs", "field", "message"),
    [
        (Side.SHORT, [("90", "0.5"), ("95", "0.5")], "takeProfits[1].price",
         "takeProfits[1].price must be below takeProfits[0].price for a short"),
        (Side.SHORT, [("101", "0.5")], "takeProfits[0].price",
         "takeProfits[0].price must be below the entry price for a short"),
        (Side.LONG, [("110", "1.5")], "takeProfits[0].fraction",
         "takeProfits[0].fraction must be at most 1"),
    ],
)
def test_a_ladder_breaking_a_rule_names_its_leg(
    side: Side, legs: list[tuple[str, str]], field: str, message: str
) -> None:
    ladder = [TakeProfitLeg(D(p), D(f)) for p, f in legs]
    with pytest.raises(ValidationError) as err:
        validate_ladder(side, D(100), ladder, None, None)
    assert (err.value.field, str(err.value)) == (field, message)
