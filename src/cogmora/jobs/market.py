"""KuCoin market data for the scheduled jobs: candles, fresh prices and 24h snapshots.

Ten thousand agents due at the same quarter-hour mostly trade the same few symbols, and a
closed candle never changes: candles are therefore fetched once per (symbol, interval,
closed bucket) and shared, and concurrent askers wait on the one request in flight
(single flight). Without that, one slot would be ten thousand calls against KuCoin's
public rate limit for identical answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar, cast

from cogmora.domain.enums import Market
from cogmora.domain.models import PriceQuote
from cogmora.domain.money import ZERO
from cogmora.domain.schedule import parse_schedule
from cogmora.domain.watchlist import TickerStats, market_of
from cogmora.errors import CogmoraError, NotFound
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.jobs.agent.context import Candle
from cogmora.services.clock import Clock
from cogmora.services.prices import LivePrices
from cogmora.services.symbols import SymbolCatalog

T = TypeVar("T")

# Candle types both KuCoin hosts serve, with their width in minutes.
LADDER: tuple[tuple[str, int], ...] = (
    ("1min", 1),
    ("5min", 5),
    ("15min", 15),
    ("30min", 30),
    ("1hour", 60),
    ("4hour", 240),
    ("1day", 1440),
)
WIDTH = dict(LADDER)


def candle_interval(schedule: str) -> str:
    """The candle an agent decides on: the widest one no longer than its interval (an agent
    running every 15 minutes looks at 15-minute candles); hourly for a cron schedule."""
    parsed = parse_schedule(schedule)
    if parsed.interval is None:
        return "1hour"
    minutes = parsed.interval.total_seconds() / 60
    chosen = LADDER[0][0]
    for name, width in LADDER:
        if width <= minutes:
            chosen = name
    return chosen


class CandleSource(Protocol):
    async def candles(
        self, symbol: str, interval: str, now: datetime, count: int
    ) -> tuple[Candle, ...]:
        """Up to `count` closed candles ending before `now`'s open bucket, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """One refresh's view of the exchange: stats per listed symbol with data, and what the
    snapshot can vouch for (`covered`): a market whose fetch failed says nothing."""

    stats: dict[str, TickerStats] = field(default_factory=dict)
    covered: frozenset[Market] = frozenset()
    listed_without_data: frozenset[str] = frozenset()
    listed: dict[Market, frozenset[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class SingleFlight:
    """Concurrent callers of one key share one call; a failure is not remembered."""

    def __init__(self) -> None:
        self._inflight: dict[object, asyncio.Future[Any]] = {}

    async def run(self, key: object, call: Callable[[], Awaitable[T]]) -> T:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(call())
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # A caller that times out must not cancel the others' shared request.
        result = await asyncio.shield(task)
        return cast(T, result)


class MarketData:
    """Both KuCoin hosts for the jobs; also a last-resort `PriceSource` for opens."""

    def __init__(
        self,
        spot: KucoinRest,
        futures: KucoinRest,
        clock: Clock,
        live: LivePrices | None = None,
        max_buckets: int = 4096,
    ) -> None:
        self._rest = {Market.SPOT: spot, Market.FUTURES: futures}
        self._clock = clock
        self._live = live
        self._candles: dict[tuple[str, str, int], tuple[Candle, ...]] = {}
        self._max_buckets = max_buckets
        self._flight = SingleFlight()
        self.candle_calls = 0

    @classmethod
    def connect(
        cls, spot_url: str, futures_url: str, clock: Clock, live: LivePrices | None = None
    ) -> MarketData:
        return cls(
            KucoinRest(spot_url, Market.SPOT),
            KucoinRest(futures_url, Market.FUTURES),
            clock,
            live,
        )

    async def aclose(self) -> None:
        for rest in self._rest.values():
            await rest.aclose()

    def rest(self, market: Market) -> KucoinRest:
        return self._rest[market]

    # ------------------------------------------------------------ candles

    async def candles(
        self, symbol: str, interval: str, now: datetime, count: int
    ) -> tuple[Candle, ...]:
        width = WIDTH[interval] * 60
        open_bucket = int(now.timestamp()) // width * width
        key = (symbol, interval, open_bucket)
        cached = self._candles.get(key)
        if cached is not None and len(cached) >= count:
            return cached[-count:]

        async def fetch() -> tuple[Candle, ...]:
            self.candle_calls += 1
            rows = await self._rest[market_of(symbol)].candles(
                symbol,
                interval,
                start=datetime.fromtimestamp(open_bucket - width * count, tz=UTC),
                end=datetime.fromtimestamp(open_bucket - 1, tz=UTC),
            )
            closed = tuple(
                Candle(r.start, r.open, r.high, r.low, r.close, r.volume)
                for r in rows
                if int(r.start.timestamp()) + width <= open_bucket
            )
            if len(self._candles) >= self._max_buckets:
                self._candles.clear()
            self._candles[key] = closed
            return closed

        series = await self._flight.run(("candles", *key, count), fetch)
        return series[-count:]

    # ------------------------------------------------------------ prices

    async def latest(self, symbol: str, market: Market) -> PriceQuote | None:
        """KuCoin's REST ticker, for a process without a feed; None for an unknown symbol."""

        async def fetch() -> PriceQuote | None:
            ask = self._rest[market].last_price
            try:
                if self._live is not None:
                    # A feed tick that arrived meanwhile wins (services/prices.py).
                    return await self._live.put_rest(symbol, lambda: ask(symbol), self._clock.now)
                price, _ = await ask(symbol)
            except NotFound:
                return None
            return PriceQuote(symbol, price, self._clock.now())

        return await self._flight.run(("price", symbol, market), fetch)

    # ------------------------------------------------------------ snapshots

    async def snapshot(self, markets: Iterable[Market] = tuple(Market)) -> MarketSnapshot:
        """All tickers of the asked markets, one call each, fetched concurrently."""
        wanted = list(dict.fromkeys(markets))
        results = await asyncio.gather(
            *(self._market_stats(m) for m in wanted), return_exceptions=True
        )
        stats: dict[str, TickerStats] = {}
        listed: dict[Market, frozenset[str]] = {}
        errors: dict[str, str] = {}
        no_data: set[str] = set()
        for market, result in zip(wanted, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, CogmoraError):
                    raise result
                errors[market.value] = str(result)
                continue
            market_stats, names = result
            stats.update(market_stats)
            listed[market] = frozenset(names)
            no_data.update(s for s in names if s not in market_stats)
        return MarketSnapshot(stats, frozenset(listed), frozenset(no_data), listed, errors)

    async def _market_stats(self, market: Market) -> tuple[dict[str, TickerStats], list[str]]:
        stats: dict[str, TickerStats] = {}
        listed: list[str] = []
        if market is Market.SPOT:
            tickers = await self._rest[market].all_tickers()
            for t in tickers.ticker:
                listed.append(t.symbol)
                if t.last is not None:
                    stats[t.symbol] = _stats(market, t.last, t.change_rate, t.high, t.low, t.vol)
        else:
            for c in await self._rest[market].contracts_active():
                listed.append(c.symbol)
                if c.last_trade_price is not None:
                    stats[c.symbol] = _stats(
                        market,
                        c.last_trade_price,
                        c.price_chg_pct,
                        c.high_price,
                        c.low_price,
                        c.volume_of24h,
                    )
        return stats, listed


def update_catalog(catalog: SymbolCatalog, snap: MarketSnapshot) -> None:
    """Only markets the snapshot covers: a failed fetch must not empty the catalog."""
    for market, symbols in snap.listed.items():
        if market in snap.covered and symbols:
            catalog.update(market, symbols)


def _stats(
    market: Market,
    last: Decimal,
    change: Decimal | None,
    high: Decimal | None,
    low: Decimal | None,
    volume: Decimal | None,
) -> TickerStats:
    return TickerStats(
        market=market,
        last_price=last,
        change_rate_24h=change if change is not None else ZERO,
        high_24h=high if high is not None else last,
        low_24h=low if low is not None else last,
        volume_24h=volume if volume is not None else ZERO,
    )
