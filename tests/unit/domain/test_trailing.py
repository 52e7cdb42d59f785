"""The single trailing stop's rules (`domain.trailing`): which peak a kept position stores."""

from __future__ import annotations

from decimal import Decimal as D

from cogmora.domain.enums import Side
from cogmora.domain.trailing import TrailingStop, further, kept_peak

SPEC = TrailingStop(D("0.1"))


def test_further_is_the_higher_for_a_long_and_the_lower_for_a_short() -> None:
    assert further(Side.LONG, D("100"), D("110")) == D("110")
    assert further(Side.SHORT, D("100"), D("90")) == D("90")
    assert further(Side.LONG, None, D("110")) == D("110")
    assert further(Side.SHORT, D("100"), None) == D("100")
    assert further(Side.LONG, None, None) is None


def test_a_kept_position_stores_the_crossings_peak_when_it_got_further() -> None:
    assert kept_peak(Side.LONG, SPEC, D("100"), SPEC, D("110")) == D("110")
    assert kept_peak(Side.SHORT, SPEC, D("100"), SPEC, D("90")) == D("90")
    assert kept_peak(Side.LONG, SPEC, None, SPEC, D("110")) == D("110")  # activated meanwhile


def test_the_stored_peak_stands_when_it_is_as_far_or_the_parameters_changed() -> None:
    assert kept_peak(Side.LONG, SPEC, D("110"), SPEC, D("100")) is None
    assert kept_peak(Side.LONG, SPEC, D("110"), SPEC, D("110")) is None
    assert kept_peak(Side.LONG, TrailingStop(D("0.2")), D("100"), SPEC, D("110")) is None
    assert kept_peak(Side.LONG, None, None, SPEC, D("110")) is None
    assert kept_peak(Side.LONG, SPEC, D("100"), None, None) is None
