"""A SQLite file made under the previous index declarations opens with the current ones:
changed indexes rebuilt, dropped ones gone, the stored documents found by every query."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cogmora.store import queries as q
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore
from cogmora.store.sqlite.tx import DIALECT

# The indexes the code before partial ranges and backward-read merging made.
OLD_INDEXES = (
    'CREATE INDEX "ix_expiring_positions" ON "openPositions" (f_details_status, f_expiresAt)',
    'CREATE INDEX "ix_user_history_since" ON "positionHistory" (parent, f_closedAt)',
    'CREATE INDEX "ix_user_ledger" ON "ledger" (parent, f_seq)',
)


def _indexes(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix!_%' "
            "ESCAPE '!'"
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


async def test_a_file_with_the_old_indexes_opens_with_the_new_ones(tmp_path: Path) -> None:
    """Old full indexes are replaced by the partial ones, the merged one is dropped, and the
    registered queries answer as before, from the documents written by the old layout."""
    db = tmp_path / "old.db"
    store = SqliteStore(db)
    await store.start()
    uid = "u1"
    expiring = f"users/{uid}/openPositions/p1"

    def put(tx: Tx) -> None:
        tx.set(f"users/{uid}", {"uid": uid, "balance": "1", "ledgerSeq": 1})
        tx.set(
            expiring,
            {
                "uid": uid,
                "symbol": "BTC-USDT",
                "openedAt": "2026-01-01T00:00:00Z",
                "expiresAt": "2026-01-02T00:00:00Z",
                "details": {"status": "open"},
            },
        )
        tx.set(
            f"users/{uid}/openPositions/p2",
            {
                "uid": uid,
                "symbol": "BTC-USDT",
                "openedAt": "2026-01-01T00:00:01Z",
                "details": {"status": "open"},
            },
        )
        tx.set(f"users/{uid}/positionHistory/h1", {"closedAt": "2026-01-03T00:00:00Z"})
        tx.set(f"users/{uid}/ledger/l1", {"uid": uid, "seq": 1})

    await store.transact(put)
    await store.close()
    conn = sqlite3.connect(db)
    for ddl in OLD_INDEXES:
        conn.execute(f'DROP INDEX IF EXISTS "{ddl.split(chr(34))[1]}"')
        conn.execute(ddl)
    conn.commit()
    conn.close()
    assert "ix_user_history_since" in _indexes(db)

    store = SqliteStore(db)
    await store.start()
    try:
        have = _indexes(db)
        wanted = {
            d.split('"')[1]: d.replace("CREATE INDEX IF NOT EXISTS", "CREATE INDEX")
            for g in ("openPositions", "positionHistory", "ledger")
            for d in DIALECT.create_indexes(g)
        }
        for name, sql in wanted.items():
            assert have[name] == sql, name
        assert "ix_user_history_since" not in have
        assert have["ix_expiring_positions"].endswith("WHERE f_expiresAt IS NOT NULL")

        def read(tx: Tx) -> dict[str, list[str]]:
            due = (
                q.Query("openPositions")
                .where("details.status", "==", "open")
                .where("expiresAt", "<=", "2026-06-01T00:00:00Z")
                .order_by("expiresAt", "asc")
            )
            since = (
                q.Query("positionHistory", parent=f"users/{uid}")
                .where("closedAt", ">=", "2026-01-01T00:00:00Z")
                .order_by("closedAt", "asc")
            )
            ledger = q.Query("ledger", parent=f"users/{uid}").where("seq", ">", 0).order_by("seq")
            return {
                "due": [p for p, _ in tx.query(due)],
                "open": [p for p, _ in tx.query(q.open_positions("BTC-USDT"))],
                "since": [p for p, _ in tx.query(since)],
                "ledger": [p for p, _ in tx.query(ledger)],
            }

        found = await store.read(read)
        assert found["due"] == [expiring]
        assert sorted(found["open"]) == [expiring, f"users/{uid}/openPositions/p2"]
        assert found["since"] == [f"users/{uid}/positionHistory/h1"]
        assert found["ledger"] == [f"users/{uid}/ledger/l1"]
    finally:
        await store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
