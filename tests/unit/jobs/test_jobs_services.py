"""The stores behind the agent: its config service, its LLM call budget, single flight."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from cogmora.cli.compose import System
from cogmora.errors import NotFound, Temporary, ValidationError
from cogmora.jobs.agent.store_budget import StoreCallBudget
from cogmora.jobs.market import SingleFlight
from cogmora.services.agent import AgentConfigs
from cogmora.store.sqlite import SqliteStore

DAY = date(2026, 1, 1)


async def test_the_budget_spends_to_its_limit_per_user_and_day(store: SqliteStore) -> None:
    """Three calls a day: the fourth is refused; another user or day starts afresh."""
    budget = StoreCallBudget(store, 3)
    assert [await budget.try_spend("ann", DAY) for _ in range(4)] == [True, True, True, False]
    assert await budget.try_spend("bob", DAY)
    assert await budget.try_spend("ann", DAY + timedelta(days=1))
    assert await budget.spent("ann", DAY) == 3


async def test_two_budgets_on_one_store_share_the_counter(store: SqliteStore) -> None:
    """Concurrent spenders (as replicas would be) never spend more than the limit."""
    a, b = StoreCallBudget(store, 5), StoreCallBudget(store, 5)
    spent = await asyncio.gather(*(x.try_spend("ann", DAY) for x in (a, b) * 6))
    assert sum(spent) == 5


async def test_saving_the_same_schedule_keeps_the_slot_and_the_scheduler_state(
    system: System, make_user, clock
) -> None:
    """Editing symbols keeps nextRunAt and `run`; a new schedule moves it; off clears it."""
    await make_user("ann")
    configs: AgentConfigs = system.agent_configs
    await configs.put("ann", {"enabled": True, "schedule": "every 15m", "symbols": ["BTC-USDT"]})
    path = "users/ann/agent/config"
    doc = await system.store.read(lambda tx: tx.get(path))
    assert doc is not None
    run = {"slot": doc["nextRunAt"], "leaseUntil": "2026-01-01T00:20:00.000000Z"}
    leased = {**doc, "nextRunAt": run["leaseUntil"], "run": run}
    await system.store.transact(lambda tx: tx.set(path, leased))
    clock.advance(60 * 30)

    kept = await configs.put(
        "ann", {"enabled": True, "schedule": "every 15m", "symbols": ["ETH-USDT"]}
    )
    stored = await system.store.read(lambda tx: tx.get(path))
    assert stored is not None
    assert stored["nextRunAt"] == "2026-01-01T00:20:00.000000Z" and stored["run"] == run
    assert kept.symbols == ("ETH-USDT",)

    moved = await configs.put(
        "ann", {"enabled": True, "schedule": "every 1h", "symbols": ["ETH-USDT"]}
    )
    assert moved.next_run_at is not None and moved.next_run_at.isoformat().startswith(
        "2026-01-01T01:00"
    )
    off = await configs.put("ann", {"enabled": False})
    assert off.next_run_at is None
    stored = await system.store.read(lambda tx: tx.get(path))
    assert stored is not None and stored["run"] == run


async def test_an_unknown_user_has_no_agent(system: System) -> None:
    """A config for a user that does not exist is a 404, not a stray document."""
    configs: AgentConfigs = system.agent_configs
    with pytest.raises(NotFound):
        await configs.put("ghost", {"enabled": False})
    with pytest.raises(ValidationError):
        await configs.decisions("ghost", limit=0)


async def test_single_flight_shares_one_call_and_forgets_failures() -> None:
    """Concurrent askers of one key share a call; a failed call is retried by the next ask."""
    flight = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def slow() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return calls

    waiting = [asyncio.create_task(flight.run("k", slow)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [1] * 5

    async def broken() -> int:
        raise Temporary("down")

    with pytest.raises(Temporary):
        await flight.run("k", broken)
    assert await flight.run("k", slow) == 2
