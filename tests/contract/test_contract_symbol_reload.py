"""A resubscribed symbol's levels reloaded with the seed's per-symbol queries, on every
backend, while the engine follows the change feed: the reload heals what the book missed
for that symbol only, and a change committed while its query runs is neither lost nor
undone by the older snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cogmora.cli.compose import System
from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market, Side, TriggerOp
from cogmora.domain.models import Position, TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.domain.paths import position_path
from cogmora.engine.book_sync import WATCHED_GROUPS, BookIndex, SymbolReload, fill, load_all
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.engine.subscriptions import BookReloads
from conditions import until

XBT = "XBTUSDTM"


def long_x10(symbol: str = XBT, stop: str = "2800") -> OpenRequest:
    return OpenRequest(symbol, Market.FUTURES, Side.LONG, qty=D(1), leverage=D(10),
                       stop_loss=D(stop))


def refuse(path: str, exc: Exception) -> None:
    pytest.fail(f"unreadable document {path}: {exc}")


@pytest.fixture
async def engine(system: System) -> AsyncIterator[Engine]:
    """The production engine on the backend's store, following its change feed."""
    eng = Engine(system.store, system.settings.fees, system.clock, system.live,
                 EngineMetrics(CollectorRegistry()))
    await eng.load()
    tasks = [asyncio.create_task(eng.run_commits()), asyncio.create_task(eng.follow())]
    yield eng
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def reloads_of(system: System, engine: Engine) -> BookReloads:
    return BookReloads(system.store, engine.index, engine.index.inflight, refuse)


async def synced(system: System, engine: Engine) -> None:
    async def caught_up() -> bool:
        return not await system.store.changes(engine.cursor, groups=WATCHED_GROUPS, limit=1)

    await until(caught_up, what="the engine caught up with the change feed")


async def book_as_stored(system: System, engine: Engine) -> None:
    """Every stored open position and active trigger is in the book with its stored levels,
    and nothing else is (no level lost, none left behind or doubled)."""
    fresh = BookIndex(TriggerBook())
    positions, triggers = await system.store.read(load_all)
    fill(fresh, positions, triggers, refuse)
    keys = set(fresh.owners) | set(engine.index.owners)
    diff = {k: (engine.book.levels_for(k), fresh.book.levels_for(k)) for k in keys
            if engine.book.levels_for(k) != fresh.book.levels_for(k)}
    assert not diff, diff
    assert engine.book.levels_count() == fresh.book.levels_count()
    assert len(engine.book) == len(fresh.book)


async def test_a_reload_heals_the_reloaded_symbol_and_leaves_the_others_alone(
    system: System, engine: Engine, make_user: Any, quote: Any
) -> None:
    """A level the book lost comes back and a stale one goes, for the reloaded symbol only."""
    await make_user("alice", "100000")
    quote(XBT, "3000")
    quote("ETHUSDTM", "2000")
    lost = (await system.positions.open("alice", long_x10()))["id"]
    stale = (await system.positions.open("alice", long_x10(stop="2750")))["id"]
    eth = (await system.positions.open("alice", long_x10("ETHUSDTM", "1900")))["id"]
    trigger = await system.triggers.create(
        "alice", XBT, Market.FUTURES, TriggerCondition(TriggerOp.ABOVE, D("3500")),
        TriggerAction(Side.LONG, qty=D(1), leverage=D(10)),
    )
    await synced(system, engine)
    assert all(k in engine.book for k in (lost, stale, eth, trigger["id"]))
    stale_doc = await system.store.read(lambda tx: tx.get(position_path("alice", stale)))
    await system.positions.request_close("alice", stale)
    await synced(system, engine)
    # The book drifts from the store: two missed changes, one of them on another symbol.
    engine.index.forget(lost)
    engine.index.forget(eth)
    engine.index.put_position(Position.from_doc(stale, stale_doc))

    await reloads_of(system, engine).reload([XBT])

    assert lost in engine.book and trigger["id"] in engine.book
    assert stale not in engine.book
    assert eth not in engine.book  # ETHUSDTM was not reloaded


async def test_a_change_committed_while_the_reload_query_runs_is_not_lost(
    system: System, engine: Engine, make_user: Any, quote: Any
) -> None:
    """A close and an open committed after the query's snapshot, and applied by the feed
    before the reload lands, survive it: the stale snapshot neither resurrects the closed
    position nor drops the new one."""
    await make_user("bob", "100000")
    quote(XBT, "3000")
    closed = (await system.positions.open("bob", long_x10()))["id"]
    await synced(system, engine)
    reload = SymbolReload(engine.index, [XBT], engine.index.inflight)
    rows = await system.store.read(reload.query)
    assert [p.rsplit("/", 1)[1] for p, _ in rows[0]] == [closed]  # the snapshot: before

    await system.positions.request_close("bob", closed)
    opened = (await system.positions.open("bob", long_x10(stop="2750")))["id"]
    await synced(system, engine)
    assert closed not in engine.book and opened in engine.book  # the feed applied both

    replayed = reload.finish(rows, refuse)

    assert replayed >= 2
    assert closed not in engine.book and opened in engine.book
    await book_as_stored(system, engine)


async def test_reloads_racing_opens_and_closes_leave_the_book_as_stored(
    system: System, engine: Engine, make_user: Any, quote: Any
) -> None:
    """Reloads run concurrently with commits on the same symbol; once the feed has caught
    up, the book holds exactly what the store holds."""
    await make_user("carol", "1000000")
    quote(XBT, "3000")
    reloads = reloads_of(system, engine)
    kept: list[str] = []

    async def churn(i: int) -> None:
        pid = (await system.positions.open("carol", long_x10(stop=str(2720 + 10 * i))))["id"]
        if i % 2:
            await system.positions.request_close("carol", pid)
        else:
            kept.append(pid)

    for i in range(6):
        await asyncio.gather(reloads.reload([XBT]), churn(i), reloads.reload([XBT]))
    await synced(system, engine)
    await reloads.reload([XBT])
    assert all(k in engine.book for k in kept)
    await book_as_stored(system, engine)
