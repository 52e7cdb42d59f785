"""Several replicas on one PostgreSQL: the races the worker, close handler and API run in
production, with separate stores and pools (and, once, separate processes)."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from pg_replicas import check_books, race, replica_main, seed

from cogmora.errors import Temporary
from cogmora.store.port import Tx
from cogmora.store.postgres import PostgresStore
from feed_follower import follow_until

pytestmark = pytest.mark.postgres


@pytest.fixture
async def replicas(pg_schema_url: str) -> AsyncIterator[list[PostgresStore]]:
    stores = [PostgresStore(pg_schema_url, pool_size=2) for _ in range(4)]
    await asyncio.gather(*(s.start() for s in stores))  # DDL raced too
    yield stores
    for s in stores:
        await s.close()


async def test_four_replicas_close_and_settle_each_position_exactly_once(
    replicas: list[PostgresStore],
) -> None:
    """Four replicas racing to compare-and-set the same 1,000 positions and to settle them:
    each position is won by one replica, closed once, credited once; ledgers balance."""
    seeded = await seed(replicas[0], users=40, per_user=25)
    won = await asyncio.gather(*(race(s, seeded.positions, i) for i, s in enumerate(replicas)))
    all_won = [pid for w in won for pid in w]
    assert sorted(all_won) == sorted(pid for _, pid in seeded.positions)
    assert sum(s.retried for s in replicas) > 0  # the replicas really did collide
    await check_books(replicas[1], seeded)


async def test_replicas_in_separate_processes_close_each_position_once(pg_schema_url: str) -> None:
    """Three OS processes racing over the same 300 positions: each closed exactly once."""
    store = PostgresStore(pg_schema_url, pool_size=2)
    await store.start()
    try:
        seeded = await seed(store, users=10, per_user=30)
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
            won = await asyncio.gather(
                *(
                    loop.run_in_executor(pool, replica_main, pg_schema_url, seeded.positions, i)
                    for i in range(3)
                )
            )
        assert sorted(p for w in won for p in w) == sorted(pid for _, pid in seeded.positions)
        await check_books(store, seeded)
    finally:
        await store.close()


async def test_a_follower_on_one_replica_sees_every_change_of_the_others_once(
    replicas: list[PostgresStore],
) -> None:
    """A follower on one replica, reading the feed from its cursor while three others
    commit concurrently, sees every change exactly once and in seq order."""
    follower, *writers = replicas
    start = await follower.head()
    done = asyncio.Event()

    async def write(store: PostgresStore, w: int) -> None:
        for i in range(40):
            path = f"users/w{w}/openPositions/p{i}"
            await store.transact(lambda tx, p=path, i=i: tx.set(p, {"i": i}))

    task = asyncio.create_task(follow_until(follower, start, done))
    await asyncio.gather(*(write(s, w) for w, s in enumerate(writers)))
    done.set()
    seen = await task
    full = await follower.changes(start, limit=10_000)
    assert len(full) == 3 * 40
    assert [c.seq for c in seen] == [c.seq for c in full]


async def test_running_out_of_retries_is_temporary(pg_schema_url: str) -> None:
    """A body that keeps losing the serialization race past its retries raises Temporary,
    and the winner's write stands."""
    store = PostgresStore(pg_schema_url, pool_size=2, retries=1)
    await store.start()
    try:
        await store.transact(lambda tx: tx.set("users/u1", {"n": 0}))
        barrier = threading.Barrier(2, timeout=5)

        def bump(tx: Tx) -> Any:
            doc = tx.get("users/u1")
            assert doc is not None
            barrier.wait()
            tx.set("users/u1", {"n": doc["n"] + 1})

        results = await asyncio.gather(
            store.transact(bump), store.transact(bump), return_exceptions=True
        )
        assert sorted(type(r).__name__ for r in results) == ["NoneType", "Temporary"]
        assert isinstance(next(r for r in results if r is not None), Temporary)
        assert await store.read(lambda tx: tx.get("users/u1")) == {"n": 1}
    finally:
        await store.close()
