"""KucoinSimulator: a KuCoin-protocol exchange on loopback, spot and futures, with controls.

Two aiohttp listeners stand in for KuCoin's two hosts (`api.kucoin.com` and
`api-futures.kucoin.com`); each serves REST and, at `/`, the websocket endpoint its bullet
call hands out, exactly as the real token call points at a separate websocket host. Prices
come from a seeded random walk, a recorded file, or the control methods below, which tests
and the demo use to script crossings and faults (dropped connections, stalled pongs,
malformed frames, expired tokens, rate limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

from aiohttp import web

from cogmora.domain.enums import Market
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.domain.watchlist import market_of
from cogmora.feeds.recording import load_recording
from cogmora.simulator import frames, publisher
from cogmora.simulator.config import FUTURES_MULTIPLIERS, SimulatorConfig
from cogmora.simulator.hub import Hub
from cogmora.simulator.market import Instrument
from cogmora.simulator.rest import add_routes, kucoin_errors
from cogmora.simulator.state import Host
from cogmora.simulator.ws import websocket_handler

log = logging.getLogger(__name__)

PriceLike = Decimal | str | int


def _price(value: PriceLike) -> Decimal:
    price = Decimal(value)
    if not price.is_finite() or price <= 0:
        raise ValueError(f"price must be a positive number, got {value!r}")
    return price


class KucoinSimulator:
    """Start with `async with KucoinSimulator(config) as sim:` or `await sim.start()`."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.tick_rate = self.config.tick_rate
        cfg = self.config
        spot = {
            sym: Instrument.create(sym, Decimal(p), cfg.seed) for sym, p in cfg.spot.items()
        }
        futures = {
            sym: Instrument.create(
                sym, Decimal(p), cfg.seed, Decimal(FUTURES_MULTIPLIERS.get(sym, "1"))
            )
            for sym, p in cfg.futures.items()
        }
        self.hosts: dict[Market, Host] = {
            Market.SPOT: Host.create(Market.SPOT, cfg, spot),
            Market.FUTURES: Host.create(Market.FUTURES, cfg, futures),
        }
        self._runners: list[web.AppRunner] = []
        self._urls: dict[Market, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._recording: list[Tick] = []

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> KucoinSimulator:
        from cogmora.simulator.control import add_control_routes

        if self.config.record_file is not None:
            self._recording = await load_recording(self.config.record_file)
            for tick in self._recording:
                self._instrument(tick.symbol, tick.price)
        ports = {Market.SPOT: self.config.spot_port, Market.FUTURES: self.config.futures_port}
        for market, host in self.hosts.items():
            app = web.Application(middlewares=[kucoin_errors])
            add_routes(app, host)
            add_control_routes(app, self)

            async def ws_route(request: web.Request, host: Host = host) -> web.StreamResponse:
                return await websocket_handler(host, request)

            app.router.add_get("/", ws_route)
            runner = web.AppRunner(
                app, handle_signals=False, access_log=None, shutdown_timeout=0.5
            )
            await runner.setup()
            site = web.TCPSite(runner, self.config.host, ports[market])
            await site.start()
            self._runners.append(runner)
            port = _bound_port(site)
            base = f"http://{self.config.host}:{port}"
            self._urls[market] = base
            host.ws_url = f"ws://{self.config.host}:{port}/"
        loop = asyncio.get_running_loop()
        if self._recording:
            self._tasks.append(loop.create_task(self._replay_loop()))
        else:
            self._tasks.append(loop.create_task(self._walk_loop()))
        self._tasks.append(loop.create_task(self._mark_loop()))
        self._tasks.append(loop.create_task(self._timed_loop()))
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for host in self.hosts.values():
            await host.hub.close_all(code=1001, message=b"simulator stopping")
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> KucoinSimulator:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def spot_url(self) -> str:
        """REST base of the spot host, e.g. http://127.0.0.1:41234 (COGMORA_KUCOIN_SPOT_URL)."""
        return self._urls[Market.SPOT]

    @property
    def futures_url(self) -> str:
        """REST base of the futures host (COGMORA_KUCOIN_FUTURES_URL)."""
        return self._urls[Market.FUTURES]

    def url(self, market: Market) -> str:
        return self._urls[market]

    # ---- inspection ------------------------------------------------------------------

    def host(self, symbol_or_market: str | Market) -> Host:
        if isinstance(symbol_or_market, Market):
            return self.hosts[symbol_or_market]
        return self.hosts[market_of(symbol_or_market)]

    def symbols(self, market: Market) -> list[str]:
        return list(self.hosts[market].instruments)

    def price(self, symbol: str) -> Decimal:
        return self.host(symbol).instruments[symbol].price

    def mark_price(self, symbol: str) -> Decimal:
        return self.host(symbol).instruments[symbol].mark

    def connections(self, market: Market | None = None) -> int:
        return sum(len(h.hub.sessions) for h in self._hosts(market))

    def subscribed_topics(self, market: Market | None = None) -> set[str]:
        out: set[str] = set()
        for h in self._hosts(market):
            out |= h.hub.topics()
        return out

    def topics_per_connection(self, market: Market) -> list[int]:
        return sorted(len(s.topics) for s in self.hosts[market].hub.sessions)

    def state(self) -> dict[str, Any]:
        return {
            m.value: {
                "url": self._urls.get(m),
                "connections": len(h.hub.sessions),
                "connectionsOpened": h.connections_opened,
                "tokensIssued": h.tokens.issued,
                "pingsAnswered": h.pings_answered,
                "framesSent": h.frames_sent,
                "stallPongs": h.stall_pongs,
                "refusing": h.refuse_ws,
                "frozen": h.hub.frozen,
                "topics": sorted(h.hub.topics()),
                "prices": {s: frames.s(i.price) for s, i in h.instruments.items()},
            }
            for m, h in self.hosts.items()
        } | {"tickRate": self.tick_rate}

    async def wait_subscribed(self, symbols: Iterable[str]) -> None:
        """Wait until each symbol's main topic (ticker / execution) has a subscriber.

        Bound it with `asyncio.timeout(...)`."""
        wanted = list(symbols)
        for market in Market:
            hub = self.hosts[market].hub
            topics = [_main_topic(s) for s in wanted if market_of(s) is market]
            if topics:
                await hub.wait_until(partial(_all_subscribed, hub, topics))

    async def wait_connections(self, market: Market, count: int) -> None:
        """Wait until `market` has at least `count` websocket connections."""
        hub = self.hosts[market].hub
        await hub.wait_until(lambda: len(hub.sessions) >= count)

    # ---- controls --------------------------------------------------------------------

    async def set_price(self, symbol: str, price: PriceLike, at_ms: int | None = None) -> int:
        """A trade at `price` now (or at `at_ms`, to script the past into the candles),
        published to every subscriber; returns frames sent."""
        host = self.host(symbol)
        inst = self._instrument(symbol, price)
        return await publisher.trade_at(host, inst, _price(price), at_ms=at_ms)

    async def set_mark_price(self, symbol: str, price: PriceLike) -> int:
        """Publish a futures mark price now on `/contract/instrument:{symbol}`."""
        host = self.host(symbol)
        return await publisher.mark_at(host, self._instrument(symbol, price), _price(price))

    def set_funding_rate(self, symbol: str, rate: PriceLike | None) -> None:
        """Pin `symbol`'s funding rate (what /funding-rate/{symbol}/current and the
        contract list report) to `rate`; None lets it wander again."""
        value = None if rate is None else Decimal(rate)
        if value is not None and not value.is_finite():
            raise ValueError(f"rate must be a finite number, got {rate!r}")
        self.hosts[Market.FUTURES].funding.pin(symbol, value)

    def funding_rate(self, symbol: str, at_ms: int | None = None) -> Decimal:
        """The funding rate the futures host reports for `symbol` (now, or at `at_ms`)."""
        at = at_ms if at_ms is not None else time.time_ns() // 1_000_000
        return self.hosts[Market.FUTURES].funding.rate(symbol, at)

    async def publish_burst(self, symbol: str, prices: Sequence[PriceLike]) -> int:
        """Trades at each price back to back, with no pause in between."""
        host = self.host(symbol)
        values = [_price(p) for p in prices]
        inst = self._instrument(symbol, values[0]) if values else None
        sent = 0
        for value in values:
            assert inst is not None
            sent += await publisher.trade_at(host, inst, value)
        return sent

    async def play(self, steps: Sequence[tuple[str, PriceLike]], interval_s: float) -> int:
        """A script: each (symbol, price) published in turn, `interval_s` apart."""
        sent = 0
        for i, (symbol, price) in enumerate(steps):
            if i:
                await asyncio.sleep(interval_s)
            sent += await self.set_price(symbol, price)
        return sent

    async def drop_connections(self, market: Market | None = None) -> int:
        """Server-initiated close of every websocket (like KuCoin's 24 h or a restart)."""
        dropped = 0
        for h in self._hosts(market):
            dropped += await h.hub.close_all(code=1001, message=b"server is going away")
        return dropped

    def stall_pongs(self, on: bool = True, market: Market | None = None) -> None:
        """Stop (or resume) answering pings, so clients see a dead link."""
        for h in self._hosts(market):
            h.stall_pongs = on

    def refuse_connections(self, on: bool = True, market: Market | None = None) -> None:
        """Answer new websocket upgrades with 503 (or accept them again); with
        `drop_connections` this is an outage: the market and its candles go on unheard."""
        for h in self._hosts(market):
            h.refuse_ws = on

    def freeze(self, on: bool = True, market: Market | None = None) -> None:
        """Make every websocket silent (no data, no pong, no ack) while the market goes on:
        a stalled feed, which the client sees only by its ping timing out."""
        for h in self._hosts(market):
            h.hub.frozen = on

    def fail_candles(self, count: int, market: Market | None = None) -> None:
        """The next `count` candle requests answer HTTP 500 (the rest of REST works)."""
        for h in self._hosts(market):
            h.candle_failures = count

    async def send_malformed(
        self, payload: str = '{"type":"message","topic":', market: Market | None = None
    ) -> int:
        """Send a frame that is not valid KuCoin JSON to every connection."""
        count = 0
        for h in self._hosts(market):
            await h.hub.broadcast(payload)
            count += len(h.hub.sessions)
        return count

    def set_tick_rate(self, rate: float) -> None:
        """Random-walk ticks per second per watched symbol (0 stops the walk)."""
        if rate < 0:
            raise ValueError("tick rate must be >= 0")
        self.tick_rate = rate

    def expire_tokens(self, market: Market | None = None) -> int:
        """Every token issued so far becomes expired: new connections with it get 401."""
        return sum(h.tokens.expire_all() for h in self._hosts(market))

    def force_rate_limit(
        self, count: int, reset_ms: int = 1000, market: Market | None = None
    ) -> None:
        """The next `count` REST requests answer 429/429000 with gw-ratelimit-reset."""
        for h in self._hosts(market):
            h.limiter.forced = count
            h.limiter.forced_reset_ms = reset_ms

    async def firehose(
        self, n: int, market: Market = Market.SPOT, symbols: Sequence[str] | None = None
    ) -> int:
        """Publish `n` trade frames as fast as possible, round robin over `symbols`
        (default: every symbol somebody subscribed to). Returns frames sent."""
        host = self.hosts[market]
        insts = [host.instruments[s] for s in symbols] if symbols else [
            i for i in host.instruments.values() if publisher.is_watched(host, i)
        ]
        if not insts or n <= 0:
            return 0
        # Pre-build a ring of frames so the loop measures sending, not formatting.
        ring: list[tuple[str, str]] = []
        for k in range(min(n, 4096)):
            inst = insts[k % len(insts)]
            inst.step(self.config.volatility)
            for topic in publisher.trade_topics(inst):
                if host.hub.has_subscribers(topic):
                    frame = (frames.spot_ticker(inst) if market is Market.SPOT
                             else frames.futures_execution(inst))
                    ring.append((topic, frame))
                    break
        if not ring:
            return 0
        sent = 0
        publish = host.hub.publish
        size = len(ring)
        for k in range(n):
            topic, frame = ring[k % size]
            sent += await publish(topic, frame)
        host.frames_sent += sent
        return sent

    # ---- internals -------------------------------------------------------------------

    def _hosts(self, market: Market | None) -> list[Host]:
        return list(self.hosts.values()) if market is None else [self.hosts[market]]

    def _instrument(self, symbol: str, price: PriceLike) -> Instrument:
        host = self.host(symbol)
        inst = host.instruments.get(symbol)
        if inst is None:
            mult = Decimal(FUTURES_MULTIPLIERS.get(symbol, "1"))
            inst = Instrument.create(symbol, _price(price), self.config.seed, mult)
            host.instruments[symbol] = inst
        return inst

    async def _walk_loop(self) -> None:
        vol = self.config.volatility
        while True:
            rate = self.tick_rate
            if rate <= 0:
                await asyncio.sleep(0.05)
                continue
            started = time.monotonic()
            every = self.config.walk_unwatched
            for host in self.hosts.values():
                for inst in tuple(host.instruments.values()):
                    if every or publisher.is_watched(host, inst):
                        inst.step(vol)
                        await publisher.publish_trade(host, inst)
            await asyncio.sleep(max(0.0, 1.0 / rate - (time.monotonic() - started)))

    async def _mark_loop(self) -> None:
        host = self.hosts[Market.FUTURES]
        while True:
            rate = self.config.mark_rate
            await asyncio.sleep(1.0 / rate if rate > 0 else 1.0)
            if rate <= 0:
                continue
            for inst in tuple(host.instruments.values()):
                await publisher.publish_mark(host, inst)

    async def _timed_loop(self) -> None:
        """KuCoin's timed pushes: the 24 h snapshots and the predicted funding rate."""
        cfg = self.config
        spot, futures = self.hosts[Market.SPOT], self.hosts[Market.FUTURES]
        periods = {"spot": cfg.snapshot_interval_s, "futures": cfg.futures_snapshot_interval_s,
                   "funding": cfg.funding_interval_s}
        due = {name: time.monotonic() + period for name, period in periods.items()}
        while True:
            await asyncio.sleep(max(0.01, min(due.values()) - time.monotonic()))
            now = time.monotonic()
            if now >= due["spot"]:
                await publisher.publish_snapshots(spot)
            if now >= due["futures"]:
                await publisher.publish_snapshots(futures)
            if now >= due["funding"]:
                for inst in tuple(futures.instruments.values()):
                    await publisher.publish_funding(futures, inst)
            for name, period in periods.items():
                if now >= due[name]:
                    due[name] = now + max(period, 0.01)

    async def _replay_loop(self) -> None:
        """Replay the recording at its recorded pace, forever (a loop per pass)."""
        ticks = self._recording
        while True:
            first = ticks[0].exchange_ns
            t0 = time.monotonic()
            for tick in ticks:
                due = (tick.exchange_ns - first) / 1e9
                delay = due - (time.monotonic() - t0)
                if delay > 0:
                    await asyncio.sleep(delay)
                host = self.host(tick.symbol)
                inst = self._instrument(tick.symbol, tick.price)
                if tick.kind is PriceKind.MARK:
                    await publisher.mark_at(host, inst, tick.price)
                else:
                    await publisher.trade_at(host, inst, tick.price)
            await asyncio.sleep(0.1)


def _bound_port(site: web.TCPSite) -> int:
    """The port the listener got (the config may ask for 0, an ephemeral port)."""
    server = site._server
    sockets: Any = getattr(server, "sockets", None) or ()
    if not sockets:
        raise RuntimeError("the simulator listener has no socket")
    return int(sockets[0].getsockname()[1])


def _all_subscribed(hub: Hub, topics: list[str]) -> bool:
    return all(hub.has_subscribers(t) for t in topics)


def _main_topic(symbol: str) -> str:
    if market_of(symbol) is Market.SPOT:
        return f"/market/ticker:{symbol}"
    return f"/contractMarket/execution:{symbol}"
