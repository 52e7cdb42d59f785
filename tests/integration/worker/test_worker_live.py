"""The worker end to end over real sockets: KuCoin-protocol ticks close positions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from cogmora.domain.enums import Market

from .conftest import Live


async def test_stop_loss_tick_from_the_exchange_closes_and_settles(live: Live) -> None:
    """An SL crossed by a websocket tick is closed at the tick price and credited once."""
    auth = await live.user("alice")
    await live.sim.set_price("BTC-USDT", "60000")
    opened = await live.http.post(
        "/v1/positions",
        json={
            "symbol": "BTC-USDT",
            "market": "spot",
            "side": "long",
            "qty": "0.1",
            "stopLoss": "59000",
            "takeProfit": "62000",
        },
        headers=auth,
    )
    assert opened.status_code == 201, opened.text
    pid = opened.json()["id"]
    await live.sim.wait_subscribed(["BTC-USDT"])
    # The open's price request subscribes the symbol at once, but the position reaches the
    # book through the change feed (within 1 s, longer on a busy machine): a tick sent
    # before that crosses nothing, and nothing would ever close the position.
    await live.until(_in_book(live, pid), within=60)
    await live.sim.publish_burst("BTC-USDT", ["59500", "58950.5"])

    async def closed() -> dict | None:
        doc = (await live.http.get(f"/v1/positions/{pid}", headers=auth)).json()
        return doc if doc["details"]["status"] == "closed" else None

    doc = await live.until(closed, within=60)
    assert doc["details"]["closeReason"] == "stop_loss"
    assert doc["details"]["closePrice"] == "58950.50000000"
    history = (await live.http.get("/v1/history", headers=auth)).json()
    assert [h["id"] for h in history] == [pid]


async def test_healthz_reports_connected_feeds(live: Live) -> None:
    """/healthz shows each feed's connection and the book's size."""
    async with asyncio.timeout(60):  # a feed that never connects fails here, not hangs CI
        await live.sim.wait_connections(Market.SPOT, 1)
    body = await live.until(lambda: _connected(live))
    assert body["worker"]["feeds"]["spot"]["connected"] is True
    assert "book" in body["worker"]


async def _connected(live: Live) -> dict | None:
    body = (await live.http.get("/healthz")).json()
    feeds = body.get("worker", {}).get("feeds", {})
    return body if feeds and all(f["connected"] for f in feeds.values()) else None


def _in_book(live: Live, key: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return key in live.worker.engine.book

    return check
