"""The REST side of a simulated host, in KuCoin's envelope with its rate-limit headers.

Every reply is `{"code":"200000","data":...}` or `{"code":"<6 digits>","msg":...}`, with the
`gw-ratelimit-*` headers, and a request over the weighted budget answers HTTP 429 with
code 429000, so the REST client's back-off is exercised against the real shapes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import web

from cogmora.domain.enums import Market
from cogmora.simulator import book_frames, frames, payloads
from cogmora.simulator.funding import current_funding_rate
from cogmora.simulator.market import Instrument, candle_seconds, now_ms
from cogmora.simulator.state import SPOT_MARKETS, Host

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Decimals go out as JSON numbers where KuCoin sends numbers; strings are already strings.
_encoder = msgspec.json.Encoder(decimal_format="number")


class RestError(Exception):
    def __init__(self, code: str, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def _reply(
    status: int, body: dict[str, Any], limit: int, remaining: int, reset: int
) -> web.Response:
    return web.Response(
        status=status,
        body=_encoder.encode(body),
        content_type="application/json",
        headers={
            "gw-ratelimit-limit": str(limit),
            "gw-ratelimit-remaining": str(remaining),
            "gw-ratelimit-reset": str(reset),
        },
    )


def endpoint(host: Host, weight: int, fn: Callable[[web.Request], Any]) -> Handler:
    """Wrap `fn` (which returns the `data` payload) in the envelope, the limiter and errors."""

    async def handle(request: web.Request) -> web.StreamResponse:
        allowed, remaining, reset = host.limiter.take(weight, now_ms())
        limit = host.limiter.limit
        if not allowed:
            body = {"code": "429000", "msg": "Too Many Requests"}
            return _reply(429, body, limit, remaining, reset)
        try:
            data = fn(request)
        except RestError as exc:
            return _reply(exc.status, {"code": exc.code, "msg": exc.msg}, limit, remaining, reset)
        return _reply(200, {"code": "200000", "data": data}, limit, remaining, reset)

    return handle


def _symbol(request: web.Request) -> str:
    symbol = request.query.get("symbol") or request.match_info.get("symbol")
    if not symbol:
        raise RestError("400100", "symbol is required")
    return symbol


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RestError("400100", f"{name} must be an integer") from None


def _book_size(request: web.Request, allowed: tuple[int, ...]) -> int:
    raw = request.match_info.get("size", "")
    if not raw.isdigit() or int(raw) not in allowed:
        raise RestError("400100", f"size {raw!r} is invalid: one of {allowed}")
    return int(raw)


def _known(insts: dict[str, Instrument], request: web.Request) -> Instrument:
    """The instrument a book or trade request names; KuCoin's 400100 for any other."""
    symbol = _symbol(request)
    inst = insts.get(symbol)
    if inst is None:
        raise RestError("400100", f"symbol {symbol} is invalid")
    return inst


# Signed endpoints of KuCoin (accounts, orders, positions, private tokens): the sandbox has
# none, and answers them as KuCoin answers a request it cannot authenticate.
_PRIVATE_PREFIXES = (
    "/api/v1/bullet-private", "/api/v1/accounts", "/api/v1/orders", "/api/v1/fills",
    "/api/v1/hf/", "/api/v3/hf/", "/api/v1/stop-order", "/api/v1/positions",
    "/api/v1/position", "/api/v1/isolated/", "/api/v1/margin/", "/api/v3/margin/",
    "/api/v1/user-info", "/api/v2/user-info", "/api/v1/sub/", "/api/v1/deposit",
    "/api/v1/withdrawals", "/api/ua/", "/api/v3/market/orderbook/level2",
)


@web.middleware
async def kucoin_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown paths and methods answer KuCoin's envelope, not aiohttp's plain text; a
    signed request gets KuCoin's unknown-key error (the sandbox has no accounts)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if "KC-API-KEY" in request.headers:
            return _error(401, "400003", "KC-API-KEY not exists")
        if request.path.startswith(_PRIVATE_PREFIXES):
            return _error(400, "400001", "Please check the header of your request for "
                          "KC-API-KEY, KC-API-SIGN, KC-API-TIMESTAMP, KC-API-PASSPHRASE")
        return _error(404, "404000", "Url Not Found")
    except web.HTTPMethodNotAllowed:
        return _error(405, "405000", "Method Not Allowed")


def _error(status: int, code: str, msg: str) -> web.Response:
    return web.Response(status=status, body=_encoder.encode({"code": code, "msg": msg}),
                        content_type="application/json")


def _window(
    request: web.Request, names: tuple[str, str], per_second: int, width: int
) -> tuple[int, int] | None:
    """The (start, end) seconds a candle request asks for, as both KuCoin hosts read it:
    the end defaults to now and the start to 100 candles before it; None when it is empty.
    `names` are the host's (start, end) parameters, given in 1/`per_second` seconds."""
    end = (_int(request, names[1], 0) // per_second) or int(time.time())
    start = (_int(request, names[0], 0) // per_second) or end - width * 100
    return None if start > end else (start, end)


def _candle_fault(host: Host) -> None:
    if host.candle_failures > 0:
        host.candle_failures -= 1
        raise RestError("500000", "Internal Server Error", status=500)


def add_common_routes(app: web.Application, host: Host) -> None:
    def bullet(_: web.Request) -> dict[str, Any]:
        return {
            "token": host.tokens.issue(),
            "instanceServers": [
                {
                    "endpoint": host.ws_url,
                    "encrypt": False,
                    "protocol": "websocket",
                    "pingInterval": host.config.ping_interval_ms,
                    "pingTimeout": host.config.ping_timeout_ms,
                }
            ],
        }

    app.router.add_post("/api/v1/bullet-public", endpoint(host, 10, bullet))
    app.router.add_get("/api/v1/timestamp", endpoint(host, 1, lambda _: now_ms()))
    app.router.add_get("/api/v1/status", endpoint(host, 1, lambda _: payloads.status()))


def add_spot_routes(app: web.Application, host: Host) -> None:
    insts = host.instruments

    def all_tickers(_: web.Request) -> dict[str, Any]:
        items = [frames.rest_all_ticker_item(i) for i in insts.values()]
        return {"time": now_ms(), "ticker": items}

    def stats(request: web.Request) -> dict[str, Any]:
        symbol = _symbol(request)
        return frames.rest_stats(insts.get(symbol), symbol, now_ms())

    def level1(request: web.Request) -> dict[str, Any] | None:
        inst = insts.get(_symbol(request))
        return None if inst is None else frames.rest_level1(inst)

    def candles(request: web.Request) -> list[list[str]]:
        _candle_fault(host)
        inst = insts.get(_symbol(request))
        kind = request.query.get("type", "")
        width = candle_seconds(kind)
        if width is None:
            raise RestError("400100", f"type {kind!r} is invalid")
        if inst is None:
            return []
        window = _window(request, ("startAt", "endAt"), 1, width)
        if window is None:
            return []
        rows = inst.candles(*window, width)
        # KuCoin: strings [time, open, close, high, low, volume, turnover], newest first.
        return [
            [str(c.start_s), *(frames.s(v) for v in (c.open, c.close, c.high, c.low)),
             frames.s(c.volume), frames.s(c.turnover)]
            for c in reversed(rows)
        ]

    def symbols(_: web.Request) -> list[dict[str, Any]]:
        return [frames.rest_symbol(i) for i in insts.values()]

    app.router.add_get("/api/v1/market/allTickers", endpoint(host, 15, all_tickers))
    app.router.add_get("/api/v1/market/stats", endpoint(host, 15, stats))
    app.router.add_get("/api/v1/market/orderbook/level1", endpoint(host, 2, level1))
    app.router.add_get("/api/v1/market/candles", endpoint(host, 3, candles))
    app.router.add_get("/api/v2/symbols", endpoint(host, 4, symbols))
    app.router.add_get("/api/v1/symbols", endpoint(host, 4, symbols))
    add_spot_book_routes(app, host)


def add_spot_book_routes(app: web.Application, host: Host) -> None:
    """Symbols by name, currencies, trade history and the level-2 books."""
    insts = host.instruments

    def symbol(request: web.Request) -> dict[str, Any]:
        return frames.rest_symbol(_known(insts, request))

    def currency(request: web.Request) -> dict[str, Any]:
        code = request.match_info["currency"]
        if code not in {c["currency"] for c in payloads.currencies(insts)}:
            raise RestError("400100", f"currency {code} is invalid")
        return payloads.currency(code)

    def histories(request: web.Request) -> list[dict[str, Any]]:
        return payloads.spot_trades(_known(insts, request))

    def level2(request: web.Request) -> dict[str, Any]:
        size = _book_size(request, (20, 100))
        return book_frames.rest_book(_known(insts, request), size, now_ms())

    app.router.add_get("/api/v2/symbols/{symbol}", endpoint(host, 4, symbol))
    app.router.add_get("/api/v3/currencies", endpoint(
        host, 3, lambda _: payloads.currencies(insts)))
    app.router.add_get("/api/v3/currencies/{currency}", endpoint(host, 3, currency))
    app.router.add_get("/api/v1/markets", endpoint(host, 3, lambda _: sorted(SPOT_MARKETS)))
    app.router.add_get("/api/v1/market/histories", endpoint(host, 3, histories))
    app.router.add_get("/api/v1/market/orderbook/level2_{size}", endpoint(host, 2, level2))


def add_futures_routes(app: web.Application, host: Host) -> None:
    insts = host.instruments

    def contracts(_: web.Request) -> list[dict[str, Any]]:
        at = now_ms()
        return [frames.rest_contract(i, host.funding, at) for i in insts.values()]

    def contract(request: web.Request) -> dict[str, Any] | None:
        inst = insts.get(_symbol(request))
        return None if inst is None else frames.rest_contract(inst, host.funding, now_ms())

    def ticker(request: web.Request) -> dict[str, Any] | None:
        inst = insts.get(_symbol(request))
        return None if inst is None else frames.rest_futures_ticker(inst)

    def all_tickers(_: web.Request) -> list[dict[str, Any]]:
        return [frames.rest_futures_ticker(i) for i in insts.values()]

    def mark_price(request: web.Request) -> dict[str, Any] | None:
        inst = insts.get(_symbol(request))
        if inst is None:
            return None
        return {
            "symbol": inst.symbol,
            "granularity": 1000,
            "timePoint": now_ms(),
            "value": inst.mark,
            "indexPrice": inst.mark,
        }

    def klines(request: web.Request) -> list[list[Any]]:
        _candle_fault(host)
        inst = insts.get(_symbol(request))
        minutes = _int(request, "granularity", 0)
        if minutes not in (1, 5, 15, 30, 60, 120, 240, 480, 720, 1440, 10080):
            raise RestError("400100", f"granularity {minutes} is invalid")
        width = minutes * 60
        if inst is None:
            return []
        window = _window(request, ("from", "to"), 1000, width)
        if window is None:
            return []
        # Futures: numbers [time ms, open, high, low, close, volume, turnover], oldest first.
        return [
            [c.start_s * 1000, c.open, c.high, c.low, c.close, c.volume, c.turnover]
            for c in inst.candles(*window, width, limit=500)
        ]

    app.router.add_get("/api/v1/contracts/active", endpoint(host, 3, contracts))
    app.router.add_get("/api/v1/contracts/{symbol}", endpoint(host, 3, contract))
    app.router.add_get("/api/v1/ticker", endpoint(host, 2, ticker))
    app.router.add_get("/api/v1/allTickers", endpoint(host, 5, all_tickers))
    app.router.add_get("/api/v1/mark-price/{symbol}/current", endpoint(host, 3, mark_price))
    app.router.add_get("/api/v1/kline/query", endpoint(host, 3, klines))
    add_futures_book_routes(app, host)


def add_futures_book_routes(app: web.Application, host: Host) -> None:
    """Books, trade history, statistics and the funding rate of the futures host."""
    insts = host.instruments

    def snapshot(request: web.Request) -> dict[str, Any]:
        return book_frames.rest_book(_known(insts, request), 100, now_ms())

    def depth(request: web.Request) -> dict[str, Any]:
        size = _book_size(request, (20, 100))
        return book_frames.rest_book(_known(insts, request), size, now_ms())

    def history(request: web.Request) -> list[dict[str, Any]]:
        return payloads.futures_trades(_known(insts, request))

    def statistics(_: web.Request) -> dict[str, Any]:
        return {"turnoverOf24h": sum((i.turnover24h for i in insts.values()), Decimal(0))}

    def funding_rate(request: web.Request) -> dict[str, Any]:
        inst = _known(insts, request)
        return current_funding_rate(host.funding, inst.symbol, now_ms())

    app.router.add_get("/api/v1/level2/snapshot", endpoint(host, 3, snapshot))
    app.router.add_get("/api/v1/level2/depth{size}", endpoint(host, 5, depth))
    app.router.add_get("/api/v1/trade/history", endpoint(host, 5, history))
    app.router.add_get("/api/v1/trade-statistics", endpoint(host, 3, statistics))
    app.router.add_get("/api/v1/funding-rate/{symbol}/current",
                       endpoint(host, 2, funding_rate))


def add_routes(app: web.Application, host: Host) -> None:
    add_common_routes(app, host)
    if host.market is Market.SPOT:
        add_spot_routes(app, host)
    else:
        add_futures_routes(app, host)
