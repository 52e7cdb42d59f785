"""KucoinFeed: live prices of a changing set of symbols, over as many connections as needed.

Symbols are spread over connection "slots" so that no connection holds more topics than
KuCoin allows (400 per spot connection). Each slot runs its own loop: fresh token, connect,
welcome, subscribe everything it owns in batches of at most 100 topics (each batch waits
for its ack), then read until the link dies, and reconnect with jittered exponential
backoff. Subscribing is reconciliation: a slot compares the topics it should have with the
topics the exchange acknowledged, so a reconnect, a dynamic subscribe and a retry after an
error are the same code path.

A `GapListener` hears when symbols stop being heard (their connection died: the time up to
which their data is complete), when they are live again (acknowledged on a connection),
and when they are dropped, so the worker can replay what a gap may have hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import aiohttp

from cogmora.domain.enums import Market
from cogmora.domain.ticks import Tick
from cogmora.errors import CogmoraError
from cogmora.feeds.kucoin.connection import (
    FrameSink,
    KucoinConnection,
    LinkDead,
    SubscribeError,
    Timing,
)
from cogmora.feeds.kucoin.decode import FrameDecoder
from cogmora.feeds.kucoin.metrics import FeedMetrics
from cogmora.feeds.kucoin.rest import KucoinRest

log = logging.getLogger(__name__)

SPOT_TICKER = "/market/ticker"
FUTURES_EXECUTION = "/contractMarket/execution"
FUTURES_INSTRUMENT = "/contract/instrument"


class GapListener(Protocol):
    def lost(self, symbols: Collection[str], complete_until_ns: int) -> None:
        """The connection carrying `symbols` died; what it sent before
        `complete_until_ns` (time.time_ns) has been delivered."""

    def live(self, symbols: Collection[str]) -> None:
        """The exchange acknowledged `symbols` on a connection; their ticks follow. Called
        before any of those ticks reaches `on_ticks`."""

    def dropped(self, symbols: Collection[str]) -> None:
        """`symbols` are no longer followed."""


@dataclass(frozen=True, slots=True)
class FeedOptions:
    topic_cap: int = 400  # topics per connection (KuCoin spot: 400)
    batch_size: int = 100  # topics per subscribe frame (KuCoin: 100)
    mark_prices: bool = True  # futures: also /contract/instrument (mark price ticks)
    timing: Timing = field(default_factory=Timing)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    healthy_after_s: float = 10.0  # a connection this old resets the backoff
    max_connection_age_s: float | None = 23 * 3600.0  # KuCoin cuts connections at 24 h
    resync_interval_s: float = 15.0  # retry topics the exchange refused temporarily


@dataclass(eq=False)
class _Slot:
    index: int
    symbols: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)  # single-symbol topics acknowledged
    conn: KucoinConnection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None
    retired: bool = False
    up: bool = False


class KucoinFeed:
    """`await feed.run()` until cancelled; `subscribe`/`unsubscribe` at any time (before run
    too). Ticks reach `on_ticks` in bursts, synchronously, on the event loop; with `frames`
    (spot only) every data frame goes there instead, parsed but not yet a Tick."""

    def __init__(
        self,
        rest: KucoinRest,
        market: Market,
        on_ticks: Callable[[list[Tick]], None],
        metrics: FeedMetrics,
        *,
        options: FeedOptions | None = None,
        http: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        gaps: GapListener | None = None,
        frames: FrameSink | None = None,
    ) -> None:
        if frames is not None and market is not Market.SPOT:
            raise ValueError("only spot ticker frames have a lean hot path")
        self.rest = rest
        self.market = market
        self.options = options or FeedOptions()
        self._on_ticks = on_ticks
        self._frames = frames  # spot: bursts of parsed frames instead of `on_ticks`
        self._gaps = gaps
        self._metrics = metrics.bind(market)
        self._http = http
        self._rng = rng or random.Random()
        self._decoder = FrameDecoder(market)
        if market is Market.SPOT:
            self._prefixes: tuple[str, ...] = (SPOT_TICKER,)
        elif self.options.mark_prices:
            self._prefixes = (FUTURES_EXECUTION, FUTURES_INSTRUMENT)
        else:
            self._prefixes = (FUTURES_EXECUTION,)
        per_slot = self.options.topic_cap // len(self._prefixes)
        if per_slot < 1:
            raise ValueError("topic_cap is smaller than the topics one symbol needs")
        self._per_slot = per_slot
        self._slots: list[_Slot] = [_Slot(0)]
        self._rejected: dict[str, str] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._last_tick_closed = 0  # newest tick of connections already closed
        self.reconnects = 0

    # ---- health ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Every connection the feed needs is up and subscribed."""
        return self._tg is not None and all(s.up for s in self._slots)

    @property
    def connections(self) -> int:
        return sum(1 for s in self._slots if s.conn is not None)

    @property
    def last_tick_ns(self) -> int:
        """Arrival time (time.time_ns) of the newest tick, 0 before the first."""
        live = max((s.conn.last_tick_ns for s in self._slots if s.conn), default=0)
        return max(live, self._last_tick_closed)

    @property
    def lag_seconds(self) -> float | None:
        """Arrival minus exchange time of the newest tick; None before the first."""
        lags = [s.conn.last_lag_s for s in self._slots if s.conn and s.conn.last_lag_s is not None]
        return max(lags) if lags else None

    def silence(self) -> tuple[float, float] | None:
        """(seconds, limit) of the quietest live connection, measured against its ping
        interval plus pong timeout; None without a live connection."""
        now = time.time_ns()
        quiet = [(s.conn.silent_seconds(now), s.conn.silence_limit_s)
                 for s in self._slots if s.up and s.conn is not None]
        return max(quiet, key=lambda q: q[0] - q[1]) if quiet else None

    @property
    def wanted_symbols(self) -> frozenset[str]:
        return frozenset(sym for s in self._slots for sym in s.symbols)

    @property
    def subscribed_symbols(self) -> frozenset[str]:
        """Symbols whose topics the exchange has acknowledged on a live connection."""
        out = set()
        for slot in self._slots:
            for sym in slot.symbols:
                if all(f"{p}:{sym}" in slot.acked for p in self._prefixes):
                    out.add(sym)
        return frozenset(out)

    @property
    def rejected_symbols(self) -> dict[str, str]:
        """Symbols the exchange refused (unknown topic), with its reason; not retried."""
        return dict(self._rejected)

    @property
    def topics_per_connection(self) -> list[int]:
        return [len(s.acked) for s in self._slots]

    async def fresh_price(self, symbol: str) -> tuple[Decimal, datetime]:
        """The last trade price and its time straight from REST (level-1 / ticker), for a
        symbol without a live subscription: the engine never opens at a stale price."""
        return await self.rest.last_price(symbol)

    # ---- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        """Hold the connections until cancelled."""
        own_http = self._http is None
        http = self._http or aiohttp.ClientSession()
        self._http = http
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for slot in self._slots:
                    self._start(slot)
                await asyncio.Event().wait()
        finally:
            self._tg = None
            for slot in self._slots:
                slot.up = False
            self._publish_gauges()
            if own_http:
                self._http = None
                await http.close()

    def _start(self, slot: _Slot) -> None:
        if self._tg is not None and (slot.task is None or slot.task.done()):
            slot.task = self._tg.create_task(self._run_slot(slot))

    async def subscribe(self, symbols: Iterable[str]) -> None:
        """Add symbols; returns once live connections have acknowledged them (symbols on a
        connection that is down are subscribed when it comes back)."""
        known = self.wanted_symbols
        new = [s for s in dict.fromkeys(symbols) if s and s not in known]
        if not new:
            return
        touched: list[_Slot] = []
        for sym in new:
            self._rejected.pop(sym, None)
            slot = next((s for s in self._slots if not s.retired
                         and len(s.symbols) < self._per_slot), None)
            if slot is None:
                slot = _Slot(max(s.index for s in self._slots) + 1)
                self._slots.append(slot)
            slot.symbols.add(sym)
            if slot not in touched:
                touched.append(slot)
        for slot in touched:
            if slot.conn is None:
                self._start(slot)
            else:
                await self._reconcile_quietly(slot)

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        """Drop symbols; a connection left with none is closed (the first one stays)."""
        gone = set(symbols)
        for slot in list(self._slots):
            if not slot.symbols & gone:
                continue
            slot.symbols -= gone
            if not slot.symbols and slot.index != 0:
                await self._retire(slot)
            elif slot.conn is not None:
                await self._reconcile_quietly(slot)
        for sym in gone:
            self._rejected.pop(sym, None)
        if self._gaps is not None and gone:
            self._gaps.dropped(gone)

    async def _retire(self, slot: _Slot) -> None:
        slot.retired = True
        self._slots.remove(slot)
        if slot.task is not None:
            slot.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slot.task
        self._publish_gauges()

    # ---- one connection slot ---------------------------------------------------------

    async def _run_slot(self, slot: _Slot) -> None:
        attempt = 0
        assert self._http is not None
        while not slot.retired:
            try:
                conn = await KucoinConnection.open(
                    self.rest, self._http, self._decoder, self._on_ticks, self._metrics,
                    self.options.timing, self._frames,
                )
            except CogmoraError as exc:
                self._metrics.error("connect")
                delay = self._backoff(attempt)
                attempt += 1
                log.warning("%s feed connection %d failed (%s); retry in %.2fs",
                            self.market, slot.index, exc, delay)
                await asyncio.sleep(delay)
                continue
            slot.conn = conn
            self._publish_gauges()
            try:
                async with asyncio.TaskGroup() as tg:
                    runner = tg.create_task(conn.run(self.options.max_connection_age_s))
                    await self._reconcile(slot)
                    slot.up = True
                    self._publish_gauges()
                    tg.create_task(self._resync(slot, runner))
                    await runner
                    raise LinkDead("connection ended")  # ends the resync task too
            except* (LinkDead, SubscribeError) as group:
                reason = conn.closed_reason or str(group.exceptions[0])
                log.info("%s feed connection %d lost: %s", self.market, slot.index, reason)
            finally:
                slot.up = False
                slot.conn = None
                main = self._prefixes[0] + ":"
                heard = [t[len(main):] for t in slot.acked if t.startswith(main)]
                slot.acked.clear()
                await conn.close()  # delivers the ticks it still holds
                self._last_tick_closed = max(self._last_tick_closed, conn.last_tick_ns)
                if self._gaps is not None and heard:
                    self._gaps.lost(heard, conn.last_frame_ns)
                self._publish_gauges()
            if slot.retired:
                return
            if time.monotonic() - conn.opened >= self.options.healthy_after_s:
                attempt = 0
            if conn.closed_reason != "recycled":
                self.reconnects += 1
                self._metrics.reconnects.inc()
                delay = self._backoff(attempt)
                attempt += 1
                await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with full jitter in its upper half."""
        opts = self.options
        ceiling = min(opts.backoff_max_s, opts.backoff_initial_s * float(2 ** min(attempt, 30)))
        return ceiling * self._rng.uniform(0.5, 1.0)

    async def _resync(self, slot: _Slot, runner: asyncio.Task[None]) -> None:
        while not runner.done():
            await asyncio.sleep(self.options.resync_interval_s)
            if self._missing(slot):
                await self._reconcile(slot)

    def _missing(self, slot: _Slot) -> bool:
        return any(f"{p}:{s}" not in slot.acked for s in slot.symbols for p in self._prefixes)

    async def _reconcile_quietly(self, slot: _Slot) -> None:
        try:
            await self._reconcile(slot)
        except (LinkDead, SubscribeError) as exc:
            # The slot's own loop sees the dead link and reconnects; nothing to do here.
            log.info("%s feed connection %d: %s", self.market, slot.index, exc)
            if slot.conn is not None:
                with contextlib.suppress(Exception):
                    await slot.conn.ws.close()

    async def _reconcile(self, slot: _Slot) -> None:
        """Make the exchange's subscriptions on this slot's connection match slot.symbols."""
        async with slot.lock:
            conn = slot.conn
            if conn is None:
                return
            for prefix in self._prefixes:
                stale = [t.partition(":")[2] for t in slot.acked
                         if t.startswith(prefix + ":") and t.partition(":")[2] not in slot.symbols]
                for batch in _chunks(stale, self.options.batch_size):
                    await conn.request("unsubscribe", f"{prefix}:{','.join(batch)}")
                    slot.acked.difference_update(f"{prefix}:{s}" for s in batch)
            for prefix in self._prefixes:
                wanted = sorted(s for s in slot.symbols if f"{prefix}:{s}" not in slot.acked)
                for batch in _chunks(wanted, self.options.batch_size):
                    await self._subscribe_batch(slot, conn, prefix, batch)
            self._publish_gauges()

    async def _subscribe_batch(
        self, slot: _Slot, conn: KucoinConnection, prefix: str, batch: list[str]
    ) -> None:
        try:
            await conn.request("subscribe", f"{prefix}:{','.join(batch)}")
        except SubscribeError as exc:
            self._metrics.error(f"subscribe_{exc.code}")
            if exc.code in (400, 404) and len(batch) > 1:
                # One bad symbol refuses the whole batch: find it by subscribing one by one.
                for sym in batch:
                    await self._subscribe_batch(slot, conn, prefix, [sym])
            elif exc.code in (400, 404):
                sym = batch[0]
                log.warning("%s feed: KuCoin refused %s:%s: %s", self.market, prefix, sym,
                            exc.text)
                self._rejected[sym] = exc.text
                slot.symbols.discard(sym)
            elif exc.code == 509 and "per time" in exc.text and len(batch) > 1:
                half = len(batch) // 2
                await self._subscribe_batch(slot, conn, prefix, batch[:half])
                await self._subscribe_batch(slot, conn, prefix, batch[half:])
            else:
                # Over a session cap, busy, system error: the resync loop tries again later.
                log.warning("%s feed: subscribe %s (%d symbols) refused: %s; will retry",
                            self.market, prefix, len(batch), exc)
            return
        slot.acked.update(f"{prefix}:{s}" for s in batch)
        if self._gaps is not None and prefix == self._prefixes[0]:
            self._gaps.live(batch)

    def _publish_gauges(self) -> None:
        m = self._metrics
        m.connections.set(self.connections)
        m.topics.set(sum(len(s.acked) for s in self._slots))
        m.connected.set(1 if self.connected else 0)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
