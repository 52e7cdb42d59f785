"""Futures funding as KuCoin states it: 8-hour periods, a rate that moves minute by minute.

`/api/v1/funding-rate/{symbol}/current` reports the period that is running (`timePoint`
its start, `fundingTime` its settlement, `granularity` 28800000) with the current rate
(`value`) and the predicted next one (`predictedValue`), capped at +-0.3 %. The rate is a
seeded function of (seed, symbol, minute), so two simulators with one seed agree and a
settlement test can compute what a period's rate was; `pin` fixes it for scripted tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

PERIOD_MS = 8 * 3600 * 1000  # KuCoin funds every 8 h: 04:00, 12:00, 20:00 UTC
OFFSET_MS = 4 * 3600 * 1000  # ...so the periods start 4 h after midnight UTC
CAP = Decimal("0.003")
FLOOR = -CAP
_BASE = Decimal("0.0001")  # KuCoin's usual resting rate, 0.01 % per 8 h
_STEP = Decimal("0.000001")


def period_start(at_ms: int) -> int:
    """Start (ms) of the 8-hour funding period that contains `at_ms`."""
    return (at_ms - OFFSET_MS) // PERIOD_MS * PERIOD_MS + OFFSET_MS


def next_funding(at_ms: int) -> int:
    """When the period containing `at_ms` settles."""
    return period_start(at_ms) + PERIOD_MS


@dataclass(slots=True)
class Funding:
    seed: int
    pins: dict[str, Decimal] = field(default_factory=dict)

    def rate(self, symbol: str, at_ms: int) -> Decimal:
        """The funding rate of `symbol` at `at_ms`: a slow seeded wander around 0.01 %,
        within KuCoin's cap and floor, unless a test pinned it."""
        pinned = self.pins.get(symbol)
        if pinned is not None:
            return pinned
        minute = at_ms // 60_000
        # Two seeded draws an hour apart, blended by the minute: it moves every minute
        # without jumping.
        hour, into = divmod(minute, 60)
        a = self._draw(symbol, hour)
        b = self._draw(symbol, hour + 1)
        value = a + (b - a) * Decimal(into) / 60
        return max(FLOOR, min(CAP, value)).quantize(_STEP)

    def _draw(self, symbol: str, hour: int) -> Decimal:
        rng = random.Random(f"funding:{self.seed}:{symbol}:{hour}")
        return _BASE + Decimal(repr(round(rng.gauss(0.0, 1.0), 6))) * Decimal("0.00015")

    def pin(self, symbol: str, rate: Decimal | None) -> None:
        if rate is None:
            self.pins.pop(symbol, None)
        else:
            self.pins[symbol] = rate


def current_funding_rate(funding: Funding, symbol: str, at_ms: int) -> dict[str, object]:
    """KuCoin's `GET /api/v1/funding-rate/{symbol}/current` payload, field for field."""
    start = period_start(at_ms)
    return {
        "symbol": f".{symbol}FPI8H",
        "granularity": PERIOD_MS,
        "timePoint": start,
        "value": funding.rate(symbol, at_ms),
        "predictedValue": funding.rate(symbol, at_ms + 60_000),
        "fundingRateCap": CAP,
        "fundingRateFloor": FLOOR,
        "period": 0,
        "fundingTime": start + PERIOD_MS,
    }
