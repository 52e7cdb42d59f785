"""The SQLite compare-and-set's change-feed rows, copied inside the database: each names
its owner however deep the path, and the feed's group filter needs no (grp, seq) index."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

OPEN = {"details": {"status": "open", "stopLoss": "1"}}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "cas_feed.db", retention=None)
    await s.start()
    yield s
    await s.close()


async def _close_all(store: SqliteStore, paths: list[str]) -> int:
    def seed(tx: Tx) -> None:
        for p in paths:
            tx.set(p, OPEN)

    await store.transact(seed)
    head = await store.head()
    taken = await store.transact(
        lambda tx: tx.compare_and_set(
            paths, {"details.status": "open"}, {"details.status": "closing"}
        )
    )
    assert sorted(taken) == sorted(paths)
    return head


async def test_a_compare_and_set_feeds_each_change_with_its_owner_and_document(
    store: SqliteStore,
) -> None:
    """Rows of users' own subcollections: each change has the owner's uid (the per-user
    filter finds it) and the document as the compare-and-set left it."""
    paths = [f"users/u{i % 3}/openPositions/p{i}" for i in range(7)]
    head = await _close_all(store, paths)
    got = await store.changes(head, limit=100)
    assert sorted((c.uid, c.path) for c in got) == sorted((p.split("/")[1], p) for p in paths)
    assert {c.doc["details"]["status"] for c in got if c.doc} == {"closing"}
    mine = await store.changes(head, uid="u1", limit=100)
    assert sorted(c.path for c in mine) == sorted(p for p in paths if p.startswith("users/u1/"))


async def test_a_compare_and_set_under_deeper_or_foreign_parents_names_the_same_owners(
    store: SqliteStore,
) -> None:
    """A path below a user's subdocument names that user, one outside `users/` none, also
    when they share one compare-and-set with a user's own paths."""
    paths = [
        "users/u1/openPositions/a",
        "users/u2/agent/x/openPositions/b",
        "desks/d1/openPositions/c",
    ]
    head = await _close_all(store, paths)
    got = await store.changes(head, limit=100)
    assert {c.path: c.uid for c in got} == {
        "users/u1/openPositions/a": "u1",
        "users/u2/agent/x/openPositions/b": "u2",
        "desks/d1/openPositions/c": None,
    }


async def test_the_group_filter_reads_in_seq_order_without_a_group_index(tmp_path: Path) -> None:
    """A file that still has the old (grp, seq) index loses it on open, and a two-group
    filter returns exactly its groups' changes in seq order, up to the limit."""
    first = SqliteStore(tmp_path / "cas_feed.db", retention=None)
    await first.start()
    await first.close()
    conn = sqlite3.connect(tmp_path / "cas_feed.db")
    conn.execute("CREATE INDEX IF NOT EXISTS ix_changes_grp ON _changes (grp, seq)")
    conn.commit()
    conn.close()
    reopened = SqliteStore(tmp_path / "cas_feed.db", retention=None)
    await reopened.start()
    try:
        names = await reopened.read(
            lambda tx: [
                r[0]
                for r in tx._conn.execute(
                    "SELECT name FROM sqlite_master WHERE tbl_name = '_changes'"
                )
            ]
        )
        assert "ix_changes_grp" not in names and "ix_changes_uid" in names

        def body(tx: Tx) -> None:
            for i in range(6):
                tx.set(f"users/u/{('openPositions', 'ledger', 'tradeTriggers')[i % 3]}/d{i}", OPEN)

        start = await reopened.head()
        await reopened.transact(body)
        got = await reopened.changes(
            start, groups=frozenset({"openPositions", "tradeTriggers"}), limit=3
        )
        assert [c.seq for c in got] == sorted(c.seq for c in got)
        assert [c.path.rsplit("/", 1)[1] for c in got] == ["d0", "d2", "d3"]
    finally:
        await reopened.close()
