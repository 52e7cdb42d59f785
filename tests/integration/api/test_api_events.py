"""The user's event stream (`GET /v1/events`) over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cogmora.domain.enums import Market, Side
from cogmora.domain.models import PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.store.sqlite import SqliteStore

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


async def test_a_partial_close_streams_the_open_part_its_history_and_ledger(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """A partial close shows the reduced open position (qty, parts), the part's own
    history document (partOf) and its close and fee entries."""
    quote("BTC-USDT", "100")
    _, token = await make_user("alice", "1000")
    system = live_server.system
    doc = await system.positions.open(
        "alice", OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D(2))
    )

    async def act() -> None:
        await system.positions.request_close("alice", doc["id"], qty=D("0.5"))

    events = await collect(live_server, token, act, {"positionHistory", "ledger"})
    history = [e for e in events if e["collection"] == "positionHistory"]
    assert [(h["doc"]["id"], h["doc"]["partOf"]) for h in history] == [
        (f"{doc['id']}-1", doc["id"])
    ]
    opened = [e["doc"] for e in events if e["collection"] == "openPositions"]
    assert (opened[-1]["qty"], opened[-1]["details"]["parts"]) == ("1.50000000", 1)
    kinds = [e["doc"]["kind"] for e in events if e["collection"] == "ledger"]
    assert kinds[:1] == ["close"]  # collect() stops at the first of each collection


async def test_a_stream_behind_the_pruned_feed_sends_resync_and_goes_on(
    live_server: LiveServer, make_user: Any, db_path: Path
) -> None:
    """When the store's feed was pruned past a stream's cursor, the client gets one
    `event: resync` with the new head, and later changes stream as before."""
    _, alice = await make_user("alice", "1000")
    api_store = live_server.system.store
    other = SqliteStore(db_path)  # another process, writing and pruning the same file
    await other.start()
    try:
        async with live_server.client(alice) as c, c.stream("GET", "/v1/events") as r:
            lines = r.aiter_lines()
            assert await anext(lines) == ": connected"
            gate = threading.Event()  # hold the API's reads while the feed is cut short
            api_store._reader.submit(gate.wait)  # type: ignore[attr-defined]
            await other.transact(lambda tx: tx.set("users/alice/watchlist/BTC-USDT", {"n": 1}))
            await other.prune_changes(0)
            head = await other.head()
            gate.set()

            async def next_event() -> tuple[str, dict[str, Any]]:
                name = ""
                async for line in lines:
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        return name, json.loads(line.removeprefix("data: "))
                raise AssertionError("the stream ended")

            name, data = await asyncio.wait_for(next_event(), timeout=60)
            assert (name, data["collection"], data["seq"]) == ("resync", "resync", head)
            await other.transact(lambda tx: tx.set("users/alice/watchlist/ETH-USDT", {"n": 2}))
            name, data = await asyncio.wait_for(next_event(), timeout=60)
            assert (name, data["path"]) == ("watchlist", "users/alice/watchlist/ETH-USDT")
    finally:
        await other.close()
