from __future__ import annotations

from decimal import Decimal

import pytest

from cogmora.jobs.agent.indicators import atr, ema, true_ranges

D = Decimal


def test_the_ema_of_a_constant_series_is_the_constant() -> None:
    """Nothing moves, so the average does not either."""
    assert ema([D(7)] * 30, 9) == D(7)


def test_the_ema_of_a_linear_rise_lags_by_half_its_window() -> None:
    """For closes rising by 1, EMA(n) sits exactly (n-1)/2 below the last close."""
    closes = [D(x) for x in range(100, 131)]
    assert ema(closes, 9) == D(126)
    assert abs(ema(closes, 21) - D(120)) < D("1e-30")


def test_the_ema_is_seeded_with_the_simple_average() -> None:
    """With exactly `period` values the EMA is their mean."""
    assert ema([D(1), D(2), D(6)], 3) == D(3)


def test_true_range_includes_gaps_from_the_previous_close() -> None:
    """A gap up makes the range high minus the previous close."""
    highs, lows, closes = [D(11), D(21)], [D(9), D(19)], [D(10), D(20)]
    assert true_ranges(highs, lows, closes) == [D(11)]


def test_atr_uses_wilder_smoothing_after_the_seed() -> None:
    """TRs 2, 4, 6 with period 2: seed (2+4)/2 = 3, then (3 + 6)/2 = 4.5."""
    closes = [D(10), D(10), D(10), D(10)]
    highs = [D(11), D(11), D(12), D(13)]
    lows = [D(9), D(9), D(8), D(7)]
    assert true_ranges(highs, lows, closes) == [D(2), D(4), D(6)]
    assert atr(highs, lows, closes, 2) == D("4.5")


def test_too_short_a_series_is_refused() -> None:
    """Indicators need their full window; a short series is a caller's bug."""
    with pytest.raises(ValueError, match="at least 9"):
        ema([D(1)] * 8, 9)
    with pytest.raises(ValueError, match="at least 15"):
        atr([D(1)] * 14, [D(1)] * 14, [D(1)] * 14, 14)
