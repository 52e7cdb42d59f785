"""The user's event stream (`GET /v1/events`) over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from decimal import Decimal as D
from typing import TYPE_CHECKING, Any

from cogmora.domain.enums import Market, Side
from cogmora.domain.models import PriceQuote
from cogmora.domain.orders import OpenRequest

if TYPE_CHECKING:
    from conftest import LiveServer

Quote = Callable[..., PriceQuote]


async def collect(
    live_server: LiveServer, token: str, act: Any, until: set[str], wait: float = 1.0
) -> list[dict[str, Any]]:
    """Connect, run `act`, and gather events until every collection in `until` has been seen
    (or `wait` seconds pass: commits in this process wake the stream at once)."""
    events: list[dict[str, Any]] = []
    async with live_server.client(token) as c, c.stream("GET", "/v1/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.aiter_lines()
        assert await anext(lines) == ": connected"
        await act()

        async def read() -> None:
            async for line in lines:
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))
                    if until <= {e["collection"] for e in events}:
                        return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(read(), timeout=wait)
    return events


async def test_an_open_streams_the_position_and_the_balance_only_to_its_owner(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Alice's open shows up on her stream as her position and user documents; Bob's
    stream, open at the same time, sees nothing of it."""
    quote("BTC-USDT", "100")
    _, alice = await make_user("alice", "1000")
    _, bob = await make_user("bob", "1000")
    positions = live_server.system.positions

    async def act() -> None:
        await positions.open("alice", OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D(1)))

    async def again() -> None:
        await act()

    events = await collect(live_server, alice, act, {"openPositions", "users"})
    kinds = {e["collection"] for e in events}
    assert {"openPositions", "users"} <= kinds
    assert all(e["path"].startswith("users/alice") for e in events)
    pos = next(e for e in events if e["collection"] == "openPositions")
    assert pos["doc"]["details"]["status"] == "open"
    bob_events = await collect(live_server, bob, again, {"never"}, wait=0.5)
    assert bob_events == []


async def test_a_deposit_streams_its_ledger_entry(live_server: LiveServer, make_user: Any) -> None:
    """A deposit appears on the owner's stream as the balance change and its ledger entry."""
    _, token = await make_user("alice", "1")

    async def act() -> None:
        await live_server.system.accounts.deposit("alice", D(5))

    events = await collect(live_server, token, act, {"users", "ledger"})
    assert {"users", "ledger"} <= {e["collection"] for e in events}


async def test_a_settlement_streams_its_history_and_ledger_entries(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Settling a close shows the owner the closed position, its history document and the
    close and fee entries, though the change feed itself carries neither ledger nor history."""
    quote("BTC-USDT", "100")
    _, token = await make_user("alice", "1000")
    system = live_server.system
    doc = await system.positions.open(
        "alice", OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D(1))
    )

    async def act() -> None:
        await system.positions.request_close("alice", doc["id"])
        await system.settler.settle_all()

    events = await collect(live_server, token, act, {"positionHistory", "ledger"})
    history = [e for e in events if e["collection"] == "positionHistory"]
    assert [h["path"] for h in history] == [f"users/alice/positionHistory/{doc['id']}"]
    assert history[0]["doc"]["realizedPnl"] == "-0.20000000"
    kinds = [e["doc"]["kind"] for e in events if e["collection"] == "ledger"]
    assert kinds == ["close", "fee"]
