"""The simulated order book top: one state per instrument, moved by a seeded random walk.

Each instrument owns its own `random.Random` seeded from (seed, symbol), so a symbol's
path does not depend on which other symbols exist or on the order they were stepped in:
two runs with the same seed show the same prices, which is what makes demos and tests
reproducible.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from cogmora.domain.enums import Market

_CANDLE_SECONDS = {
    "1min": 60,
    "3min": 180,
    "5min": 300,
    "15min": 900,
    "30min": 1800,
    "1hour": 3600,
    "2hour": 7200,
    "4hour": 14400,
    "6hour": 21600,
    "8hour": 28800,
    "12hour": 43200,
    "1day": 86400,
    "1week": 604800,
}


def candle_seconds(kind: str) -> int | None:
    """Seconds of a KuCoin spot candle type ("1min", "1hour"...), None when unknown."""
    return _CANDLE_SECONDS.get(kind)


def market_of(symbol: str) -> Market:
    """KuCoin spelling: spot pairs have a hyphen (BTC-USDT), contracts do not (XBTUSDTM)."""
    return Market.SPOT if "-" in symbol else Market.FUTURES


def increment_for(price: Decimal) -> Decimal:
    """A plausible price increment: about six significant digits at this price."""
    exponent = price.adjusted() - 5
    return Decimal(1).scaleb(exponent)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class Instrument:
    symbol: str
    market: Market
    price: Decimal
    increment: Decimal
    rng: random.Random
    multiplier: Decimal = Decimal(1)
    sequence: int = 1
    time_ms: int = 0
    last_size: Decimal = Decimal("0.01")
    mark: Decimal = Decimal(0)
    open24h: Decimal = Decimal(0)
    high24h: Decimal = Decimal(0)
    low24h: Decimal = Decimal(0)
    volume24h: Decimal = Decimal(0)
    turnover24h: Decimal = Decimal(0)
    trade_id: int = field(default=1)

    @classmethod
    def create(
        cls, symbol: str, price: Decimal, seed: int, multiplier: Decimal = Decimal(1)
    ) -> Instrument:
        rng = random.Random(f"{seed}:{symbol}")
        inst = cls(
            symbol=symbol,
            market=market_of(symbol),
            price=price,
            increment=increment_for(price),
            rng=rng,
            multiplier=multiplier,
            sequence=rng.randrange(1_000_000, 9_000_000),
            time_ms=now_ms(),
            mark=price,
            open24h=price,
            high24h=price,
            low24h=price,
        )
        inst.volume24h = Decimal(rng.randrange(1000, 100000))
        inst.turnover24h = (inst.volume24h * price).quantize(Decimal("0.01"))
        return inst

    def step(self, volatility: Decimal) -> Decimal:
        """One random-walk move; the new price never reaches zero."""
        move = Decimal(repr(self.rng.gauss(0.0, 1.0))) * volatility
        candidate = (self.price * (1 + move)).quantize(self.increment, rounding=ROUND_HALF_EVEN)
        if candidate <= 0:
            candidate = self.increment
        size = Decimal(self.rng.randrange(1, 5000)).scaleb(-3)
        self.trade(candidate, size)
        return candidate

    def trade(self, price: Decimal, size: Decimal | None = None, at_ms: int | None = None) -> None:
        """Record a trade at `price` (a scripted price or a walk step)."""
        self.price = price
        self.sequence += 1
        self.trade_id += 1
        self.time_ms = at_ms if at_ms is not None else now_ms()
        if size is not None:
            self.last_size = size
        self.high24h = max(self.high24h, price)
        self.low24h = min(self.low24h, price)
        self.volume24h += self.last_size
        self.turnover24h += self.last_size * price
        # The mark follows the last trade loosely: a fair price without the trade noise.
        self.mark = price

    @property
    def best_bid(self) -> Decimal:
        return self.price

    @property
    def best_ask(self) -> Decimal:
        return self.price + self.increment

    @property
    def change_price(self) -> Decimal:
        return self.price - self.open24h

    @property
    def change_rate(self) -> Decimal:
        if not self.open24h:
            return Decimal(0)
        return (self.change_price / self.open24h).quantize(Decimal("0.0001"))

    def candles(self, start_s: int, end_s: int, width_s: int, limit: int = 1500) -> list[Candle]:
        """Synthetic candles ending at the current price, oldest first.

        Each candle's path is seeded by (symbol, bucket start), so asking twice for the same
        range gives the same candles.
        """
        end_bucket = (end_s // width_s) * width_s
        start_bucket = (max(start_s, end_s - width_s * limit) // width_s) * width_s
        out: list[Candle] = []
        close = self.price
        bucket = end_bucket
        while bucket >= start_bucket and len(out) < limit:
            rng = random.Random(f"{self.symbol}:{bucket}:{width_s}")
            drift = Decimal(repr(rng.gauss(0.0, 1.0))) * Decimal("0.002")
            open_ = (close * (1 - drift)).quantize(self.increment)
            wiggle = abs(Decimal(repr(rng.gauss(0.0, 1.0)))) * Decimal("0.001")
            high = (max(open_, close) * (1 + wiggle)).quantize(self.increment)
            low = (min(open_, close) * (1 - wiggle)).quantize(self.increment)
            volume = Decimal(rng.randrange(1, 10_000_000)).scaleb(-4)
            out.append(Candle(bucket, open_, close, high, low, volume, volume * close))
            close = open_
            bucket -= width_s
        out.reverse()
        return out


@dataclass(frozen=True, slots=True)
class Candle:
    start_s: int
    open: Decimal
    close: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    turnover: Decimal
