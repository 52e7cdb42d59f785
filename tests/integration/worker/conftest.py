"""The whole system in one process against the KuCoin simulator on loopback: simulator ->
websocket feed -> engine -> SQLite -> close handler -> HTTP API (a real uvicorn server)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cogmora.cli.compose import System, build_system
from cogmora.cli.processes import start_components
from cogmora.cli.worker import Worker
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    sim: KucoinSimulator
    system: System
    http: httpx.AsyncClient

    @property
    def worker(self) -> Worker:
        worker = self.system.worker
        assert worker is not None, "this fixture starts the worker"
        return worker

    async def user(self, uid: str, balance: str = "100000") -> dict[str, str]:
        from decimal import Decimal

        _, token = await self.system.accounts.create_user(uid, Decimal(balance))
        return {"Authorization": f"Bearer {token}"}

    async def synced(self) -> None:
        """Wait until the worker's book holds every committed position and trigger (the
        change feed has nothing past its cursor), so a tick sent now is judged against them."""
        from cogmora.engine.book_sync import WATCHED_GROUPS

        store, engine = self.system.store, self.worker.engine

        async def caught_up() -> bool:
            return not await store.changes(engine.cursor, groups=WATCHED_GROUPS, limit=1)

        await self.until(caught_up)

    async def until(self, check: Callable[[], Awaitable[Any]], within: float = 60.0) -> Any:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            value = await check()
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.02)


async def start_live(
    path: Path,
    sim_config: SimulatorConfig | None = None,
    sim: KucoinSimulator | None = None,
    **settings: Any,
) -> Live:
    """The system on `path`, against `sim` (started) or a new simulator of `sim_config`;
    `settings` are further Settings fields (e.g. `firebase_project`)."""
    if sim is None:
        sim = KucoinSimulator(sim_config or SimulatorConfig(tick_rate=0, seed=7))
        await sim.start()
    port = free_port()
    settings = Settings(
        store_url=f"sqlite:///{path}",
        kucoin_spot_url=sim.spot_url,
        kucoin_futures_url=sim.futures_url,
        api_port=port,
        **settings,
    )
    store = SqliteStore(path)
    await store.start()
    system = build_system(settings, store)
    await start_components(system, ("worker", "close-handler", "api"))
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    deadline = asyncio.get_running_loop().time() + 60  # a loaded machine, not the expected time
    while True:
        try:
            await http.get("/healthz")
            break
        except httpx.TransportError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.02)
    return Live(sim, system, http)


async def stop_live(live: Live) -> None:
    await live.http.aclose()
    await live.system.supervisor.stop()
    await live.system.aclose()
    await live.system.store.close()
    await live.sim.stop()


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    lv = await start_live(tmp_path / "live.db")
    yield lv
    await stop_live(lv)
