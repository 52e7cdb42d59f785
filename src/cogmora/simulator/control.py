"""HTTP twins of the simulator's control methods, under /control/ on both hosts.

Out-of-process tests (the CLI's end-to-end suite, a worker started as a subprocess) script
the exchange through these; in-process code calls the KucoinSimulator methods directly.

    GET  /control/state
    POST /control/price        {"symbol": "BTC-USDT", "price": "65000", "atMs": optional}
    POST /control/mark         {"symbol": "XBTUSDTM", "price": "65000"}
    POST /control/burst        {"symbol": "BTC-USDT", "prices": ["1", "2"]}
    POST /control/drop         {"market": "spot"}          (market optional: both)
    POST /control/stall        {"on": true, "market": ...}
    POST /control/refuse       {"on": true, "market": ...}  (new websockets get 503)
    POST /control/freeze       {"on": true, "market": ...}  (websockets go silent)
    POST /control/fail-candles {"count": 3, "market": ...}  (candle requests answer 500)
    POST /control/malformed    {"payload": "...", "market": ...}
    POST /control/tick-rate    {"rate": 5}
    POST /control/expire-tokens {"market": ...}
    POST /control/rate-limit   {"count": 3, "resetMs": 500, "market": ...}
    POST /control/firehose     {"n": 100000, "market": "spot", "symbols": [...]}
    POST /control/funding      {"symbol": "XBTUSDTM", "rate": "0.0005"}  (rate null: unpin)
    POST /control/duplicate, /control/reordered, /control/absurd   (simulator/frame_faults.py)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cogmora.domain.enums import Market

if TYPE_CHECKING:
    from cogmora.simulator.server import KucoinSimulator

Action = Callable[[dict[str, Any]], Awaitable[Any]]


def _market(body: dict[str, Any]) -> Market | None:
    raw = body.get("market")
    return None if raw is None else Market(raw)


def _route(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                parsed = await request.json()
            except ValueError:
                return web.json_response({"error": "body must be JSON"}, status=400)
            if not isinstance(parsed, dict):
                return web.json_response({"error": "body must be an object"}, status=400)
            body = parsed
        try:
            result = await action(body)
        except (KeyError, ValueError, ArithmeticError) as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        return web.json_response({"ok": True, "result": result})

    return handle


def add_control_routes(app: web.Application, sim: KucoinSimulator) -> None:
    async def state(_: dict[str, Any]) -> Any:
        return sim.state()

    async def price(b: dict[str, Any]) -> Any:
        at = None if b.get("atMs") is None else int(b["atMs"])
        return await sim.set_price(str(b["symbol"]), str(b["price"]), at)

    async def mark(b: dict[str, Any]) -> Any:
        return await sim.set_mark_price(str(b["symbol"]), str(b["price"]))

    async def burst(b: dict[str, Any]) -> Any:
        return await sim.publish_burst(str(b["symbol"]), [str(p) for p in b["prices"]])

    async def drop(b: dict[str, Any]) -> Any:
        return await sim.drop_connections(_market(b))

    async def stall(b: dict[str, Any]) -> Any:
        sim.stall_pongs(bool(b.get("on", True)), _market(b))
        return None

    async def refuse(b: dict[str, Any]) -> Any:
        sim.refuse_connections(bool(b.get("on", True)), _market(b))
        return None

    async def freeze(b: dict[str, Any]) -> Any:
        sim.freeze(bool(b.get("on", True)), _market(b))
        return None

    async def fail_candles(b: dict[str, Any]) -> Any:
        sim.fail_candles(int(b.get("count", 1)), _market(b))
        return None

    async def malformed(b: dict[str, Any]) -> Any:
        payload = b.get("payload", '{"type":"message","topic":')
        return await sim.send_malformed(str(payload), _market(b))

    async def tick_rate(b: dict[str, Any]) -> Any:
        sim.set_tick_rate(float(b["rate"]))
        return None

    async def expire(b: dict[str, Any]) -> Any:
        return sim.expire_tokens(_market(b))

    async def rate_limit(b: dict[str, Any]) -> Any:
        sim.force_rate_limit(int(b.get("count", 1)), int(b.get("resetMs", 1000)), _market(b))
        return None

    async def firehose(b: dict[str, Any]) -> Any:
        market = _market(b) or Market.SPOT
        symbols = b.get("symbols")
        return await sim.firehose(int(b["n"]), market, symbols)

    async def funding(b: dict[str, Any]) -> Any:
        rate = b.get("rate")
        sim.set_funding_rate(str(b["symbol"]), None if rate is None else str(rate))
        return None

    app.router.add_get("/control/state", _route(state))
    for path, action in {
        "price": price,
        "mark": mark,
        "burst": burst,
        "drop": drop,
        "stall": stall,
        "refuse": refuse,
        "freeze": freeze,
        "fail-candles": fail_candles,
        "malformed": malformed,
        "tick-rate": tick_rate,
        "expire-tokens": expire,
        "rate-limit": rate_limit,
        "firehose": firehose,
        "funding": funding,
    }.items():
        app.router.add_post(f"/control/{path}", _route(action))
    from cogmora.simulator.frame_faults import add_frame_fault_routes

    add_frame_fault_routes(app, sim)  # duplicate, reordered, absurd frames
