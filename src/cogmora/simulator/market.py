"""The simulated order book top: one state per instrument, moved by a seeded random walk.

Each instrument owns its own `random.Random` seeded from (seed, symbol), so a symbol's
path does not depend on which other symbols exist or on the order they were stepped in:
two runs with the same seed show the same prices, which is what makes demos and tests
reproducible.

Candles: from the instrument's creation on they are built from its own trades, minute by
minute, whether or not anybody was connected to hear them, so a client that missed trades
while its websocket was down finds exactly those trades in the candles (the worker's gap
replay is tested against this). Before the creation there were no trades: that history is
synthetic, seeded per bucket, and ends at the creation price.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from cogmora.domain.enums import Market
from cogmora.domain.watchlist import market_of
from cogmora.simulator import book

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


MINUTES_KEPT = 14 * 24 * 60  # two weeks of 1-minute candles per instrument
TRADES_KEPT = 100  # KuCoin's trade history returns the latest 100


@dataclass(frozen=True, slots=True)
class Trade:
    """One printed trade, as the trade-history endpoints report it."""

    sequence: int
    trade_id: int
    time_ns: int
    price: Decimal
    size: Decimal
    side: str  # the taker's side


def candle_seconds(kind: str) -> int | None:
    """Seconds of a KuCoin spot candle type ("1min", "1hour"...), None when unknown."""
    return _CANDLE_SECONDS.get(kind)


def lots_of(size: Decimal) -> int:
    """A futures trade's size in whole contracts: the execution frames, the trade history
    and the candles' volume all use this one rule."""
    return max(1, int(size * 100) % 1000)


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
    born_s: int = 0
    born_price: Decimal = Decimal(0)
    # minute start (s) -> [open, high, low, close, volume, turnover], from real trades
    minutes: dict[int, list[Decimal]] = field(default_factory=dict)
    # The taker side of the last trade: it decides which side of the book the trade's price
    # is the best level of (simulator/book.py).
    side: str = "sell"
    depth: int = book.DEPTH
    book_sequence: int = 0  # advances by one per changed book level, as KuCoin's does
    # The book before the last trade and its sequence: the level-2 update is their difference.
    book_before: book.Top | None = None
    book_sequence_before: int = 0
    _top: book.Top | None = None  # the current Top, rebuilt when price or side moved
    recent: deque[Trade] = field(default_factory=lambda: deque(maxlen=TRADES_KEPT))

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
        inst.born_s = inst.time_ms // 1000
        inst.book_sequence = inst.sequence * 1000
        inst.born_price = price
        inst.minutes[inst.born_s // 60 * 60] = [price, price, price, price, Decimal(0), Decimal(0)]
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
        """Record a trade at `price` (a scripted price or a walk step).

        The taker bought if the price went up and sold if it went down (a repeat keeps the
        side), and the book moves so that the price is its best level on the maker's side:
        every trade prints at a price the book had, whatever jumped it there."""
        before = self.top
        if price > self.price:
            self.side = "buy"
        elif price < self.price:
            self.side = "sell"
        self.book_before = before
        self.book_sequence_before = self.book_sequence
        self.book_sequence += book.changed_levels(
            before, book.Top(price, self.side, self.increment), self.depth
        )
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
        self._record_minute(price)
        self.recent.append(
            Trade(self.sequence, self.trade_id, self.time_ms * 1_000_000, price,
                  self.last_size, self.side)
        )
        # The mark follows the last trade loosely: a fair price without the trade noise.
        self.mark = price

    @property
    def top(self) -> book.Top:
        top = self._top
        if (top is None or top.price is not self.price or top.side is not self.side
                or top.increment is not self.increment):
            top = self._top = book.Top(self.price, self.side, self.increment)
        return top

    @property
    def best_bid(self) -> Decimal:
        return self.top.bid

    @property
    def best_ask(self) -> Decimal:
        return self.top.ask

    @property
    def change_price(self) -> Decimal:
        return self.price - self.open24h

    @property
    def change_rate(self) -> Decimal:
        if not self.open24h:
            return Decimal(0)
        return (self.change_price / self.open24h).quantize(Decimal("0.0001"))

    def _record_minute(self, price: Decimal) -> None:
        minute = self.time_ms // 60_000 * 60
        row = self.minutes.get(minute)
        size = self.last_size
        value = size * price
        if self.market is Market.FUTURES:
            # KuCoin's futures candles count contracts; the turnover is in the quote currency.
            lots = Decimal(lots_of(size))
            size, value = lots, lots * self.multiplier * price
        if row is None:
            self.minutes[minute] = [price, price, price, price, size, value]
            self.born_s = min(self.born_s, minute)  # a trade scripted into the past
            if len(self.minutes) > MINUTES_KEPT:
                del self.minutes[next(iter(self.minutes))]
            return
        if price > row[1]:
            row[1] = price
        if price < row[2]:
            row[2] = price
        row[3] = price
        row[4] += size
        row[5] += value

    def candles(self, start_s: int, end_s: int, width_s: int, limit: int = 1500) -> list[Candle]:
        """Candles of `width_s` seconds whose start lies in [start_s, end_s], oldest first,
        at most `limit` (the newest). Since the creation: the trades themselves (a bucket
        without a trade has no candle, as on KuCoin); before it: synthetic."""
        end_bucket = (end_s // width_s) * width_s
        start_bucket = (max(start_s, end_s - width_s * limit) // width_s) * width_s
        first_real = (self.born_s // width_s) * width_s
        if end_bucket < first_real:
            return self._synthetic(start_bucket, end_bucket, width_s, limit, self.price)
        out = []
        if start_bucket < first_real:
            out = self._synthetic(start_bucket, first_real - width_s, width_s, limit,
                                  self.born_price)
        out += self._recorded(max(start_bucket, first_real), end_bucket, width_s)
        return out[-limit:]

    def _recorded(self, start_bucket: int, end_bucket: int, width_s: int) -> list[Candle]:
        buckets: dict[int, list[Decimal]] = {}
        for minute in sorted(m for m in self.minutes if start_bucket <= m < end_bucket + width_s):
            o, h, lo, c, v, t = self.minutes[minute]
            bucket = minute // width_s * width_s
            row = buckets.get(bucket)
            if row is None:
                buckets[bucket] = [o, h, lo, c, v, t]
            else:
                row[1] = max(row[1], h)
                row[2] = min(row[2], lo)
                row[3] = c
                row[4] += v
                row[5] += t
        return [Candle(b, r[0], r[3], r[1], r[2], r[4], r[5]) for b, r in buckets.items()]

    def _synthetic(
        self, start_bucket: int, end_bucket: int, width_s: int, limit: int, close: Decimal
    ) -> list[Candle]:
        """Candles ending at `close`, each one's path seeded by (symbol, bucket start), so
        asking twice for the same range gives the same candles."""
        out: list[Candle] = []
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
