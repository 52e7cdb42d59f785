"""Frames a real exchange sends on a bad day, for the fault suite: the same trade twice,
trades out of order, a trade whose price is absurd (zero, negative, NaN, a typo a million
times off). Each is a real ticker frame on the symbol's own topic, with the instrument's
sequence advanced as KuCoin's would be, so only the one property under test is wrong.

    POST /control/duplicate  {"symbol": "BTC-USDT", "price": "58000", "copies": 2}
    POST /control/reordered  {"symbol": "BTC-USDT", "prices": ["58000", "60000"]}
    POST /control/absurd     {"symbol": "BTC-USDT", "price": "-1"}   (any JSON value)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cogmora.domain.enums import Market
from cogmora.simulator import frames

if TYPE_CHECKING:
    from cogmora.simulator.market import Instrument
    from cogmora.simulator.server import KucoinSimulator
    from cogmora.simulator.state import Host


def _topic_and_frame(inst: Instrument) -> tuple[str, str]:
    if inst.market is Market.SPOT:
        return f"/market/ticker:{inst.symbol}", frames.spot_ticker(inst)
    return f"/contractMarket/execution:{inst.symbol}", frames.futures_execution(inst)


async def _send(host: Host, topic: str, frame: str) -> int:
    sent = await host.hub.publish(topic, frame)
    host.frames_sent += sent
    return sent


async def duplicate(sim: KucoinSimulator, symbol: str, price: Decimal, copies: int = 2) -> int:
    """One trade at `price`, its frame sent `copies` times (same sequence, same time)."""
    host, inst = sim.host(symbol), sim._instrument(symbol, price)
    inst.trade(price)
    topic, frame = _topic_and_frame(inst)
    return sum([await _send(host, topic, frame) for _ in range(copies)])


async def reordered(sim: KucoinSimulator, symbol: str, prices: Sequence[Decimal]) -> int:
    """Trades at each price in turn, their frames delivered newest first."""
    host = sim.host(symbol)
    built = []
    for price in prices:
        inst = sim._instrument(symbol, price)
        inst.trade(price)
        built.append(_topic_and_frame(inst))
    return sum([await _send(host, topic, frame) for topic, frame in reversed(built)])


async def absurd(sim: KucoinSimulator, symbol: str, raw_price: Any) -> int:
    """A well-formed ticker frame whose price is `raw_price` (any JSON value), with a fresh
    sequence; the instrument's own price does not move."""
    host = sim.host(symbol)
    inst = sim._instrument(symbol, sim.price(symbol))
    inst.trade(inst.price)
    topic, frame = _topic_and_frame(inst)
    doc = json.loads(frame)
    doc["data"]["price"] = raw_price
    return await _send(host, topic, json.dumps(doc))


def add_frame_fault_routes(app: web.Application, sim: KucoinSimulator) -> None:
    from cogmora.simulator.control import _route

    async def dup(b: dict[str, Any]) -> Any:
        copies = int(b.get("copies", 2))
        return await duplicate(sim, str(b["symbol"]), Decimal(str(b["price"])), copies)

    async def reorder(b: dict[str, Any]) -> Any:
        return await reordered(sim, str(b["symbol"]), [Decimal(str(p)) for p in b["prices"]])

    async def bad(b: dict[str, Any]) -> Any:
        return await absurd(sim, str(b["symbol"]), b["price"])

    for path, action in {"duplicate": dup, "reordered": reorder, "absurd": bad}.items():
        app.router.add_post(f"/control/{path}", _route(action))
