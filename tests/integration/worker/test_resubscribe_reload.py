"""A symbol the feed subscribes again after a reconnect has its levels reloaded from the
store with the seed's per-symbol queries: the whole worker over real websockets against
the simulator."""

from __future__ import annotations

from cogmora.domain.enums import Market
from conditions import until

from .conftest import Live

SYM = "BTC-USDT"


async def open_long(live: Live, auth: dict[str, str], stop: str) -> str:
    response = await live.http.post(
        "/v1/positions",
        json={"symbol": SYM, "market": "spot", "side": "long", "qty": "0.1", "stopLoss": stop},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_level_the_book_missed_is_reloaded_when_the_feed_resubscribes(
    live: Live,
) -> None:
    """After the websocket drops and comes back, the resubscribed symbol's levels are read
    again from the store; a stop the book had lost is watched again and fires."""
    auth = await live.user("alice")
    await live.sim.set_price(SYM, "60000")
    kept = await open_long(live, auth, "58000")
    missed = await open_long(live, auth, "59000")
    feed, engine, reloads = live.worker.feeds[Market.SPOT], live.worker.engine, live.worker.reloads
    assert reloads is not None
    await live.sim.wait_subscribed([SYM])
    await until(lambda: SYM in feed.subscribed_symbols and not live.worker.recovering)
    await live.synced()
    assert kept in engine.book and missed in engine.book
    assert reloads.reloaded == 0  # the first subscription reloads nothing
    engine.index.forget(missed)  # the book drifted: a change it never applied

    await live.sim.drop_connections(Market.SPOT)

    await until(lambda: reloads.reloaded >= 1, what="a reload after the resubscription")
    await until(lambda: missed in engine.book, what="the missed stop back in the book")
    await until(lambda: feed.connected and not live.worker.recovering)
    await live.sim.set_price(SYM, "58500")

    async def closed() -> bool:
        doc = (await live.http.get(f"/v1/positions/{missed}", headers=auth)).json()
        return bool(doc["details"]["status"] in ("closing", "closed"))

    await until(closed, what="the reloaded stop fired")
    assert kept in engine.book
