"""PostgreSQL backends of a `cogmora worker` killed with `pg_terminate_backend` in the
middle of their transactions while a stop-loss storm commits and settles: the worker and
its close handler reconnect and retry, and in the end every crossed stop is closed exactly
once, nothing else closes, nothing is left `closing`, every ledger sums.

Only this worker's connections are touched (they carry an `application_name` of their
own), never those of other tests sharing the server. A kill waits for one of them to be
inside a statement or transaction (`state <> 'idle'`), so each lands mid-transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from faultkit import (
    STORM_PRICE,
    SYMBOL,
    Figure,
    Findings,
    Stopwatch,
    Storm,
    audit,
    fresh_dir,
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
from cogmora.store.postgres import PostgresStore
from conditions import until

PG = os.environ.get("COGMORA_TEST_PG", "postgresql://127.0.0.1:5432/test")
USERS = 50
pytestmark = pytest.mark.postgres


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    try:
        with psycopg.connect(PG, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG}: {exc}")
    name = f"faults_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(PG, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{name}%",)
        ).fetchall()
        for (each,) in rows:  # one schema per try: NAME_0, NAME_1, ...
            conn.execute(f'DROP SCHEMA IF EXISTS "{each}" CASCADE')


def terminate_one_busy(app: str) -> int:
    """Terminate this worker's backends that are inside a statement or a transaction."""
    with psycopg.connect(PG, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND state <> 'idle' AND pid <> pg_backend_pid()",
            (app,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


async def terminator(app: str, kills: int, rng: random.Random, done: list[int]) -> None:
    """`kills` mid-transaction terminations, at seeded pauses between them."""
    while done[0] < kills:
        hit = await asyncio.to_thread(terminate_one_busy, app)
        if hit:
            done[0] += hit
            await asyncio.sleep(rng.uniform(0.05, 0.5))
        else:
            await asyncio.sleep(0.005)  # poll for a busy backend; the kill is what matters


async def market(sim: KucoinSimulator) -> None:
    """The storm's price keeps trading, once a second (the market goes on)."""
    while True:
        await sim.set_price(SYMBOL, STORM_PRICE)
        await asyncio.sleep(1.0)


async def _settled(store: PostgresStore, storm: Storm) -> bool:
    not_open, closed = await progress(store)  # type: ignore[arg-type]
    return closed >= len(storm.crossed) and not_open == closed


async def one_try(
    tmp: Path, rng: random.Random, schema: str, positions: int, kills: int
) -> tuple[Findings, str]:
    fresh_dir(tmp)
    app = f"cogmora_{schema}"
    store = PostgresStore(f"{PG}?schema={schema}")
    await store.start()
    storm = await seed_storm(store, positions, USERS, rng)
    sim = KucoinSimulator(SimulatorConfig(tick_rate=0, mark_rate=0, seed=rng.randrange(1 << 30)))
    await sim.start()
    env = process_env(f"{PG}?schema={schema}&application_name={app}", sim)
    done = [0]
    worker = await start(["worker"], env, tmp / "worker.log")
    tasks: list[asyncio.Task[None]] = []
    where = ""
    try:
        await until(
            lambda: f"/market/ticker:{SYMBOL}" in sim.subscribed_topics(), what="subscribed"
        )
        tasks = [
            asyncio.create_task(terminator(app, kills, rng, done)),
            asyncio.create_task(market(sim)),
        ]
        try:
            await until(lambda: _settled(store, storm), 600, "storm settled")
            await until(lambda: tasks[0].done(), 120, f"{kills} terminations")
        except AssertionError as exc:
            where = f"; {exc}"
        return await audit(store, storm), f"{done[0]} backends terminated{where}"
    finally:
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await stop(worker)
        await sim.stop()
        await store.close()


async def run(tmp: Path, schema: str, n: int, positions: int, kills: int) -> Findings:
    rng = random.Random(seed())
    total = Findings()
    watch = Stopwatch()
    notes = []
    for i in range(n):
        found, where = await one_try(tmp / f"try{i}", rng, f"{schema}_{i}", positions, kills)
        notes.append(where)
        total.add(found)
    record(
        Figure(
            "PostgreSQL backends terminated mid-transaction during a storm",
            n,
            total.lost,
            total.doubled,
            total.contradictory + total.closing_left,
            seed(),
            watch.seconds,
            f"{positions} positions; {'; '.join(notes[:3])}...",
        )
    )
    return total


@pytest.mark.slow
async def test_pg_backends_killed_mid_transaction_lose_and_double_nothing(
    tmp_path: Path, schema: str
) -> None:
    """Ten seeded mid-transaction backend kills during a 1,000-position storm: every
    crossed stop closes once and every ledger sums."""
    found = await run(tmp_path, schema, 1, 1000, 10)
    assert found.clean, (seed(), found)


@pytest.mark.faults
async def test_pg_backends_killed_mid_transaction_in_10000_position_storms(
    request: pytest.FixtureRequest, tmp_path: Path, schema: str
) -> None:
    """Forty seeded backend kills in each of several 10,000-position storms: nothing lost,
    doubled or contradictory."""
    long_run(request)
    found = await run(tmp_path, schema, tries(5), 10_000, 40)
    assert found.clean, (seed(), found)
