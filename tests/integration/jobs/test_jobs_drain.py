"""SIGTERM's drain in a scheduler process (`cogmora jobs`): the runtime as the command
starts it, an agent run waiting on an LLM behind a fake OpenAI server on a real socket
that answers slowly. The drain lets the run finish and complete its slot; only a run
still waiting at the drain's deadline is cancelled, and its slot stays leased for a retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fake_openai_server import FakeOpenAI
from jobs_testkit import config_doc, decisions, save_config

from cogmora.cli.compose import System, build_system
from cogmora.cli.processes import DRAIN_SECONDS, drain, start_components
from cogmora.jobs.scheduler import leased
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator
from cogmora.store.sqlite import SqliteStore
from conditions import until

DUE = datetime(2026, 1, 1, 0, 15, 1, tzinfo=UTC)
HOLD = {"rationale": "late but sure", "actions": [{"type": "hold", "symbol": "ETH-USDT",
                                                   "rationale": "flat"}]}


@pytest.fixture
async def llm_system(
    store: SqliteStore, sim: KucoinSimulator, fake_llm: FakeOpenAI, catalog: SymbolCatalog,
    clock: object,
) -> AsyncIterator[System]:
    settings = Settings(
        kucoin_spot_url=sim.spot_url, kucoin_futures_url=sim.futures_url,
        llm_url=fake_llm.url, llm_model="fake-model", llm_api_key="sk-test",
    )
    built = build_system(settings, store, catalog=catalog, clock=clock)  # type: ignore[arg-type]
    await built.accounts.create_user("ann", Decimal(10000))
    await save_config(built, "ann", provider="llm", symbols=["ETH-USDT"])
    built.clock.set(DUE)  # type: ignore[attr-defined]
    yield built
    await built.supervisor.stop()
    await built.aclose()


async def run_waiting_on_the_llm(system: System, fake_llm: FakeOpenAI) -> None:
    """Start the scheduler component; return once its run has asked the model."""
    fake_llm.slow(120, HOLD)  # held until `answer_now`, or two minutes
    await start_components(system, ("scheduler",))
    await until(lambda: fake_llm.requests, what="the agent run asking the LLM")


async def test_sigterms_drain_lets_a_run_waiting_on_a_slow_llm_finish_and_complete(
    llm_system: System, fake_llm: FakeOpenAI
) -> None:
    """The model answers after the drain began: the run applies it, logs its decision and
    completes its slot (next slot scheduled, no lease left), and nothing claims anew."""
    system = llm_system
    await run_waiting_on_the_llm(system, fake_llm)
    draining = asyncio.create_task(drain(system, {}, DRAIN_SECONDS))
    await until(lambda: (system.supervisor.phase or "").startswith("stopping"))
    assert not draining.done()  # waiting for the run, not cutting it
    fake_llm.answer_now()
    await asyncio.wait_for(draining, 60)

    [decision] = await decisions(system.store, "ann")
    assert decision["error"] is None and decision["provider"] == "llm"
    assert decision["rationale"] == "late but sure"
    config = await config_doc(system.store, "ann")
    assert not leased(config)
    assert config["nextRunAt"] == "2026-01-01T00:30:00.000000Z"
    assert system.jobs is not None and system.jobs.agents.stats.completed == 1
    assert len(fake_llm.requests) == 1
    assert not {"scheduler-agents", "scheduler-watchlist"} & set(system.supervisor.names())


async def test_a_run_still_waiting_at_the_drains_deadline_is_cancelled_and_keeps_its_lease(
    llm_system: System, fake_llm: FakeOpenAI
) -> None:
    """A model that never answers in time does not hold the process past the deadline:
    the run is cancelled, logs nothing, and its slot stays leased for the retry."""
    system = llm_system
    await run_waiting_on_the_llm(system, fake_llm)
    await asyncio.wait_for(drain(system, {}, 2.0), 60)  # far below the model's two minutes

    assert await decisions(system.store, "ann") == []
    assert leased(await config_doc(system.store, "ann"))
    assert system.jobs is not None and system.jobs.agents.stats.completed == 0
    assert not {"scheduler-agents", "scheduler-watchlist"} & set(system.supervisor.names())
