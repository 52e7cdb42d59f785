"""Technical indicators in exact Decimal arithmetic, for the builtin strategy.

Decimal rather than float so the strategy's decisions are reproducible bit for bit on
any machine: a documented rule "EMA9 above EMA21" must give the same answer in a test, a
replay and production. All maths runs in the project's 40-digit money context.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext

from cogmora.domain.money import MONEY_CONTEXT


def ema(values: Sequence[Decimal], period: int) -> Decimal:
    """Exponential moving average of the whole series, seeded with the SMA of the first
    `period` values, then `ema += 2/(period+1) * (value - ema)` for each later value."""
    if period < 1 or len(values) < period:
        raise ValueError(f"ema({period}) needs at least {period} values, got {len(values)}")
    with localcontext(MONEY_CONTEXT):
        k = Decimal(2) / Decimal(period + 1)
        result = sum(values[:period], Decimal(0)) / period
        for value in values[period:]:
            result += k * (value - result)
        return result


def true_ranges(
    highs: Sequence[Decimal], lows: Sequence[Decimal], closes: Sequence[Decimal]
) -> list[Decimal]:
    """TR from the second candle on: max(high-low, |high-prevClose|, |low-prevClose|)."""
    return [
        max(highs[i] - lows[i], abs(highs[i] - closes[i - 1]), abs(lows[i] - closes[i - 1]))
        for i in range(1, len(closes))
    ]


def atr(
    highs: Sequence[Decimal], lows: Sequence[Decimal], closes: Sequence[Decimal], period: int
) -> Decimal:
    """Wilder's average true range: the mean of the first `period` TRs, then
    `atr = ((period-1)*atr + TR) / period` for each later TR. Needs `period + 1` candles."""
    ranges = true_ranges(highs, lows, closes)
    if period < 1 or len(ranges) < period:
        raise ValueError(f"atr({period}) needs at least {period + 1} candles, got {len(closes)}")
    with localcontext(MONEY_CONTEXT):
        result = sum(ranges[:period], Decimal(0)) / period
        for tr in ranges[period:]:
            result = ((period - 1) * result + tr) / period
        return result
