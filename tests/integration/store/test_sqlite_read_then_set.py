"""A document read in a SQLite transaction and set again is written as an UPDATE of the
changed columns only: its typed columns must still follow the document exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cogmora.store import queries as q
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

PATH = "users/u1/openPositions/p1"
DOC = {
    "uid": "u1",
    "symbol": "BTC-USDT",
    "openedAt": "2026-01-01T00:00:00Z",
    "details": {"status": "open"},
}


def _row(db: Path) -> tuple[object, ...]:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            'SELECT f_details_status, f_symbol, f_uid, f_openedAt FROM "openPositions" '
            "WHERE path = ?",
            (PATH,),
        ).fetchone()
    finally:
        conn.close()
    return tuple(row)


async def test_read_then_set_moves_the_changed_columns_and_keeps_the_rest(tmp_path: Path) -> None:
    """Status changed by a read-modify-write: the status column and index follow, the
    unchanged columns stay, and the status query finds the document in its new status."""
    store = SqliteStore(tmp_path / "s.db")
    await store.start()
    try:
        await store.transact(lambda tx: tx.set(PATH, DOC))

        def close(tx: Tx) -> None:
            doc = tx.get_many([PATH])[0]
            assert doc is not None
            tx.set(PATH, {**doc, "details": {"status": "closed"}, "symbol": "ETH-USDT"})

        await store.transact(close)
        assert _row(tmp_path / "s.db") == ("closed", "ETH-USDT", "u1", "2026-01-01T00:00:00Z")
        closed = await store.read(lambda tx: tx.query(q.positions_with_status("closed")))
        assert [p for p, _ in closed] == [PATH]
        assert await store.read(lambda tx: tx.query(q.positions_with_status("open"))) == []
    finally:
        await store.close()


async def test_a_compare_and_set_between_read_and_set_is_not_lost(tmp_path: Path) -> None:
    """Read (open), compare-and-set to closing, then set back to open: the columns say open,
    as the document does (the read's columns are stale after the compare-and-set)."""
    store = SqliteStore(tmp_path / "s.db")
    await store.start()
    try:
        await store.transact(lambda tx: tx.set(PATH, DOC))

        def body(tx: Tx) -> None:
            doc = tx.get(PATH)
            assert doc is not None
            taken = tx.compare_and_set(
                [PATH], {"details.status": "open"}, {"details.status": "closing"}
            )
            assert taken == [PATH]
            tx.set(PATH, doc)

        await store.transact(body)
        assert _row(tmp_path / "s.db")[0] == "open"
        found = await store.read(lambda tx: tx.query(q.positions_with_status("open")))
        assert [p for p, _ in found] == [PATH]
    finally:
        await store.close()


async def test_read_then_delete_then_create_replaces_the_document(tmp_path: Path) -> None:
    """Deleted and created again in one transaction after a read: one row, the new one."""
    store = SqliteStore(tmp_path / "s.db")
    await store.start()
    try:
        await store.transact(lambda tx: tx.set(PATH, DOC))

        def body(tx: Tx) -> None:
            assert tx.get(PATH) is not None
            tx.delete(PATH)
            tx.create(PATH, {**DOC, "details": {"status": "closing"}})

        await store.transact(body)
        assert _row(tmp_path / "s.db")[0] == "closing"
    finally:
        await store.close()
