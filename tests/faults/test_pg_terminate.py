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
import random
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import faultkit as kit
import psycopg
import pytest

from cogmora.simulator import KucoinSimulator
from cogmora.store.postgres import PostgresStore
from conditions import until

USERS = 50
pytestmark = pytest.mark.postgres


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    """A name for this test's schemas (one per try: NAME_try0, NAME_try1, ...), all dropped
    after."""
    name = f"faults_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{name}%",)
        ).fetchall()
        for (each,) in rows:
            conn.execute(f'DROP SCHEMA IF EXISTS "{each}" CASCADE')


def terminate_one_busy(pg_url: str, app: str) -> int:
    """Terminate this worker's backends that are inside a statement or a transaction."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND state <> 'idle' AND pid <> pg_backend_pid()",
            (app,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


async def terminator(
    pg_url: str, app: str, kills: int, rng: random.Random, done: list[int]
) -> None:
    """`kills` mid-transaction terminations, at seeded pauses between them."""
    while done[0] < kills:
        hit = await asyncio.to_thread(terminate_one_busy, pg_url, app)
        if hit:
            done[0] += hit
            await asyncio.sleep(rng.uniform(0.05, 0.5))
        else:
            await asyncio.sleep(0.005)  # poll for a busy backend; the kill is what matters


async def market(sim: KucoinSimulator) -> None:
    """The storm's price keeps trading, once a second (the market goes on)."""
    while True:
        await sim.set_price(kit.SYMBOL, kit.STORM_PRICE)
        await asyncio.sleep(1.0)


async def one_try(
    pg_url: str, schema: str, positions: int, kills: int, tmp: Path, rng: random.Random
) -> tuple[kit.Findings, str]:
    schema = f"{schema}_{tmp.name}"
    app = f"cogmora_{schema}"
    store = PostgresStore(f"{pg_url}?schema={schema}")
    await store.start()
    try:
        storm = await kit.seed_storm(store, positions, USERS, rng)
        async with KucoinSimulator(kit.quiet_market(rng)) as sim:
            env = kit.process_env(f"{pg_url}?schema={schema}&application_name={app}", sim)
            done = [0]
            async with kit.running(["worker"], env, tmp / "worker.log"):
                await until(lambda: kit.subscribed(sim), what="subscribed")
                tasks = [
                    asyncio.create_task(terminator(pg_url, app, kills, rng, done)),
                    asyncio.create_task(market(sim)),
                ]
                where = ""
                try:
                    await until(lambda: kit.settled(store, storm), 600, "storm settled")
                    await until(lambda: tasks[0].done(), 120, f"{kills} terminations")
                except AssertionError as exc:
                    where = f"; {exc}"
                finally:
                    for t in tasks:
                        t.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await t
                return await kit.audit(store, storm), f"{done[0]} backends terminated{where}"
    finally:
        await store.close()


FAULT = "PostgreSQL backends terminated mid-transaction during a storm"


@pytest.mark.slow
async def test_pg_backends_killed_mid_transaction_lose_and_double_nothing(
    tmp_path: Path, pg_url: str, schema: str
) -> None:
    """Ten seeded mid-transaction backend kills during a 1,000-position storm: every
    crossed stop closes once and every ledger sums."""
    one = partial(one_try, pg_url, schema, 1000, 10)
    found = await kit.run_tries(FAULT, 1, tmp_path, one, "1000 positions")
    assert found.clean, (kit.seed(), found)


@pytest.mark.faults
async def test_pg_backends_killed_mid_transaction_in_10000_position_storms(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str, schema: str
) -> None:
    """Forty seeded backend kills in each of several 10,000-position storms: nothing lost,
    doubled or contradictory."""
    kit.long_run(request)
    one = partial(one_try, pg_url, schema, 10_000, 40)
    found = await kit.run_tries(FAULT, kit.tries(5), tmp_path, one, "10000 positions")
    assert found.clean, (kit.seed(), found)
