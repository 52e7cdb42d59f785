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
from pathlib import Path

import pytest
from faultkit import (
    STORM_PRICE,
    SYMBOL,
    Figure,
    Findings,
    Stopwatch,
    Storm,
    audit,
    kill,
    long_run,
    process_env,
    progress,
    record,
    seed,
    seed_storm,
    start,
    stop,
    tries,
)

from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore
from conditions import until

USERS = 50
SETTLE_WITHIN_S = 600.0  # a 10,000-position settlement on a loaded 2-core machine
# With no new trade, only the restart's own catch-up can close anything: a minute is
# generous for that, and more would only make a failing run slower.
CATCH_UP_WITHIN_S = 60.0


async def kill_point(store: SqliteStore, storm: Storm, rng: random.Random) -> str:
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
    not_open, done = await progress(store)
    return not_open >= marked and done >= closed


async def one_try(
    tmp: Path, rng: random.Random, positions: int, market_goes_on: bool
) -> tuple[Findings, str]:
    db = tmp / "storm.db"
    store = SqliteStore(db)
    await store.start()
    storm = await seed_storm(store, positions, USERS, rng)
    sim = KucoinSimulator(SimulatorConfig(tick_rate=0, mark_rate=0, seed=rng.randrange(1 << 30)))
    await sim.start()
    env = process_env(f"sqlite:///{db}", sim)
    log = tmp / "worker.log"
    try:
        first = await start(["worker"], env, log)
        try:
            await until(_subscribed(sim), what="first worker subscribed")
            await sim.set_price(SYMBOL, STORM_PRICE)
            where = await kill_point(store, storm, rng)
        finally:
            await kill(first)
        second = await start(["worker"], env, log)
        try:
            await until(_subscribed(sim), what="restarted worker subscribed")
            if market_goes_on:
                await sim.set_price(SYMBOL, STORM_PRICE)
            try:
                within = SETTLE_WITHIN_S if market_goes_on else CATCH_UP_WITHIN_S
                await until(lambda: _settled(store, storm), within, "storm settled")
            except AssertionError as exc:
                where += f"; {exc}"
        finally:
            await stop(second)
        return await audit(store, storm), where
    finally:
        await sim.stop()
        await store.close()


def _subscribed(sim: KucoinSimulator):  # type: ignore[no-untyped-def]
    return lambda: f"/market/ticker:{SYMBOL}" in sim.subscribed_topics()


async def _settled(store: SqliteStore, storm: Storm) -> bool:
    not_open, closed = await progress(store)
    return closed >= len(storm.crossed) and not_open == closed


async def run(tmp: Path, name: str, n_tries: int, positions: int, market_goes_on: bool) -> Findings:
    rng = random.Random(seed())
    total = Findings()
    watch = Stopwatch()
    notes = []
    for i in range(n_tries):
        found, where = await one_try(tmp / f"try{i}", rng, positions, market_goes_on)
        notes.append(where)
        total.add(found)
    record(
        Figure(
            name,
            n_tries,
            total.lost,
            total.doubled,
            total.contradictory + total.closing_left,
            seed(),
            watch.seconds,
            f"{positions} positions; kills: {', '.join(notes[:3])}...",
        )
    )
    return total


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def _dirs(tmp: Path, n: int) -> None:
    for i in range(n):
        (tmp / f"try{i}").mkdir(parents=True, exist_ok=True)


@pytest.mark.slow
async def test_worker_killed_mid_storm_then_restarted_with_the_market_going_on(tmp: Path) -> None:
    """One seeded SIGKILL mid-storm (2,000 positions): after a restart and a new trade,
    every crossed stop is closed once and nothing else moved."""
    _dirs(tmp, 1)
    found = await run(tmp, "worker SIGKILL mid-storm, market goes on", 1, 2000, True)
    assert found.clean, (seed(), found)


@pytest.mark.slow
async def test_worker_killed_mid_storm_then_restarted_with_no_new_trade(tmp: Path) -> None:
    """One seeded SIGKILL mid-storm (2,000 positions): the restarted worker closes what
    stands crossed although no new trade arrives."""
    _dirs(tmp, 1)
    found = await run(tmp, "worker SIGKILL mid-storm, no new trade", 1, 2000, False)
    assert found.clean, (seed(), found)


@pytest.mark.faults
async def test_worker_killed_20_times_in_10000_position_storms(
    request: pytest.FixtureRequest, tmp: Path
) -> None:
    """Twenty seeded SIGKILLs at random points of 10,000-position storms, market going on:
    nothing lost, doubled or contradictory."""
    long_run(request)
    n = tries(20)
    _dirs(tmp, n)
    name = "worker SIGKILL in 10,000-position storms, market goes on"
    found = await run(tmp, name, n, 10_000, True)
    assert found.clean, (seed(), found)


@pytest.mark.faults
async def test_worker_killed_20_times_in_10000_position_storms_with_no_new_trade(
    request: pytest.FixtureRequest,
    tmp: Path,
) -> None:
    """Twenty seeded SIGKILLs of 10,000-position storms, no trade after the restart: the
    restarted worker closes every crossed stop on its own."""
    long_run(request)
    n = tries(20)
    _dirs(tmp, n)
    name = "worker SIGKILL in 10,000-position storms, no new trade"
    found = await run(tmp, name, n, 10_000, False)
    assert found.clean, (seed(), found)
