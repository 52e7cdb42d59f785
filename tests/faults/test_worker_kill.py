"""SIGKILL of `cogmora worker` at random points of a stop-loss storm, then a restart: every
crossed stop is closed and credited exactly once, nothing else closes, nothing is left
`closing`, and every ledger sums to its balance.

Where the kill lands is drawn from the seed: after K of the crossed positions are marked
`closing` (the worker's compare-and-set commits), or after K are settled (the close
handler's commits). After the restart, either the market goes on (a new trade at the
storm's price arrives) or it does not (no trade for as long as the test waits: the
restarted worker must find what stands crossed on its own, from the stored price and the
gap's candles, SPEC 5.1).
"""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

import faultkit as kit
import pytest

from cogmora.simulator import KucoinSimulator
from cogmora.store.sqlite import SqliteStore
from conditions import until

USERS = 50
SETTLE_WITHIN_S = 600.0  # a 10,000-position settlement on a loaded 2-core machine
# With no new trade, only the restart's own catch-up can close anything: a minute is
# generous for that, and more would only make a failing run slower.
CATCH_UP_WITHIN_S = 60.0


async def kill_point(store: SqliteStore, storm: kit.Storm, rng: random.Random) -> str:
    """Wait until the seeded kill point is reached; say where it was. A third of the kills
    land as the storm's trade is sent (before the closing commit, most likely), a third
    after K positions are marked `closing`, a third after K are settled."""
    crossed = len(storm.crossed)
    phase, k = rng.choice(("tick", "marked", "settled")), rng.randint(1, crossed)
    if phase == "tick":
        return "at the tick"
    if phase == "marked":
        await until(lambda: _at_least(store, k, 0), SETTLE_WITHIN_S, f"{k} marked closing")
        return f"after {k} marked"
    await until(lambda: _at_least(store, 0, k), SETTLE_WITHIN_S, f"{k} settled")
    return f"after {k} settled"


async def _at_least(store: SqliteStore, marked: int, closed: int) -> bool:
    not_open, done = await kit.progress(store)
    return not_open >= marked and done >= closed


async def one_try(
    positions: int, market_goes_on: bool, tmp: Path, rng: random.Random
) -> tuple[kit.Findings, str]:
    db = tmp / "storm.db"
    store = SqliteStore(db)
    await store.start()
    try:
        storm = await kit.seed_storm(store, positions, USERS, rng)
        async with KucoinSimulator(kit.quiet_market(rng)) as sim:
            env = kit.process_env(f"sqlite:///{db}", sim)
            log = tmp / "worker.log"
            async with kit.running(["worker"], env, log) as first:
                try:
                    await until(lambda: kit.subscribed(sim), what="first worker subscribed")
                    await sim.set_price(kit.SYMBOL, kit.STORM_PRICE)
                    where = await kill_point(store, storm, rng)
                finally:
                    await kit.kill(first)
            async with kit.running(["worker"], env, log):
                await until(lambda: kit.subscribed(sim), what="restarted worker subscribed")
                if market_goes_on:
                    await sim.set_price(kit.SYMBOL, kit.STORM_PRICE)
                try:
                    within = SETTLE_WITHIN_S if market_goes_on else CATCH_UP_WITHIN_S
                    await until(lambda: kit.settled(store, storm), within, "storm settled")
                except AssertionError as exc:
                    where += f"; {exc}"
        return await kit.audit(store, storm), where
    finally:
        await store.close()


def fault(market_goes_on: bool, positions: int) -> str:
    after = "market goes on" if market_goes_on else "no new trade"
    return f"worker SIGKILL in {positions:,}-position storms, {after}"


async def run(n: int, positions: int, market_goes_on: bool, tmp: Path) -> kit.Findings:
    one = partial(one_try, positions, market_goes_on)
    return await kit.run_tries(fault(market_goes_on, positions), n, tmp, one, "kills")


@pytest.mark.slow
async def test_worker_killed_mid_storm_then_restarted_with_the_market_going_on(
    tmp_path: Path,
) -> None:
    """One seeded SIGKILL mid-storm (2,000 positions): after a restart and a new trade,
    every crossed stop is closed once and nothing else moved."""
    found = await run(1, 2000, True, tmp_path)
    assert found.clean, (kit.seed(), found)


@pytest.mark.slow
async def test_worker_killed_mid_storm_then_restarted_with_no_new_trade(tmp_path: Path) -> None:
    """One seeded SIGKILL mid-storm (2,000 positions): the restarted worker closes what
    stands crossed although no new trade arrives."""
    found = await run(1, 2000, False, tmp_path)
    assert found.clean, (kit.seed(), found)


@pytest.mark.faults
async def test_worker_killed_20_times_in_10000_position_storms(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Twenty seeded SIGKILLs at random points of 10,000-position storms, market going on:
    nothing lost, doubled or contradictory."""
    kit.long_run(request)
    found = await run(kit.tries(20), 10_000, True, tmp_path)
    assert found.clean, (kit.seed(), found)


@pytest.mark.faults
async def test_worker_killed_20_times_in_10000_position_storms_with_no_new_trade(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Twenty seeded SIGKILLs of 10,000-position storms, no trade after the restart: the
    restarted worker closes every crossed stop on its own."""
    kit.long_run(request)
    found = await run(kit.tries(20), 10_000, False, tmp_path)
    assert found.clean, (kit.seed(), found)
