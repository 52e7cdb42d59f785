"""Trailing stops over real HTTP (SPEC 5.2): set on open, on a trigger's action, by PATCH."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from cogmora.domain.enums import Market
from cogmora.domain.models import PriceQuote
from cogmora.domain.ticks import Tick
from cogmora.engine.book_sync import WATCHED_GROUPS
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from conditions import until

if TYPE_CHECKING:
    from conftest import LiveServer

Quote = Callable[..., PriceQuote]
SPOT = {"symbol": "BTC-USDT", "market": "spot", "side": "long", "qty": "0.1"}
FUT = {"symbol": "XBTUSDTM", "market": "futures", "qty": "1", "leverage": "5"}


async def client_for(live_server: LiveServer, make_user: Any, uid: str) -> httpx.AsyncClient:
    _, token = await make_user(uid, "100000")
    return live_server.client(token)


async def test_an_open_with_a_trailing_stop_shows_its_peak_and_stop(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Without an activation price it trails from the fill at once; with one it waits."""
    quote("BTC-USDT", "50000")
    async with await client_for(live_server, make_user, "ann") as c:
        r = await c.post("/v1/positions", json={**SPOT, "trailingStop": {"callbackRate": "0.02"}})
        assert r.status_code == 201, r.text
        d = r.json()["details"]
        assert d["trailing"] == {"callbackRate": "0.02000000", "activationPrice": None}
        assert (d["trailingPeak"], d["trailingStop"]) == ("50000.00000000", "49000.00000000")
        waiting = {"callbackRate": 0.05, "activationPrice": "55000"}
        r = await c.post("/v1/positions", json={**SPOT, "trailingStop": waiting})
        assert r.status_code == 201, r.text
        d = r.json()["details"]
        assert (d["trailingPeak"], d["trailingStop"]) == (None, None)
        assert d["trailing"]["activationPrice"] == "55000.00000000"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {**SPOT, "trailingStop": {"callbackRate": "0"}},
            "trailingStop.callbackRate",
            "trailingStop.callbackRate must be > 0 and <= 0.5",
        ),
        (
            {**SPOT, "trailingStop": {"callbackRate": "0.6"}},
            "trailingStop.callbackRate",
            "trailingStop.callbackRate must be > 0 and <= 0.5",
        ),
        (
            {**SPOT, "trailingStop": {"callbackRate": "0.1", "activationPrice": "49000"}},
            "trailingStop.activationPrice",
            "trailingStop.activationPrice must be above the entry price for a long",
        ),
        (
            {**FUT, "side": "short", "trailingStop": {"callbackRate": "0.1",
                                                       "activationPrice": "51000"}},
            "trailingStop.activationPrice",
            "trailingStop.activationPrice must be below the entry price for a short",
        ),
        (
            {**SPOT, "trailingStop": {"activationPrice": "51000"}},
            "trailingStop.callbackRate",
            "trailingStop.callbackRate: is required",
        ),
    ],
)
async def test_a_bad_trailing_stop_is_422_naming_the_field_and_rule(
    live_server: LiveServer, make_user: Any, quote: Quote, body: dict[str, Any], field: str,
    message: str,
) -> None:
    """Each rule of SPEC 5.2 refused by name, and nothing opened."""
    quote("BTC-USDT", "50000")
    quote("XBTUSDTM", "50000")
    async with await client_for(live_server, make_user, "bob") as c:
        r = await c.post("/v1/positions", json=body)
        assert (r.status_code, r.json()["field"]) == (422, field), r.text
        assert message in r.json()["detail"]
        assert (await c.get("/v1/positions")).json() == []


async def test_patch_sets_changes_and_clears_a_trailing_stop(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """A new trailing stop trails from the current price; null clears it; other levels stay."""
    quote("BTC-USDT", "50000")
    async with await client_for(live_server, make_user, "cy") as c:
        pid = (await c.post("/v1/positions", json={**SPOT, "stopLoss": "40000"})).json()["id"]
        quote("BTC-USDT", "52000")
        r = await c.patch(f"/v1/positions/{pid}", json={"trailingStop": {"callbackRate": "0.1"}})
        assert r.status_code == 200, r.text
        d = r.json()["details"]
        assert (d["trailingPeak"], d["trailingStop"], d["stopLoss"]) == (
            "52000.00000000", "46800.00000000", "40000.00000000"
        )
        r = await c.patch(
            f"/v1/positions/{pid}",
            json={"trailingStop": {"callbackRate": "0.1", "activationPrice": "51000"}},
        )
        assert (r.status_code, r.json()["field"]) == (422, "trailingStop.activationPrice")
        assert "above the current price for a long" in r.json()["detail"]
        r = await c.patch(f"/v1/positions/{pid}", json={"trailingStop": None})
        assert r.status_code == 200, r.text
        assert "trailing" not in r.json()["details"]


async def test_a_trigger_action_carries_a_trailing_stop(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """The action stores it; its activation price is checked against the trigger price."""
    async with await client_for(live_server, make_user, "dee") as c:
        trigger = {"symbol": "BTC-USDT", "market": "spot",
                   "condition": {"op": "below", "price": "48000"}}
        action = {"side": "long", "qty": "0.1", "trailingStop": {"callbackRate": "0.03"}}
        r = await c.post("/v1/triggers", json={**trigger, "action": action})
        assert r.status_code == 201, r.text
        assert r.json()["action"]["trailingStop"]["callbackRate"] == "0.03000000"
        action["trailingStop"] = {"callbackRate": "0.03", "activationPrice": "47000"}
        r = await c.post("/v1/triggers", json={**trigger, "action": action})
        assert (r.status_code, r.json()["field"]) == (422, "trailingStop.activationPrice")
        assert "above the trigger price for a long" in r.json()["detail"]


async def test_a_stop_loss_patch_after_a_new_high_stores_and_shows_the_books_peak(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """The engine's peak rose to 62000 after the store last had 61000; a PATCH of the stop
    loss reads 61000, and the engine keeps 62000: the writer's next round stores 62000 and
    its stop, which GET shows, with no trade after the PATCH."""
    system = live_server.system
    engine = Engine(
        system.store,
        system.settings.fees,
        system.clock,
        system.live,
        EngineMetrics(CollectorRegistry()),
    )
    await engine.load()
    follow = asyncio.create_task(engine.follow())

    async def synced() -> bool:
        return not await system.store.changes(engine.cursor, groups=WATCHED_GROUPS, limit=1)

    def ticks(*prices: str) -> None:
        engine.on_ticks([Tick("BTC-USDT", Market.SPOT, Decimal(p)) for p in prices])

    try:
        quote("BTC-USDT", "60000")
        async with await client_for(live_server, make_user, "eve") as c:
            body = {**SPOT, "trailingStop": {"callbackRate": "0.02"}}
            pid = (await c.post("/v1/positions", json=body)).json()["id"]
            await until(synced, what="the position in the book")
            ticks("61000")
            assert await engine.trailing.flush() == 1
            ticks("62000")  # the round for it has not come yet
            r = await c.patch(f"/v1/positions/{pid}", json={"stopLoss": "50000"})
            assert r.status_code == 200, r.text
            assert r.json()["details"]["trailingPeak"] == "61000.00000000"  # what it read
            await until(synced, what="the PATCH in the book")
            state = engine.book.trailing_state(pid)
            assert state is not None and state.peak_price() == Decimal("62000")
            assert await engine.trailing.flush() == 1  # the writer's next round
            d = (await c.get(f"/v1/positions/{pid}")).json()["details"]
            assert (d["trailingPeak"], d["trailingStop"], d["stopLoss"]) == (
                "62000.00000000", "60760.00000000", "50000.00000000"
            )
    finally:
        follow.cancel()
        await asyncio.gather(follow, return_exceptions=True)
