"""Turning a price change into the data frames each subscribed topic expects.

Frames are only built for topics somebody listens to, so an idle simulator with twenty
walking symbols costs almost nothing.
"""

from __future__ import annotations

from decimal import Decimal

from cogmora.domain.enums import Market
from cogmora.simulator import frames
from cogmora.simulator.market import Instrument, now_ms
from cogmora.simulator.state import Host


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
    hub = host.hub
    if any(hub.has_subscribers(t) for t in trade_topics(inst)):
        return True
    return inst.market is Market.FUTURES and hub.has_subscribers(mark_topic(inst))


async def publish_trade(host: Host, inst: Instrument) -> int:
    """Publish the instrument's current trade to every trade topic; returns frames sent."""
    hub = host.hub
    sent = 0
    sym = inst.symbol
    if inst.market is Market.SPOT:
        topic = f"/market/ticker:{sym}"
        if hub.has_subscribers(topic):
            sent += await hub.publish(topic, frames.spot_ticker(inst))
        if hub.has_subscribers("/market/ticker:all"):
            sent += await hub.publish("/market/ticker:all", frames.spot_ticker_all(inst))
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
    host.frames_sent += sent
    return sent


async def publish_mark(host: Host, inst: Instrument) -> int:
    topic = mark_topic(inst)
    if inst.market is not Market.FUTURES or not host.hub.has_subscribers(topic):
        return 0
    sent = await host.hub.publish(topic, frames.futures_instrument(inst, now_ms()))
    host.frames_sent += sent
    return sent


async def trade_at(host: Host, inst: Instrument, price: Decimal, at_ms: int | None = None) -> int:
    inst.trade(price, at_ms=at_ms)
    return await publish_trade(host, inst)


async def mark_at(host: Host, inst: Instrument, price: Decimal) -> int:
    inst.mark = price
    return await publish_mark(host, inst)
