"""KuCoin's official Python SDK (kucoin-universal-sdk) works against the simulator.

The SDK takes its REST bases from ClientOption (spot_endpoint / futures_endpoint), calls
bullet-public there and dials whatever endpoint the token call returns, so pointing it at
the simulator needs no patching; plain ws:// on loopback is fine for its websocket-client.
Its client is threaded and blocking, so it runs in a worker thread here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cogmora.domain.enums import Market
from cogmora.simulator import KucoinSimulator, SimulatorConfig

sdk = pytest.importorskip("kucoin_universal_sdk")

from kucoin_universal_sdk.api.client import DefaultClient  # noqa: E402
from kucoin_universal_sdk.model.client_option import ClientOptionBuilder  # noqa: E402
from kucoin_universal_sdk.model.transport_option import TransportOptionBuilder  # noqa: E402
from kucoin_universal_sdk.model.websocket_option import (  # noqa: E402
    WebSocketClientOptionBuilder,
)


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    config = SimulatorConfig(tick_rate=20, ping_interval_ms=1000, ping_timeout_ms=1000,
                             silent_client_timeout_s=10)
    async with KucoinSimulator(config) as simulator:
        yield simulator


def sdk_client(sim: KucoinSimulator) -> Any:
    option = (
        ClientOptionBuilder()
        .set_spot_endpoint(sim.spot_url)
        .set_futures_endpoint(sim.futures_url)
        .set_transport_option(TransportOptionBuilder().build())
        .set_websocket_client_option(WebSocketClientOptionBuilder().with_reconnect(False).build())
        .build()
    )
    return DefaultClient(option)


async def test_official_sdk_receives_spot_tickers(sim: KucoinSimulator) -> None:
    """The SDK's public spot websocket connects, subscribes, receives tickers, gets pongs."""
    received: list[tuple[str, str]] = []
    enough = threading.Event()
    spot = sim.hosts[Market.SPOT]

    def on_ticker(topic: str, subject: str, data: Any) -> None:
        received.append((topic, data.price))
        if len({t for t, _ in received}) == 2 and len(received) >= 4:
            enough.set()

    def run() -> Any:
        ws = sdk_client(sim).ws_service().new_spot_public_ws()
        ws.start()
        ws.ticker(["BTC-USDT", "ETH-USDT"], on_ticker)
        enough.wait(timeout=60)
        # Stay until the SDK's keep-alive ping (every pingInterval = 1 s) was answered.
        deadline = time.monotonic() + 30
        while spot.pings_answered == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        return ws

    ws = await asyncio.to_thread(run)
    # The SDK's stop() can wait 10 s for its reader thread's select() to notice a close it
    # made itself; a server-side close ends that thread at once, so drop first, then stop.
    await sim.drop_connections()
    await asyncio.to_thread(ws.stop)
    topics = {topic for topic, _ in received}
    assert topics == {"/market/ticker:BTC-USDT", "/market/ticker:ETH-USDT"}
    assert all(price for _, price in received)
    assert spot.pings_answered >= 1


async def test_official_sdk_rest_reads_tickers_and_stats(sim: KucoinSimulator) -> None:
    """The SDK's REST market API parses the simulator's envelopes."""
    from kucoin_universal_sdk.generate.spot.market.model_get24hr_stats_req import (
        Get24hrStatsReqBuilder,
    )

    def run() -> tuple[Any, Any]:
        market = sdk_client(sim).rest_service().get_spot_service().get_market_api()
        stats = market.get24hr_stats(Get24hrStatsReqBuilder().set_symbol("BTC-USDT").build())
        tickers = market.get_all_tickers()
        return stats, tickers

    stats, tickers = await asyncio.to_thread(run)
    assert stats.symbol == "BTC-USDT" and stats.last
    assert any(t.symbol == "ETH-USDT" for t in tickers.ticker)
