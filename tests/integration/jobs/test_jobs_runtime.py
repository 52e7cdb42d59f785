"""`start_jobs` as `cogmora jobs` and `cogmora run` start it: supervised loops that find due
slots on their own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from jobs_testkit import decisions, save_config

from cogmora.cli.compose import System
from cogmora.cli.processes import start_components
from cogmora.domain.enums import Market

DUE = datetime(2026, 1, 1, 0, 15, 1, tzinfo=UTC)


async def until(check):  # type: ignore[no-untyped-def]
    """Poll `check` until it gives something truthy (for up to a minute, a loaded machine)."""
    async with asyncio.timeout(60):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.02)


async def test_the_scheduler_component_runs_due_agents_and_the_watchlist(
    system: System, make_user
) -> None:
    """Started as a component, the scheduler runs a due agent, refreshes the watchlist,
    loads the symbol catalog itself (no worker here) and reports in the health probe."""
    await make_user("ann")
    await save_config(system, "ann", symbols=["ETH-USDT"])
    await system.watchlists.put("ann", ["ETH-USDT"])
    system.catalog.update(Market.SPOT, [])
    system.clock.set(DUE)  # type: ignore[attr-defined]

    await start_components(system, ("scheduler",))

    [decision] = await until(lambda: decisions(system.store, "ann"))
    assert decision["error"] is None
    entries = await until(lambda: _with_stats(system.watchlists.get("ann")))
    assert entries[0]["lastPrice"] == "3500.00000000"
    await until(lambda: _known(system))
    health = system.supervisor.health()
    assert health["tasks"]["scheduler-agents"]["running"]
    assert health["tasks"]["scheduler-watchlist"]["running"]
    assert health["jobs"]["agents"]["completed"] == 1


async def _with_stats(pending):  # type: ignore[no-untyped-def]
    entries = await pending
    return entries if entries and entries[0]["lastPrice"] is not None else None


async def _known(system: System) -> bool:
    return system.catalog.known(Market.SPOT, "ETH-USDT")
