"""SPEC 5.1's plausibility rules: what a trade price must be before it can move money."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cogmora.domain.plausibility import Drop, judge

TEN = D(10)


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (D("NaN"), Drop.NOT_FINITE),
        (D("sNaN"), Drop.NOT_FINITE),
        (D("Infinity"), Drop.NOT_FINITE),
        (D("-Infinity"), Drop.NOT_FINITE),
        (D("0"), Drop.NOT_POSITIVE),
        (D("-1"), Drop.NOT_POSITIVE),
        (D("1e-400"), Drop.NOT_POSITIVE),  # rounds to zero at the tick
        (D("0.04"), Drop.NOT_POSITIVE),  # below half a tick of 0.1
        (D("1e400"), Drop.TOO_LARGE),
        (D("1E+35"), Drop.TOO_LARGE),
        (D("1E+16"), Drop.TOO_LARGE),
    ],
)
def test_an_absurd_price_is_dropped_with_its_reason(price: D, reason: Drop) -> None:
    """Non-finite, non-positive, zero-at-the-tick and enormous prices are refused, never raised."""
    assert judge(price, D("0.1"), None, TEN) is reason


def test_a_price_is_rounded_half_even_to_the_tick() -> None:
    """A price finer than the tick is rounded to it; one on the tick is returned as is."""
    assert judge(D("100.25"), D("0.1"), None, TEN) == D("100.2")
    assert judge(D("100.35"), D("0.1"), None, TEN) == D("100.4")
    on_tick = D("100.3")
    assert judge(on_tick, D("0.1"), None, TEN) is on_tick
    assert judge(D("100"), D("0.1"), None, TEN) == D("100")


def test_without_a_tick_a_price_keeps_at_most_eight_places() -> None:
    """An unknown tick means the 8 stored places."""
    assert judge(D("0.123456789"), None, None, TEN) == D("0.12345679")
    assert judge(D("1e-9"), None, None, TEN) is Drop.NOT_POSITIVE


def test_a_tick_finer_than_eight_places_cannot_smuggle_in_more_places() -> None:
    """With a 1e-10 tick, a price that needs the 9th or 10th place is refused."""
    assert judge(D("0.0000000123"), D("1e-10"), None, TEN) is Drop.TOO_PRECISE
    assert judge(D("0.0000001200"), D("1e-10"), None, TEN) == D("0.00000012")


def test_the_band_is_a_factor_either_way_both_ends_included() -> None:
    """Within 10x of the reference is accepted, beyond it is out of band."""
    ref = D("100")
    assert judge(D("1000"), None, ref, TEN) == D("1000")
    assert judge(D("10"), None, ref, TEN) == D("10")
    assert judge(D("1000.01"), None, ref, TEN) is Drop.OUT_OF_BAND
    assert judge(D("9.99"), None, ref, TEN) is Drop.OUT_OF_BAND


@given(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([None, D("1"), D("0.1"), D("0.00001"), D("1e-10"), D("0.5")]),
    st.one_of(st.none(), st.decimals(min_value=D("1e-8"), max_value=D("1e15"), places=8)),
)
def test_judge_never_raises_and_what_it_accepts_is_storable(
    price: D, tick: D | None, reference: D | None
) -> None:
    """Whatever the Decimal, judge answers; an accepted price is positive, finite, below
    10^16, has at most 8 places and lies within the band of the reference."""
    verdict = judge(price, tick, reference, TEN)
    if isinstance(verdict, Drop):
        return
    assert verdict.is_finite() and 0 < verdict < D("1e16")
    assert verdict == verdict.quantize(D("1e-8"))
    if reference is not None and reference > 0:
        assert reference / TEN <= verdict <= reference * TEN


def test_the_tick_counts_by_its_places_whatever_its_spelling() -> None:
    """`0.00010` rounds like `0.0001`; a tick of 5 means whole numbers."""
    assert judge(D("1.00014"), D("0.00010"), None, TEN) == D("1.0001")
    assert judge(D("101.6"), D("5"), None, TEN) == D("102")
