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
from cogmora.domain.enums import Market
from cogmora.domain.models import PriceQuote
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.engine.book_sync import WATCHED_GROUPS
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
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
        for _ in range(200):
            if not await store.changes(self.engine.cursor, groups=WATCHED_GROUPS, limit=1):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the engine did not catch up with the change feed")


async def make_rig(path: Path) -> Rig:
    store = SqliteStore(path)
    await store.start()
    system = build_system(Settings(), store, catalog=SymbolCatalog(SPOT, FUTURES))
    engine = Engine(
        store, system.settings.fees, system.clock, system.live, EngineMetrics(CollectorRegistry())
    )
    await engine.load()
    tasks = [asyncio.create_task(engine.run_commits()), asyncio.create_task(engine.follow())]
    return Rig(system, engine, tasks)


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
