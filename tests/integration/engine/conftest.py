"""An engine on a real SQLite file, fed ticks directly (the feed is tested on its own)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cogmora.cli.compose import System, build_system
from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market, Side
from cogmora.domain.models import PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.domain.trailing import TrailingStop
from cogmora.engine.book_sync import WATCHED_GROUPS, BookIndex, fill, load_all
from cogmora.engine.engine import Engine
from cogmora.engine.faults import FaultHook
from cogmora.engine.metrics import EngineMetrics
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.port import Store
from cogmora.store.sqlite import SqliteStore

SPOT = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
FUTURES = ["XBTUSDTM", "ETHUSDTM"]


@dataclass
class Rig:
    system: System
    engine: Engine
    tasks: list[asyncio.Task[None]]

    def price(self, symbol: str, price: str) -> None:
        self.system.live.put(PriceQuote(symbol, Decimal(price), self.system.clock.now()))

    def ticks(self, symbol: str, *prices: str, kind: PriceKind = PriceKind.TRADE) -> None:
        market = Market.SPOT if "-" in symbol else Market.FUTURES
        self.engine.on_ticks(
            [Tick(symbol, market, Decimal(p), kind, received_ns=time.time_ns()) for p in prices]
        )

    async def settle(self) -> None:
        await asyncio.sleep(0)
        await self.engine.drained()
        await self.system.settler.settle_all()

    async def synced(self) -> None:
        """Wait until the engine has applied every committed change to its book."""
        store = self.system.store
        deadline = asyncio.get_running_loop().time() + 60  # generous: a loaded machine
        while asyncio.get_running_loop().time() < deadline:
            if not await store.changes(self.engine.cursor, groups=WATCHED_GROUPS, limit=1):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the engine did not catch up with the change feed")


async def make_rig(path: Path, faults: FaultHook | None = None, store: Store | None = None) -> Rig:
    if store is None:
        store = SqliteStore(path)
    await store.start()
    system = build_system(Settings(), store, catalog=SymbolCatalog(SPOT, FUTURES))
    engine = Engine(
        store,
        system.settings.fees,
        system.clock,
        system.live,
        EngineMetrics(CollectorRegistry()),
        faults=faults,
    )
    await engine.load()
    tasks = [asyncio.create_task(engine.run_commits()), asyncio.create_task(engine.follow())]
    return Rig(system, engine, tasks)


async def trailed_long(rig: Rig) -> str:
    """User u's BTC-USDT long at 60000, stop loss 59000, trailing 5% (the store's peak
    60000, stop 57000), in the engine's book: the lost-crossing scenarios start here."""
    await rig.system.accounts.create_user("u", Decimal("100000"))
    rig.price("BTC-USDT", "60000")
    request = OpenRequest(
        "BTC-USDT", Market.SPOT, Side.LONG, qty=Decimal("0.1"), stop_loss=Decimal("59000"),
        trailing_stop=TrailingStop(Decimal("0.05")),
    )
    pid = str((await rig.system.positions.open("u", request))["id"])
    await rig.synced()
    return pid


async def book_matches_store(rig: Rig) -> None:
    """The engine's book holds exactly the keys and levels a fresh load from the store gives."""
    fresh = BookIndex(TriggerBook())
    positions, triggers = await rig.system.store.read(load_all)
    fill(fresh, positions, triggers, lambda path, exc: None)
    book = rig.engine.book
    stored = {p.rsplit("/", 1)[1] for p, _ in positions + triggers}
    diff = {
        key: (book.levels_for(key), fresh.book.levels_for(key))
        for key in stored
        if book.levels_for(key) != fresh.book.levels_for(key)
    }
    assert not diff, diff
    assert len(book) == len(fresh.book), (len(book), len(fresh.book))


def restart(rig: Rig, which: int) -> None:
    """Start again the commit task (0) or the change-feed task (1) after `pause`."""
    engine = rig.engine
    task = engine.run_commits() if which == 0 else engine.follow()
    rig.tasks[which] = asyncio.create_task(task)


async def pause(rig: Rig, which: int) -> None:
    rig.tasks[which].cancel()
    await asyncio.gather(rig.tasks[which], return_exceptions=True)


async def close_rig(rig: Rig) -> None:
    for task in rig.tasks:
        task.cancel()
    await asyncio.gather(*rig.tasks, return_exceptions=True)
    await rig.system.store.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = await make_rig(tmp_path / "engine.db")
    yield r
    await close_rig(r)
