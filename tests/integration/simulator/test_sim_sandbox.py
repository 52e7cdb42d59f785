"""The simulator as a faithful sandbox: its books agree with its trades, its candles with
its trade history, a recording replays the same books, and errors are KuCoin's JSON."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.simulator.funding import PERIOD_MS, period_start


def config(**overrides: Any) -> SimulatorConfig:
    base: dict[str, Any] = {"tick_rate": 0, "mark_rate": 0, "spot": {"BTC-USDT": "67000.0"},
                            "futures": {"XBTUSDTM": "67000.0"}}
    return SimulatorConfig(**(base | overrides))


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    async with KucoinSimulator(config()) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Any]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json()


async def subscribed(
    http: aiohttp.ClientSession, base: str, *topics: str
) -> aiohttp.ClientWebSocketResponse:
    async with http.post(f"{base}/api/v1/bullet-public") as response:
        data = (await response.json())["data"]
    ws = await http.ws_connect(data["instanceServers"][0]["endpoint"],
                               params={"token": data["token"]})
    assert json.loads(await ws.receive_str())["type"] == "welcome"
    for n, topic in enumerate(topics):
        await ws.send_str(json.dumps({"id": str(n), "type": "subscribe", "topic": topic,
                                      "response": True}))
    return ws


async def frames_until(ws: aiohttp.ClientWebSocketResponse, count: int,
                       subject: str) -> list[dict[str, Any]]:
    """Every data frame until `count` frames of `subject` have arrived."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        while sum(f.get("subject") == subject for f in out) < count:
            frame = json.loads(await ws.receive_str())
            if frame["type"] == "message":
                out.append(frame)
    return out


def book_before_each_trade(frames: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    """(trade, the last depth-5 book published before it)."""
    pairs, last = [], None
    for frame in frames:
        if frame["subject"] == "level2":
            last = frame["data"]
        elif frame["subject"] == "trade.l3match":
            pairs.append((frame["data"], last))
    return pairs


async def test_each_trade_prints_at_the_best_level_of_the_book_published_before_it(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """Whatever the jump, a buy prints at the best ask and a sell at the best bid of the
    book the client holds, and the bid stays below the ask."""
    ws = await subscribed(http, sim.spot_url, "/spotMarket/level2Depth5:BTC-USDT",
                          "/market/match:BTC-USDT")
    prices = ["67000.5", "67480.0", "67480.0", "66900.1", "66900.2", "66000.0", "66000.0"]
    reading = asyncio.ensure_future(frames_until(ws, len(prices), "trade.l3match"))
    await _until_subscribed(sim, "/market/match:BTC-USDT")
    await sim.publish_burst("BTC-USDT", prices)
    pairs = book_before_each_trade(await reading)
    assert [t["price"] for t, _ in pairs] == prices
    for trade, depth in pairs:
        assert depth is not None
        best_bid, best_ask = Decimal(depth["bids"][0][0]), Decimal(depth["asks"][0][0])
        assert best_bid < best_ask
        at = best_ask if trade["side"] == "buy" else best_bid
        assert Decimal(trade["price"]) == at
    assert [t["side"] for t, _ in pairs] == ["buy", "buy", "buy", "sell", "buy", "sell", "sell"]
    await ws.close()


async def _until_subscribed(sim: KucoinSimulator, topic: str) -> None:
    hub = sim.host("BTC-USDT").hub
    async with asyncio.timeout(60):
        await hub.wait_until(lambda: hub.has_subscribers(topic))


async def test_candles_agree_with_the_trade_history(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """A minute's candle is exactly its trades: open, high, low, close, volume."""
    minute = (int(time.time()) // 60 - 5) * 60
    prices = ["66950.0", "67010.0", "66920.5", "66990.0"]
    for n, price in enumerate(prices):
        await sim.set_price("BTC-USDT", price, at_ms=minute * 1000 + n * 1000)
    _, history = await get(http, f"{sim.spot_url}/api/v1/market/histories",
                           symbol="BTC-USDT")
    in_minute = [t for t in history["data"] if t["time"] // 10**9 // 60 * 60 == minute]
    assert [t["price"] for t in in_minute] == prices
    _, candles = await get(http, f"{sim.spot_url}/api/v1/market/candles", symbol="BTC-USDT",
                           type="1min", startAt=minute, endAt=minute)
    [row] = [r for r in candles["data"] if int(r[0]) == minute]
    values = [Decimal(t["price"]) for t in in_minute]
    assert [Decimal(v) for v in row[1:5]] == [values[0], values[-1], max(values), min(values)]
    assert Decimal(row[5]) == sum(Decimal(t["size"]) for t in in_minute)


async def test_futures_candles_count_the_contracts_the_trade_history_reports(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """Futures klines: the minute's prices and its volume in lots match /trade/history."""
    minute = (int(time.time()) // 60 - 5) * 60
    prices = ["66950.0", "67010.0", "66920.5"]
    for n, price in enumerate(prices):
        await sim.set_price("XBTUSDTM", price, at_ms=minute * 1000 + n * 1000)
    _, history = await get(http, f"{sim.futures_url}/api/v1/trade/history", symbol="XBTUSDTM")
    in_minute = [t for t in reversed(history["data"]) if t["ts"] // 10**9 // 60 * 60 == minute]
    assert [t["price"] for t in in_minute] == prices
    _, klines = await get(http, f"{sim.futures_url}/api/v1/kline/query", symbol="XBTUSDTM",
                          granularity=1, **{"from": minute * 1000, "to": minute * 1000})
    [row] = [r for r in klines["data"] if r[0] == minute * 1000]
    assert row[1:5] == [66950.0, 67010.0, 66920.5, 66920.5]  # open, high, low, close
    assert row[5] == sum(t["size"] for t in in_minute)


async def test_a_recorded_file_replays_the_same_books(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Two simulators replaying one recording publish the same book for each trade."""
    start = time.time_ns()
    path = tmp_path / "ticks.jsonl"
    prices = ["67000.0", "67003.1", "66998.4", "66998.4", "67010.0", "66990.0"]
    path.write_text("".join(
        json.dumps({"ns": start + n * 20_000_000, "market": "spot", "symbol": "BTC-USDT",
                    "price": p}) + "\n" for n, p in enumerate(prices)))
    books: list[dict[tuple[str, str], Any]] = []
    for _ in range(2):
        async with KucoinSimulator(config(record_file=path)) as sim:
            ws = await subscribed(http, sim.spot_url, "/spotMarket/level2Depth5:BTC-USDT",
                                  "/market/match:BTC-USDT")
            pairs = book_before_each_trade(await frames_until(ws, 14, "trade.l3match"))
            await ws.close()
        seen: dict[tuple[str, str], Any] = {}
        for trade, depth in pairs:
            if depth is None:
                continue
            key = (trade["price"], trade["side"])
            book = (depth["bids"], depth["asks"])
            assert seen.setdefault(key, book) == book  # each pass prints the same book
            seen[key] = book
        books.append(seen)
    shared = books[0].keys() & books[1].keys()
    assert len(shared) >= 4
    assert all(books[0][k] == books[1][k] for k in shared)


async def test_unknown_paths_answer_kucoins_json_envelope(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """An unknown path is {"code":"404000","msg":"Url Not Found"} with HTTP 404, on both
    hosts; a private endpoint is KuCoin's 400001 unsigned and 400003 signed (the sandbox
    knows no keys); an unknown symbol or size in a book request is KuCoin's 400100."""
    for base in (sim.spot_url, sim.futures_url):
        assert await get(http, f"{base}/api/v1/no-such-thing") == (
            404, {"code": "404000", "msg": "Url Not Found"})
    status, body = await get(http, f"{sim.spot_url}/api/v1/market/orderbook/level2_20",
                             symbol="NOPE-USDT")
    assert (status, body["code"]) == (400, "400100") and "symbol" in body["msg"]
    async with http.post(f"{sim.spot_url}/api/v1/bullet-private") as response:
        assert (response.status, (await response.json())["code"]) == (400, "400001")
    async with http.get(f"{sim.futures_url}/api/v1/positions",
                        headers={"KC-API-KEY": "mine"}) as response:
        assert (response.status, await response.json()) == (
            401, {"code": "400003", "msg": "KC-API-KEY not exists"})
    status, body = await get(http, f"{sim.spot_url}/api/v1/market/orderbook/level2_7",
                             symbol="BTC-USDT")
    assert (status, body["code"]) == (400, "400100") and "size" in body["msg"]


async def test_unknown_candle_type_is_a_404_error_frame(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """/market/candles with a type KuCoin does not have gets its websocket error frame."""
    ws = await subscribed(http, sim.spot_url, "/market/candles:BTC-USDT_7min")
    async with asyncio.timeout(60):
        frame = json.loads(await ws.receive_str())
    assert frame == {"id": "0", "type": "error", "code": 404,
                     "data": "topic /market/candles:BTC-USDT_7min is not found"}
    await ws.close()


async def test_funding_rate_endpoint_has_kucoins_shape_and_can_be_pinned(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """/api/v1/funding-rate/{symbol}/current: the running 8-hour period, its rate
    (pinned here over /control/funding) and the mark price beside it."""
    async with http.post(f"{sim.futures_url}/control/funding",
                         json={"symbol": "XBTUSDTM", "rate": "-0.0004"}) as response:
        assert response.status == 200
    status, body = await get(http, f"{sim.futures_url}/api/v1/funding-rate/XBTUSDTM/current")
    data = body["data"]
    assert (status, body["code"]) == (200, "200000")
    assert list(data) == ["symbol", "granularity", "timePoint", "value", "predictedValue",
                          "fundingRateCap", "fundingRateFloor", "period", "fundingTime"]
    assert (data["symbol"], data["granularity"], data["value"]) == (
        ".XBTUSDTMFPI8H", 28800000, -0.0004)
    assert period_start(data["timePoint"]) == data["timePoint"]
    assert data["fundingTime"] == data["timePoint"] + PERIOD_MS
    _, mark = await get(http, f"{sim.futures_url}/api/v1/mark-price/XBTUSDTM/current")
    assert set(mark["data"]) == {"symbol", "granularity", "timePoint", "value", "indexPrice"}
