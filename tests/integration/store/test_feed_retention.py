"""The change feed's retention rule on a real SQLite file: the latest N and the young stay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cogmora.errors import FeedResync
from cogmora.store.port import Tx
from cogmora.store.retention import FeedPruner, Retention
from cogmora.store.sqlite import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _write(store: SqliteStore, n: int) -> int:
    def body(tx: Tx) -> None:
        for i in range(n):
            tx.set(f"users/u{i}", {"i": i})

    await store.transact(body)
    return await store.head()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "feed.db", retention=None)
    await s.start()
    yield s
    await s.close()


async def _count(store: SqliteStore) -> int:
    return int(
        await store.read(lambda tx: tx._conn.execute("SELECT COUNT(*) FROM _changes").fetchone()[0])
    )


async def test_nothing_younger_than_min_age_is_pruned_however_many(store: SqliteStore) -> None:
    """Changes younger than min_age stay even when they are far more than `keep`."""
    clock = Clock()
    pruner = FeedPruner(store, Retention(keep=10, min_age=60.0, batch=7), clock)
    await _write(store, 500)
    assert await pruner.run_once() == 0
    clock.now += 59.0
    assert await pruner.run_once() == 0
    assert await _count(store) == 500


async def test_old_changes_beyond_keep_are_pruned_in_batches(store: SqliteStore) -> None:
    """Once the changes are older than min_age, all but the latest `keep` go (in batches of
    `batch` rows), and a cursor below them gets FeedResync."""
    clock = Clock()
    pruner = FeedPruner(store, Retention(keep=10, min_age=60.0, batch=7), clock)
    old_head = await _write(store, 100)
    await pruner.run_once()  # marks head 100 at t=1000
    clock.now += 60.0
    head = await _write(store, 5)  # young: 5 more, after the mark
    assert await pruner.run_once() == 95  # through min(head - keep, the aged mark 100)
    assert await _count(store) == 10
    with pytest.raises(FeedResync):
        await store.changes(old_head - 20)
    assert len(await store.changes(head - 10)) == 10


async def test_keep_bounds_pruning_of_old_changes(store: SqliteStore) -> None:
    """Old changes within the latest `keep` stay."""
    clock = Clock()
    pruner = FeedPruner(store, Retention(keep=80, min_age=1.0), clock)
    head = await _write(store, 100)
    await pruner.run_once()
    clock.now += 5.0
    assert await pruner.run_once() == 20
    assert await _count(store) == 80
    assert len(await store.changes(head - 80, limit=1000)) == 80


async def test_a_store_prunes_its_own_feed_on_schedule(tmp_path: Path) -> None:
    """A store opened with a retention rule runs it by itself, with no caller."""
    store = SqliteStore(tmp_path / "own.db", retention=Retention(keep=5, min_age=0.0, period=0.05))
    await store.start()
    try:
        head = await _write(store, 50)
        pruner = store.pruner
        assert pruner is not None
        deadline = asyncio.get_running_loop().time() + 30
        while await _count(store) > 5:
            assert asyncio.get_running_loop().time() < deadline, "the store never pruned"
            await asyncio.sleep(0.05)
        assert pruner.pruned == 45 and await store.head() == head
    finally:
        await store.close()
