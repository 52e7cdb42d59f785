"""A new SQLite file is made with the store's page size; a file made before, at SQLite's
default, keeps its own and works as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore
from cogmora.store.sqlite.store import PAGE_SIZE


def _page_size(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def _put(tx: Tx) -> None:
    tx.set("users/u1", {"uid": "u1", "balance": "1", "ledgerSeq": 1})


async def test_a_new_file_gets_the_stores_page_size(tmp_path: Path) -> None:
    """The page size is set before the first table, so the file is made with it."""
    db = tmp_path / "new.db"
    store = SqliteStore(db)
    await store.start()
    await store.transact(_put)
    await store.close()
    assert PAGE_SIZE != 4096
    assert _page_size(db) == PAGE_SIZE


async def test_a_file_made_at_the_default_page_size_keeps_it_and_its_documents(
    tmp_path: Path,
) -> None:
    """A WAL file cannot change its page size; opening it neither fails nor loses data."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE made_before (x)")
    conn.close()
    store = SqliteStore(db)
    await store.start()
    await store.transact(_put)
    await store.close()

    reopened = SqliteStore(db)
    await reopened.start()
    doc = await reopened.read(lambda tx: tx.get("users/u1"))
    await reopened.close()
    assert _page_size(db) == 4096
    assert doc == {"uid": "u1", "balance": "1", "ledgerSeq": 1}
