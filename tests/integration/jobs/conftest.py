"""The jobs against the KuCoin simulator on loopback, on SQLite (and PostgreSQL where asked).

`system` is overridden here so that the shared fixtures built on it (`make_user`,
`live_server`) talk to the simulator instead of api.kucoin.com. The fake OpenAI server of
the agent tests is reused from tests/integration/agent.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cogmora.cli.compose import System, build_system
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))

from fake_openai_server import FakeOpenAI
from jobs_testkit import TwoStores


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    simulator = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=11))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
def settings(db_path: Path, sim: KucoinSimulator) -> Settings:
    return Settings(
        store_url=f"sqlite:///{db_path}",
        kucoin_spot_url=sim.spot_url,
        kucoin_futures_url=sim.futures_url,
    )


@pytest.fixture
async def system(
    store: SqliteStore, settings: Settings, catalog: SymbolCatalog, clock: object
) -> AsyncIterator[System]:
    built = build_system(settings, store, catalog=catalog, clock=clock)  # type: ignore[arg-type]
    yield built
    await built.supervisor.stop()
    await built.aclose()


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TwoStores]:
    two = TwoStores(request.param, tmp_path, request)
    try:
        yield two
    finally:
        await two.close()
