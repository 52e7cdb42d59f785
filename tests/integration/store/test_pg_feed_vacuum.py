"""The PostgreSQL change feed stays bounded in bytes, not only in rows, on a server whose
autovacuum is off (this test server's is): the pruning job VACUUMs the feed's table after
a large prune, at most once per interval."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from cogmora.store.port import Tx
from cogmora.store.postgres.store import FeedVacuum, PostgresStore
from cogmora.store.retention import Retention

pytestmark = pytest.mark.postgres

ROUNDS, PER_ROUND, KEEP = 16, 3_000, 1_000
# The job's own rule, but watched for an hour: only the passes the test runs prune.
RETENTION = Retention(keep=KEEP, min_age=0.0, period=3600.0, batch=1_000)


@asynccontextmanager
async def opened(url: str, vacuum: FeedVacuum | None) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(url, retention=RETENTION, vacuum=vacuum)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def _writes(start: int, n: int) -> Callable[[Tx], None]:
    def body(tx: Tx) -> None:
        for i in range(start, start + n):
            tx.set(f"users/u{i % 500}", {"i": i, "pad": "x" * 64})

    return body


async def _heap_bytes(store: PostgresStore) -> int:
    def body(tx: Tx) -> int:
        row = tx._conn.execute("SELECT pg_relation_size('_changes')").fetchone()
        return int(row[0])

    return await store.read(body)


async def _soak(store: PostgresStore) -> list[int]:
    """ROUNDS rounds of PER_ROUND changes, each followed by one pass of the store's own
    pruning job; the feed table's heap size after each pass."""
    sizes = []
    written = 0
    for _ in range(ROUNDS):
        for _ in range(PER_ROUND // 500):
            await store.transact(_writes(written, 500))
            written += 500
        pruner = store.pruner
        assert pruner is not None
        await pruner.run_once()
        sizes.append(await _heap_bytes(store))
    return sizes


async def test_the_pruned_feed_stays_flat_in_bytes_without_autovacuum(
    pg_schema_url: str,
) -> None:
    """With the job's VACUUM the table's heap stops growing after the first rounds (the
    space of pruned rows is reused); without it, on the same server, it grows by every
    change ever pruned."""
    async with opened(pg_schema_url, FeedVacuum(after_rows=1_000, every=0.0)) as store:
        sizes = await _soak(store)
        assert store.vacuums == ROUNDS
    # Flat: the end is no bigger than a table holding one round plus what is kept, which
    # it reached in the second round (one page of slack for where the rows fell).
    assert sizes[-1] <= sizes[1] + 8192, sizes
    assert max(sizes[2:]) <= sizes[1] + 8192, sizes

    unvacuumed = pg_schema_url.replace("?schema=", "?schema=nv_")
    async with opened(unvacuumed, None) as store:
        grown = await _soak(store)
        assert store.vacuums == 0
    try:
        assert grown[-1] > 4 * sizes[-1], (grown, sizes)
    finally:
        await _drop(pg_schema_url, unvacuumed)


async def _drop(admin_url: str, url: str) -> None:
    import psycopg

    schema = url.rsplit("?schema=", 1)[1]
    with psycopg.connect(admin_url.split("?", 1)[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_the_vacuum_waits_for_enough_pruned_rows_and_its_interval(
    pg_schema_url: str,
) -> None:
    """Small prunes add up to one VACUUM; a second large prune within the interval waits
    (its rows are VACUUMed by the first due pass after it)."""
    async with opened(pg_schema_url, FeedVacuum(after_rows=2_500, every=3600.0)) as store:
        pruner = store.pruner
        assert pruner is not None
        for start in range(0, KEEP + 1_000, 500):  # one change per document per transaction
            await store.transact(_writes(start, 500))
        assert await pruner.run_once() == 1_000
        assert store.vacuums == 0  # 1,000 pruned rows: not worth a VACUUM yet
        for start in range(0, 2_000, 500):
            await store.transact(_writes(start, 500))
        assert await pruner.run_once() == 2_000
        assert store.vacuums == 1  # 3,000 now
        for start in range(0, 3_000, 500):
            await store.transact(_writes(start, 500))
        assert await pruner.run_once() == 3_000
        assert store.vacuums == 1  # within the hour: later
