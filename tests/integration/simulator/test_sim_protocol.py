"""The simulator speaks KuCoin's protocol over real loopback sockets (raw aiohttp client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from cogmora.domain.enums import Market
from cogmora.simulator import KucoinSimulator, SimulatorConfig


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    config = SimulatorConfig(tick_rate=0, mark_rate=0, spot_topic_cap=5,
                             ping_interval_ms=500, ping_timeout_ms=500)
    async with KucoinSimulator(config) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def bullet(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.post(f"{base}/api/v1/bullet-public") as response:
        body: dict[str, Any] = await response.json()
    assert body["code"] == "200000"
    data: dict[str, Any] = body["data"]
    return data


async def connect(
    http: aiohttp.ClientSession, base: str, connect_id: str = "cid-1"
) -> aiohttp.ClientWebSocketResponse:
    data = await bullet(http, base)
    endpoint = data["instanceServers"][0]["endpoint"]
    ws = await http.ws_connect(endpoint, params={"token": data["token"], "connectId": connect_id})
    return ws


@asynccontextmanager
async def welcomed(
    http: aiohttp.ClientSession, base: str
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A connection past its welcome frame, closed after the block."""
    ws = await connect(http, base)
    await recv(ws)
    try:
        yield ws
    finally:
        await ws.close()


async def recv(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    async with asyncio.timeout(30):
        frame: dict[str, Any] = json.loads(await ws.receive_str())
    return frame


async def send(ws: aiohttp.ClientWebSocketResponse, **frame: Any) -> dict[str, Any]:
    await ws.send_str(json.dumps(frame))
    return await recv(ws)


async def test_bullet_call_points_at_the_local_websocket_with_ping_settings(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """The token call returns a token, the local ws endpoint and the configured ping timings."""
    data = await bullet(http, sim.futures_url)
    server = data["instanceServers"][0]
    assert data["token"]
    assert server["endpoint"].startswith("ws://127.0.0.1:")
    assert sim.futures_url.split(":")[-1] in server["endpoint"]
    assert (server["pingInterval"], server["pingTimeout"]) == (500, 500)
    assert server["protocol"] == "websocket"


async def test_welcome_echoes_the_connect_id(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """The first frame is the welcome, with id = the client's connectId."""
    ws = await connect(http, sim.spot_url, "my-connection")
    assert await recv(ws) == {"id": "my-connection", "type": "welcome"}
    await ws.close()


async def test_unknown_token_gets_401_and_a_close(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """A connection with a token the host never issued gets error 401 and is closed."""
    endpoint = (await bullet(http, sim.spot_url))["instanceServers"][0]["endpoint"]
    ws = await http.ws_connect(endpoint, params={"token": "forged", "connectId": "c"})
    assert await recv(ws) == {"id": "c", "type": "error", "code": 401,
                              "data": "token is invalid"}
    msg = await ws.receive()
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_spot_token_is_refused_by_the_futures_host(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """Spot and futures tokens are not interchangeable."""
    token = (await bullet(http, sim.spot_url))["token"]
    endpoint = (await bullet(http, sim.futures_url))["instanceServers"][0]["endpoint"]
    ws = await http.ws_connect(endpoint, params={"token": token})
    assert (await recv(ws))["code"] == 401


async def test_expired_tokens_get_token_is_expired(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """After expire_tokens, connecting with an old token says the token is expired."""
    data = await bullet(http, sim.spot_url)
    sim.expire_tokens()
    endpoint = data["instanceServers"][0]["endpoint"]
    ws = await http.ws_connect(endpoint, params={"token": data["token"]})
    frame = await recv(ws)
    assert (frame["code"], frame["data"]) == (401, "token is expired")


async def test_ping_gets_a_pong_with_the_same_id(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """A JSON ping is answered by a JSON pong echoing its id."""
    async with welcomed(http, sim.spot_url) as ws:
        assert await send(ws, id="1545910590801", type="ping") == {
            "id": "1545910590801", "type": "pong"}


async def test_stalled_pongs_leave_pings_unanswered(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """With pongs stalled, a ping gets no answer (and the silent client is then closed)."""
    async with welcomed(http, sim.spot_url) as ws:
        sim.stall_pongs(True)
        await ws.send_str(json.dumps({"id": "p", "type": "ping"}))
        frame = await recv(ws)  # the next thing heard is the server giving up on us
    assert (frame["type"], frame["code"], frame["data"]) == ("error", 400, "ping timeout")


async def test_subscribe_acks_and_data_arrive_per_symbol_topic(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """A comma-joined subscription is acked, then each symbol's data uses its own topic."""
    async with welcomed(http, sim.spot_url) as ws:
        ack = await send(ws, id=7, type="subscribe", topic="/market/ticker:BTC-USDT,ETH-USDT",
                         privateChannel=False, response=True)
        assert ack == {"id": "7", "type": "ack"}
        await sim.set_price("ETH-USDT", "3600.5")
        frame = await recv(ws)
    assert frame["topic"] == "/market/ticker:ETH-USDT"
    assert frame["subject"] == "trade.ticker"
    assert frame["data"]["price"] == "3600.5"
    assert set(frame["data"]) == {"sequence", "price", "size", "bestAsk", "bestAskSize",
                                  "bestBid", "bestBidSize", "time"}


async def test_subscribe_without_response_flag_is_not_acked(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """No ack is sent when the request does not ask for one; data still flows."""
    async with welcomed(http, sim.spot_url) as ws:
        await ws.send_str(json.dumps({"id": "1", "type": "subscribe",
                                      "topic": "/market/ticker:BTC-USDT"}))
        await sim.wait_subscribed(["BTC-USDT"])
        await sim.set_price("BTC-USDT", "60000")
        assert (await recv(ws))["type"] == "message"


async def test_unsubscribe_stops_the_data(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """After an acked unsubscribe the symbol's ticks no longer arrive."""
    async with welcomed(http, sim.spot_url) as ws:
        await send(ws, id="1", type="subscribe", topic="/market/ticker:BTC-USDT,ETH-USDT",
                   response=True)
        assert await send(ws, id="2", type="unsubscribe", topic="/market/ticker:BTC-USDT",
                          response=True) == {"id": "2", "type": "ack"}
        await sim.set_price("BTC-USDT", "1")
        await sim.set_price("ETH-USDT", "2")
        assert (await recv(ws))["topic"] == "/market/ticker:ETH-USDT"


def subscribe(topic: str) -> dict[str, Any]:
    return {"type": "subscribe", "topic": topic, "response": True}


@pytest.mark.parametrize(
    ("frame", "code", "text"),
    [
        (subscribe(""), 406, "topic is required"),
        (subscribe("/market/ticker"), 400, "topic is invalid"),
        (subscribe("/market/level9:BTC-USDT"), 404, "topic /market/level9:BTC-USDT is not found"),
        (subscribe("/market/ticker:" + ",".join(f"S{i}-USDT" for i in range(101))), 509,
         "exceed max subscription count limitation of 100 per time"),
        ({"type": "openTunnel"}, 415, "type is not supported"),
    ],
    ids=["no-topic", "no-symbol", "unknown-topic", "over-100", "unknown-type"],
)
async def test_bad_frames_get_kucoins_error_frame(
    sim: KucoinSimulator,
    http: aiohttp.ClientSession,
    frame: dict[str, Any],
    code: int,
    text: str,
) -> None:
    """A bad subscription or a frame type the server does not know gets KuCoin's error
    frame: id echoed, numeric code, text."""
    async with welcomed(http, sim.spot_url) as ws:
        answer = await send(ws, id="9", **frame)
    assert answer == {"id": "9", "type": "error", "code": code, "data": text}


async def test_per_connection_topic_cap_gives_509(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """Going over the per-connection topic cap (5 here) is refused with 509 per session."""
    symbols = sim.symbols(Market.SPOT)
    async with welcomed(http, sim.spot_url) as ws:
        ok = await send(ws, id="1", **subscribe("/market/ticker:" + ",".join(symbols[:4])))
        assert ok["type"] == "ack"
        refused = await send(ws, id="2", **subscribe("/market/ticker:" + ",".join(symbols[4:6])))
    assert (refused["code"], refused["data"]) == (
        509, "exceed max subscription count limitation of 5 per session")


async def test_futures_execution_and_mark_frames(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """Futures trades come on /contractMarket/execution (with sn), marks on /contract/instrument."""
    async with welcomed(http, sim.futures_url) as ws:
        await send(ws, id="1", **subscribe("/contractMarket/execution:XBTUSDTM"))
        await send(ws, id="2", **subscribe("/contract/instrument:XBTUSDTM"))
        await sim.set_price("XBTUSDTM", "65000.5")
        trade = await recv(ws)
        await sim.set_mark_price("XBTUSDTM", "64999.25")
        mark = await recv(ws)
    assert (trade["subject"], trade["data"]["price"], trade["data"]["symbol"]) == (
        "match", "65000.5", "XBTUSDTM")
    assert trade["sn"] == trade["data"]["sequence"]
    assert mark["subject"] == "mark.index.price"
    assert mark["data"]["markPrice"] == 64999.25  # a JSON number on this topic


async def test_drop_connections_closes_from_the_server(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """drop_connections closes every websocket from the server side."""
    async with welcomed(http, sim.spot_url) as ws:
        assert await sim.drop_connections() == 1
        async with asyncio.timeout(30):
            msg = await ws.receive()
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_rest_envelope_headers_and_unknown_stats(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """REST replies carry the envelope and gw-ratelimit headers; unknown stats are all null."""
    async with http.get(f"{sim.spot_url}/api/v1/market/stats",
                        params={"symbol": "NOPE-USDT"}) as response:
        body = await response.json()
        assert {"gw-ratelimit-limit", "gw-ratelimit-remaining", "gw-ratelimit-reset"} <= {
            k.lower() for k in response.headers}
    assert body["code"] == "200000"
    assert body["data"]["symbol"] == "NOPE-USDT"
    assert body["data"]["last"] is None and body["data"]["buy"] is None


async def test_forced_rate_limit_answers_429000(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """A forced rate limit answers HTTP 429 with code 429000 and a reset header."""
    sim.force_rate_limit(1, reset_ms=250)
    async with http.get(f"{sim.spot_url}/api/v1/market/allTickers") as response:
        assert response.status == 429
        assert (await response.json())["code"] == "429000"
        assert response.headers["gw-ratelimit-reset"] == "250"
    async with http.get(f"{sim.spot_url}/api/v1/market/allTickers") as response:
        assert response.status == 200


async def test_bad_request_gets_an_error_envelope(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """A bad parameter gets {"code":"400100","msg":...} with a 400 status."""
    async with http.get(f"{sim.spot_url}/api/v1/market/candles",
                        params={"symbol": "BTC-USDT", "type": "7min"}) as response:
        assert response.status == 400
        body = await response.json()
    assert body["code"] == "400100" and "7min" in body["msg"]


async def test_spot_candles_are_string_arrays_newest_first(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """Spot candles are [time, open, close, high, low, volume, turnover] strings, newest first."""
    async with http.get(f"{sim.spot_url}/api/v1/market/candles",
                        params={"symbol": "BTC-USDT", "type": "1min", "startAt": 1_700_000_000,
                                "endAt": 1_700_000_600}) as response:
        rows = (await response.json())["data"]
    assert len(rows) == 11
    assert all(len(r) == 7 and all(isinstance(v, str) for v in r) for r in rows)
    assert int(rows[0][0]) > int(rows[-1][0])


async def test_http_control_endpoints_script_the_exchange(
    sim: KucoinSimulator, http: aiohttp.ClientSession
) -> None:
    """Prices, stalls and state can be driven over /control/ from another process."""
    async with http.post(f"{sim.spot_url}/control/price",
                         json={"symbol": "SOL-USDT", "price": "151.25"}) as response:
        assert (await response.json())["ok"] is True
    async with http.post(f"{sim.futures_url}/control/stall", json={"on": True}) as response:
        assert response.status == 200
    async with http.get(f"{sim.futures_url}/control/state") as response:
        state = (await response.json())["result"]
    assert state["spot"]["prices"]["SOL-USDT"] == "151.25"
    assert state["futures"]["stallPongs"] is True
    async with http.post(f"{sim.spot_url}/control/price", json={"symbol": "X"}) as response:
        assert response.status == 400
