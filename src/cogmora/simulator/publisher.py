"""Turning a price change into the data frames each subscribed topic expects.

Frames are only built for topics somebody listens to, so an idle simulator with twenty
walking symbols costs almost nothing. A trade goes out book first, then the trade itself,
then the candles it changed: a client that follows the book and the trades together sees
each trade print at a level of the book it already has.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from cogmora.domain.enums import Market
from cogmora.simulator import book_frames, frames
from cogmora.simulator.hub import Session
from cogmora.simulator.market import Instrument, candle_seconds, now_ms
from cogmora.simulator.state import SPOT_MARKETS, Host

CANDLE_KINDS = ("1min", "3min", "5min", "15min", "30min", "1hour", "2hour", "4hour",
                "6hour", "8hour", "12hour", "1day", "1week")


def trade_topics(inst: Instrument) -> tuple[str, ...]:
    if inst.market is Market.SPOT:
        return (f"/market/ticker:{inst.symbol}", "/market/ticker:all")
    return (
        f"/contractMarket/execution:{inst.symbol}",
        f"/contractMarket/ticker:{inst.symbol}",
        f"/contractMarket/tickerV2:{inst.symbol}",
    )


def mark_topic(inst: Instrument) -> str:
    return f"/contract/instrument:{inst.symbol}"


def is_watched(host: Host, inst: Instrument) -> bool:
    return host.hub.watches(inst.symbol)


async def _send(host: Host, topic: str, build: Callable[..., str], *args: Any) -> int:
    """Publish the frame `build(*args)` makes, only if `topic` has subscribers."""
    if not host.hub.has_subscribers(topic):
        return 0
    return await host.hub.publish(topic, build(*args))


@lru_cache(maxsize=4096)
def _book_topics(symbol: str, futures: bool) -> tuple[str, str, tuple[tuple[str, str, int], ...]]:
    """(incremental topic, level-1 topic or "", ((depth topic, prefix, levels), ...)),
    built once per symbol: publishing runs per trade."""
    if futures:
        depth = "/contractMarket/level2Depth"
        return (f"/contractMarket/level2:{symbol}", "",
                tuple((f"{depth}{n}:{symbol}", f"{depth}{n}", n) for n in (5, 50)))
    depth = "/spotMarket/level2Depth"
    return (f"/market/level2:{symbol}", f"/spotMarket/level1:{symbol}",
            tuple((f"{depth}{n}:{symbol}", f"{depth}{n}", n) for n in (5, 50)))


async def publish_book(host: Host, inst: Instrument) -> int:
    """The book after the instrument's last trade, on every book topic."""
    hub = host.hub
    futures = inst.market is Market.FUTURES
    incremental, level1, depths = _book_topics(inst.symbol, futures)
    sent = 0
    if hub.has_subscribers(incremental):
        if futures:
            for update in book_frames.futures_updates(inst):
                sent += await hub.publish(incremental, update)
        else:
            spot_update = book_frames.spot_update(inst)
            if spot_update is not None:
                sent += await hub.publish(incremental, spot_update)
    if level1:
        sent += await _send(host, level1, _level1, inst)
    for topic, prefix, n in depths:
        sent += await _send(host, topic, book_frames.depth, inst, prefix, n)
    return sent


def _level1(inst: Instrument) -> str:
    return frames.spot_level1(inst, *frames.top_sizes(inst))


@lru_cache(maxsize=4096)
def _candle_topics(symbol: str, futures: bool) -> tuple[tuple[str, str], ...]:
    """(kind, topic) of every candle topic of `symbol`, built once per symbol."""
    prefix = "/contractMarket/limitCandle" if futures else "/market/candles"
    return tuple((kind, f"{prefix}:{symbol}_{kind}") for kind in CANDLE_KINDS)


async def publish_candles(host: Host, inst: Instrument) -> int:
    sent = 0
    has = host.hub.has_subscribers
    for kind, topic in _candle_topics(inst.symbol, inst.market is Market.FUTURES):
        if has(topic):
            sent += await host.hub.publish(topic, candle_frame(inst, kind))
    return sent


def candle_frame(inst: Instrument, kind: str) -> str:
    """The running candle of `kind` that holds the last trade."""
    width = candle_seconds(kind) or 60
    bucket = inst.time_ms // 1000 // width * width
    rows = inst.candles(bucket, bucket, width, limit=1)
    c = rows[-1]
    # Futures: KuCoin's sixth value is wrong ("will be fixed"), the seventh is the volume
    # (ccxt reads it there); both carry the volume here.
    last = c.volume if inst.market is Market.FUTURES else c.turnover
    row = [str(c.start_s), *(frames.s(v) for v in (c.open, c.close, c.high, c.low,
                                                    c.volume, last))]
    return frames.candle_update(inst, kind, row, inst.market is Market.FUTURES)


async def publish_trade(host: Host, inst: Instrument) -> int:
    """Publish the instrument's current trade to every topic it changes; returns frames sent."""
    hub = host.hub
    if not hub.watches(inst.symbol):
        return 0
    sym = inst.symbol
    sent = await publish_book(host, inst)
    if inst.market is Market.SPOT:
        topic = f"/market/ticker:{sym}"
        if hub.has_subscribers(topic):
            sent += await hub.publish(topic, frames.spot_ticker(inst))
        if hub.has_subscribers("/market/ticker:all"):
            sent += await hub.publish("/market/ticker:all", frames.spot_ticker_all(inst))
        sent += await _send(host, f"/market/match:{sym}", frames.spot_match, inst)
    else:
        topic = f"/contractMarket/execution:{sym}"
        if hub.has_subscribers(topic):
            sent += await hub.publish(topic, frames.futures_execution(inst))
        topic = f"/contractMarket/ticker:{sym}"
        if hub.has_subscribers(topic):
            sent += await hub.publish(topic, frames.futures_ticker(inst))
        topic = f"/contractMarket/tickerV2:{sym}"
        if hub.has_subscribers(topic):
            sent += await hub.publish(topic, frames.futures_ticker_v2(inst))
    sent += await publish_candles(host, inst)
    host.frames_sent += sent
    return sent


async def publish_mark(host: Host, inst: Instrument) -> int:
    return await _publish_instrument(host, inst, lambda at: frames.futures_instrument(inst, at))


async def publish_funding(host: Host, inst: Instrument) -> int:
    """The predicted funding rate on `/contract/instrument` (KuCoin: once a minute)."""
    return await _publish_instrument(
        host, inst, lambda at: frames.futures_funding(inst, host.funding.rate(inst.symbol, at), at)
    )


async def _publish_instrument(host: Host, inst: Instrument, build: Callable[[int], str]) -> int:
    """The frame `build(now)` makes on a futures symbol's `/contract/instrument` topic (its
    mark price and its funding rate share it), only if somebody listens."""
    topic = mark_topic(inst)
    if inst.market is not Market.FUTURES or not host.hub.has_subscribers(topic):
        return 0
    sent = await host.hub.publish(topic, build(now_ms()))
    host.frames_sent += sent
    return sent


async def publish_snapshots(host: Host) -> int:
    """The 24 h snapshots (KuCoin: spot every 2 s, futures every 5 s)."""
    hub = host.hub
    at = now_ms()
    sent = 0
    for inst in tuple(host.instruments.values()):
        if inst.market is Market.FUTURES:
            sent += await _send(host, f"/contractMarket/snapshot:{inst.symbol}",
                                frames.futures_snapshot, inst, at)
            continue
        topic = f"/market/snapshot:{inst.symbol}"
        sent += await _send(host, topic, frames.spot_snapshot, inst, topic, at)
        for market in SPOT_MARKETS:
            topic = f"/market/snapshot:{market}"
            if hub.has_subscribers(topic):
                sent += await hub.publish(topic, frames.spot_snapshot(inst, topic, at))
    host.frames_sent += sent
    return sent


async def greet(host: Host, session: Session, topics: list[str]) -> None:
    """Send a new subscriber the current state of each snapshot-style topic it joined."""
    at = now_ms()
    for topic in topics:
        prefix, _, arg = topic.partition(":")
        if prefix == "/market/snapshot" and arg in SPOT_MARKETS:
            for each in tuple(host.instruments.values()):
                await session.send(frames.spot_snapshot(each, topic, at))
            continue
        symbol, _, kind = arg.rpartition("_")
        if prefix in ("/market/candles", "/contractMarket/limitCandle"):
            candled = host.instruments.get(symbol)
            if candled is not None:
                await session.send(candle_frame(candled, kind))
            continue
        inst = host.instruments.get(arg)
        if inst is None:
            continue
        frame = _greeting(inst, prefix, topic, at)
        if frame is not None:
            await session.send(frame)


def _greeting(inst: Instrument, prefix: str, topic: str, at: int) -> str | None:
    if prefix == "/market/snapshot":
        return frames.spot_snapshot(inst, topic, at)
    if prefix == "/contractMarket/snapshot":
        return frames.futures_snapshot(inst, at)
    if prefix == "/spotMarket/level1":
        return _level1(inst)
    if prefix.endswith(("level2Depth5", "level2Depth50")):
        return book_frames.depth(inst, prefix, 5 if prefix.endswith("5") else 50)
    return None


async def trade_at(host: Host, inst: Instrument, price: Decimal, at_ms: int | None = None) -> int:
    inst.trade(price, at_ms=at_ms)
    return await publish_trade(host, inst)


async def mark_at(host: Host, inst: Instrument, price: Decimal) -> int:
    inst.mark = price
    return await publish_mark(host, inst)
