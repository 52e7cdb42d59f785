"""A gap in the feed is replayed, not forgotten (SPEC 5.1).

Whenever the worker may have missed trades of a followed symbol (its connection died or
stalled, the worker restarted, it starts after downtime), this sits between the feed and
the engine and, per symbol:

1. holds the symbol's live ticks from the moment its connection is lost (or from start-up)
   until the replay is done, so no new tick reaches the book before the gap's past;
2. once the exchange acknowledges the symbol again, fetches KuCoin's 1-minute candles from
   the time up to which the feed was complete (after a restart: the stored
   `prices/{symbol}`) to now, and walks them in time order through the book
   (`domain.gap`): what they crossed is closed or fired at the gap's fill prices with
   `details.recovered`; the trailing peaks they moved are handed to the trailing writer
   at once (`TrailingWriter.soon`), so a second crash does not lose them;
3. evaluates the current REST price (level 1 / ticker) like a tick, so a level that stands
   crossed closes without waiting for a trade, after the held ticks heard before it was
   asked; a trade heard while REST answered is newer than the answer and wins: the answer
   is dropped (`services.prices.unless_overtaken`, the rule of every REST price);
4. releases the held ticks, in order.

A symbol whose candles cannot be fetched does not hold its live ticks for long: after a
few tries they are released and the candles are retried in the background (the gap stays
`recovering` until then). A newly followed symbol has no gap (nothing of it was missed),
only the REST price. `recovering` names the symbols being replayed, for /healthz.

Futures liquidations are replayed from the contract's trade candles, like every other
level, although live ticks of the mark price can liquidate too: KuCoin keeps no history
of the mark price (`/api/v1/kline/query` serves a contract's trades or an index symbol
such as `.KXBTUSDT`; the mark price has only `/api/v1/mark-price/{symbol}/current`), so
there is nothing truer to replay. A level only the mark price reached during the gap
fires on the first live mark tick that still stands beyond it (RELIABILITY.md, issue 8).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import structlog

from cogmora.domain.enums import Market
from cogmora.domain.gap import CANDLE_SECONDS, GapCandle, GapFill, walk
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.errors import CogmoraError, NotFound
from cogmora.feeds.kucoin.rest import Candle
from cogmora.services.prices import unless_overtaken

log = structlog.get_logger("cogmora.gap")

TickSink = Callable[[list[Tick]], None]


class MarketRest(Protocol):
    """What the replay asks of one KuCoin host (feeds.kucoin.rest.KucoinRest)."""

    async def candles(
        self,
        symbol: str,
        interval: str = "1min",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Candle]: ...

    async def last_price(self, symbol: str) -> tuple[Decimal, datetime]: ...


@dataclass(frozen=True, slots=True)
class GapOptions:
    margin_s: float = 2.0  # start the window this much earlier (clock skew)
    max_window_s: float = 7 * 24 * 3600.0  # a longer downtime replays its last week only
    attempts: int = 3  # candle fetches before the live ticks are released
    retry_s: float = 0.5  # first pause between tries, doubling
    retry_max_s: float = 60.0
    spot_page: int = 1500  # candles per request (KuCoin: 1500 spot)
    futures_page: int = 500  # (KuCoin: 500 futures)


class GapReplay:
    """`on_ticks` is the feed's consumer; `lost`/`live`/`dropped` its GapListener."""

    def __init__(
        self,
        engine: Engine,
        downstream: TickSink,
        rests: Mapping[Market, MarketRest],
        market_of: Callable[[str], Market | None],
        metrics: EngineMetrics,
        options: GapOptions | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._downstream = downstream
        self._rests = rests
        self._market_of = market_of
        self._metrics = metrics
        self._options = options or GapOptions()
        self._now = now or (lambda: datetime.now(UTC))
        self._held: set[str] = set()
        self._buffers: dict[str, list[Tick]] = {}
        self._heard: dict[str, int] = {}  # trade ticks held per symbol, ever (REST's guard)
        self._gaps: dict[str, float] = {}  # symbol -> complete until (epoch s)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()  # acknowledged again while a replay ran
        self._retrying: dict[str, asyncio.Task[None]] = {}
        self.replays = 0
        self.recovered = 0  # fills found in candles, queued to the engine

    # ---------------------------------------------------------------- state

    @property
    def recovering(self) -> frozenset[str]:
        """Symbols whose gap is being replayed (or whose candles are being retried)."""
        return frozenset(self._tasks) | frozenset(self._retrying)

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    async def idle(self) -> None:
        """Wait until no replay runs (tests, benchmarks)."""
        while self._tasks or self._retrying:
            await asyncio.gather(
                *self._tasks.values(), *self._retrying.values(), return_exceptions=True
            )

    # ---------------------------------------------------------------- ticks

    def on_ticks(self, ticks: list[Tick]) -> None:
        if not self._held:
            self._downstream(ticks)
            return
        held, passed, heard = self._held, [], self._heard
        for tick in ticks:
            if tick.symbol in held:
                self._buffers.setdefault(tick.symbol, []).append(tick)
                if tick.kind is not PriceKind.MARK:
                    heard[tick.symbol] = heard.get(tick.symbol, 0) + 1
            else:
                passed.append(tick)
        if passed:
            self._downstream(passed)

    # ---------------------------------------------------------------- listener

    def seed(self, symbol: str, complete_until: datetime) -> None:
        """Start-up: `symbol` was last heard at `complete_until` (its stored price)."""
        self._gaps.setdefault(symbol, complete_until.timestamp())
        self._held.add(symbol)

    def lost(self, symbols: Collection[str], complete_until_ns: int) -> None:
        until = complete_until_ns / 1e9
        for symbol in symbols:
            self._gaps.setdefault(symbol, until)  # an older gap still open wins
            self._held.add(symbol)

    def live(self, symbols: Collection[str]) -> None:
        for symbol in symbols:
            self._held.add(symbol)
            if symbol in self._tasks:
                self._again.add(symbol)
                continue
            self._start(symbol)

    def dropped(self, symbols: Collection[str]) -> None:
        for symbol in symbols:
            self._gaps.pop(symbol, None)
            self._again.discard(symbol)
            for tasks in (self._tasks, self._retrying):
                task = tasks.pop(symbol, None)
                if task is not None:
                    task.cancel()
            self._release(symbol)

    async def aclose(self) -> None:
        tasks = [*self._tasks.values(), *self._retrying.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---------------------------------------------------------------- replay

    def _start(self, symbol: str) -> None:
        task = asyncio.get_running_loop().create_task(self._replay(symbol))
        self._tasks[symbol] = task

    async def _replay(self, symbol: str) -> None:
        try:
            while True:
                await self._replay_once(symbol)
                if symbol not in self._again:
                    break
                self._again.discard(symbol)
        except Exception:
            log.exception("gap replay failed", symbol=symbol)
            self._engine_metric("error")
        finally:
            if self._tasks.get(symbol) is asyncio.current_task():
                del self._tasks[symbol]
                self._release(symbol)

    async def _replay_once(self, symbol: str) -> None:
        market = self._market_of(symbol)
        rest = self._rests.get(market) if market is not None else None
        if market is None or rest is None:
            return
        since = self._gaps.pop(symbol, None)
        end = self._now()
        if since is not None:
            start = self._window_start(since, end)
            candles = await self._fetch_tries(rest, market, symbol, start, end)
            if candles is None:
                self._engine_metric("deferred")
                self._retry_later(symbol, market, rest, start, end)
            else:
                self._walk(symbol, market, candles)
        await self._rest_price(symbol, market, rest)

    def _window_start(self, since: float, end: datetime) -> datetime:
        opts = self._options
        earliest = end.timestamp() - opts.max_window_s
        if since < earliest:
            log.warning("gap longer than the replay window; replaying its end only",
                        since=since, window_s=opts.max_window_s)
        return datetime.fromtimestamp(max(since - opts.margin_s, earliest), tz=UTC)

    async def _fetch_tries(
        self, rest: MarketRest, market: Market, symbol: str, start: datetime, end: datetime
    ) -> list[GapCandle] | None:
        delay = self._options.retry_s
        for attempt in range(self._options.attempts):
            try:
                return await self._fetch(rest, market, symbol, start, end)
            except CogmoraError as exc:
                log.warning("gap candles not fetched", symbol=symbol, error=str(exc),
                            attempt=attempt + 1)
                if attempt + 1 < self._options.attempts:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._options.retry_max_s)
        return None

    async def _fetch(
        self, rest: MarketRest, market: Market, symbol: str, start: datetime, end: datetime
    ) -> list[GapCandle]:
        page = self._options.spot_page if market is Market.SPOT else self._options.futures_page
        step = timedelta(seconds=CANDLE_SECONDS * page)
        out: dict[int, GapCandle] = {}
        lo = start
        while lo <= end:
            hi = min(lo + step - timedelta(seconds=1), end)
            for c in await rest.candles(symbol, "1min", lo, hi):
                s = int(c.start.timestamp())
                out[s] = GapCandle(s, c.open, c.high, c.low)
            lo = hi + timedelta(seconds=1)
        first = int(start.timestamp()) // CANDLE_SECONDS * CANDLE_SECONDS
        return [c for s, c in sorted(out.items()) if s >= first]

    def _walk(self, symbol: str, market: Market, candles: list[GapCandle]) -> int:
        engine = self._engine

        def fire(candle: GapCandle, fills: list[GapFill]) -> None:
            engine.on_recovered(market, fills, datetime.fromtimestamp(candle.end_s, tz=UTC))

        began = time.perf_counter()
        fills = walk(engine.book, symbol, candles, engine.index.created, fire)
        engine.trailing.soon()  # the peaks the candles moved, stored before another crash
        self.replays += 1
        self.recovered += fills
        self._engine_metric("replayed")
        log.info("gap replayed", symbol=symbol, candles=len(candles), fills=fills,
                 seconds=round(time.perf_counter() - began, 4))
        return fills

    def _retry_later(
        self, symbol: str, market: Market, rest: MarketRest, start: datetime, end: datetime
    ) -> None:
        async def retry() -> None:
            delay = self._options.retry_s
            try:
                while True:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._options.retry_max_s)
                    try:
                        candles = await self._fetch(rest, market, symbol, start, end)
                    except CogmoraError as exc:
                        log.warning("gap candles still not fetched", symbol=symbol,
                                    error=str(exc), retry_in=delay)
                        continue
                    self._walk(symbol, market, candles)
                    return
            finally:
                if self._retrying.get(symbol) is asyncio.current_task():
                    del self._retrying[symbol]

        old = self._retrying.pop(symbol, None)
        if old is not None:
            old.cancel()
        self._retrying[symbol] = asyncio.get_running_loop().create_task(retry())

    async def _rest_price(self, symbol: str, market: Market, rest: MarketRest) -> None:
        """The REST price as a tick, unless a trade was heard while REST answered (that
        trade is newer, and reaches the book when the held ticks are released). Otherwise
        every held tick is older than the answer, so they go first and the answer last:
        the book and the live price end at the newest price known."""
        try:
            answer = await unless_overtaken(
                lambda: rest.last_price(symbol), lambda: self._heard.get(symbol, 0)
            )
        except NotFound:
            return
        except CogmoraError as exc:
            log.warning("no REST price after a (re)connect", symbol=symbol, error=str(exc))
            return
        if answer is None:
            self._engine_metric("rest_overtaken")
            return
        price, at = answer
        older = self._buffers.pop(symbol, None)
        if older:
            self._downstream(older)
        self._downstream(
            [Tick(symbol, market, price, exchange_ns=int(at.timestamp() * 1e9),
                  received_ns=time.time_ns())]
        )

    def _release(self, symbol: str) -> None:
        self._held.discard(symbol)
        self._heard.pop(symbol, None)
        buffered = self._buffers.pop(symbol, None)
        if buffered:
            self._downstream(buffered)

    def _engine_metric(self, result: str) -> None:
        self._metrics.gap_replays.labels(result).inc()
