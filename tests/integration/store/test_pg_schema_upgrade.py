"""A PostgreSQL schema made before a query was declared gains that query's column and
index on the next start, filled from the documents already stored."""

from __future__ import annotations

import psycopg

from cogmora.store import queries as q
from cogmora.store.port import Tx
from cogmora.store.postgres import PostgresStore


async def test_a_column_declared_since_the_table_was_made_is_added_and_backfilled(
    pg_schema_url: str,
) -> None:
    """Drop the typed column of `expiresAt` (a table from before time limits), start a
    store again: the column is back with the stored value, its index exists, and the
    registered query finds the old document."""
    schema = pg_schema_url.rsplit("schema=", 1)[1]
    first = PostgresStore(pg_schema_url, pool_size=1)
    await first.start()
    path = "users/u1/openPositions/p1"
    doc = {
        "uid": "u1",
        "symbol": "BTC-USDT",
        "expiresAt": "2026-01-01T00:00:00Z",
        "details": {"status": "open"},
    }

    def put(tx: Tx) -> None:
        tx.set(path, doc)

    await first.transact(put)
    await first.close()
    base = pg_schema_url.split("?", 1)[0]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{schema}"."openPositions" DROP COLUMN f_expiresAt')

    second = PostgresStore(pg_schema_url, pool_size=1)
    await second.start()
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            value = conn.execute(
                f'SELECT f_expiresAt FROM "{schema}"."openPositions"'
            ).fetchone()
            index = conn.execute(
                "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
                (schema, "ix_expiring_positions"),
            ).fetchone()
        assert value == ("2026-01-01T00:00:00Z",)
        assert index is not None

        def due(tx: Tx) -> list[str]:
            query = (
                q.Query("openPositions")
                .where("details.status", "==", "open")
                .where("expiresAt", "<=", "2026-06-01T00:00:00Z")
                .order_by("expiresAt", "asc")
            )
            return [p for p, _ in tx.query(query)]

        assert await second.read(due) == [path]
    finally:
        await second.close()
