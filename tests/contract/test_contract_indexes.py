"""The SQL backends serve every registered query from its index, per the planners themselves.

SQLite: EXPLAIN QUERY PLAN must SEARCH with an index and never sort in a temporary
B-tree. PostgreSQL: with sequential scans disabled (an empty table would otherwise be
scanned, rightly) and the table's other indexes (so that an empty table's guesses do not
pick a sibling), EXPLAIN must show the spec's own index and no Sort.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cogmora.store import queries as q
from cogmora.store.postgres import PostgresStore
from cogmora.store.postgres import sql as pg_sql
from cogmora.store.queries import REGISTRY, QuerySpec
from cogmora.store.sqlite import SqliteStore
from cogmora.store.sqlite.tx import DIALECT

INDEXED = [s for s in REGISTRY if s.scope == "collection" or s.index_fields()]


def _columns(spec: QuerySpec) -> tuple[tuple[str, str], ...]:
    parent = (("parent", "asc"),) if spec.scope == "collection" else ()
    return parent + spec.index_fields()


def serving(spec: QuerySpec) -> set[str]:
    """Index names that serve `spec`: its own, and any whose columns begin with its own,
    equality columns in any direction, the ordered ones all the same way or all reversed
    (a B-tree reads backwards as well as forwards)."""
    mine = _columns(spec)
    fixed = len(mine) - len([f for f, _ in spec.index_fields() if f not in spec.equals])

    def serves(other: QuerySpec) -> bool:
        theirs = _columns(other)[: len(mine)]
        if [f for f, _ in theirs] != [f for f, _ in mine]:
            return False
        flips = {a != b for (_, a), (_, b) in zip(theirs[fixed:], mine[fixed:], strict=True)}
        return len(flips) <= 1

    return {f"ix_{s.name}" for s in REGISTRY if s.group == spec.group and serves(s)}


def sample_query(spec: QuerySpec) -> q.Query:
    query = q.Query(spec.group, parent="users/u1" if spec.scope == "collection" else None)
    for f in spec.equals:
        query = query.where(f, "==", True if f == "enabled" else "x")
    if spec.range is not None:
        query = query.where(spec.range, "<=", 5 if spec.range == "seq" else "2024")
    for f, d in spec.order:
        query = query.order_by(f, d)
    return query.limited(50)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[sqlite3.Connection]:
    store = SqliteStore(tmp_path / "plan.db")
    await store.start()
    await store.close()
    conn = sqlite3.connect(tmp_path / "plan.db")
    yield conn
    conn.close()


@pytest.mark.parametrize("spec", INDEXED, ids=[s.name for s in INDEXED])
def test_sqlite_serves_each_registered_query_from_an_index(
    sqlite_db: sqlite3.Connection, spec: QuerySpec
) -> None:
    """SQLite searches an index that serves the spec and needs no sort for its order."""
    sql, params = DIALECT.select(sample_query(spec))
    plan = [row[3] for row in sqlite_db.execute("EXPLAIN QUERY PLAN " + sql, params)]
    text = " | ".join(plan)
    assert any(p.startswith("SEARCH") and "INDEX" in p for p in plan), text
    assert "TEMP B-TREE" not in text, text
    used = {m.group(1) for p in plan if (m := re.search(r"USING (?:COVERING )?INDEX (\S+)", p))}
    assert used & serving(spec), text


@pytest.fixture(scope="module")
def pg_schema(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    url = request.getfixturevalue("pg_url")
    schema = f"plan_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        store = PostgresStore(f"{url}?schema={schema}", pool_size=1)
        await store.start()
        await store.close()

    asyncio.run(create())
    yield url, schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


@pytest.mark.postgres
@pytest.mark.parametrize("spec", INDEXED, ids=[s.name for s in INDEXED])
def test_postgres_can_serve_each_registered_query_from_its_index(
    pg_schema: tuple[str, str], spec: QuerySpec
) -> None:
    """PostgreSQL, kept off sequential scans and other indexes, answers the query with the
    index made for the spec (its own, or the longer one it leads) and without sorting."""
    url, schema = pg_schema
    own = DIALECT.index_serving(spec)
    sql, params = pg_sql.select(sample_query(spec))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'SET search_path = "{schema}"')
        conn.execute("BEGIN")
        # DDL is transactional: drop the table's other indexes for this one EXPLAIN, so the
        # plan shows what this spec's own index can do, then roll the drops back.
        others = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
            "AND indexname LIKE 'ix\\_%%' AND indexname <> %s",
            (schema, spec.group, own),
        ).fetchall()
        for (name,) in others:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
        conn.execute("ROLLBACK")
    assert row is not None
    raw = row[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes = _nodes(plan)
    text = json.dumps(plan)
    assert any(n.get("Index Name") == own for n in nodes), text
    assert not any(n["Node Type"] in ("Sort", "Incremental Sort", "Seq Scan") for n in nodes), text
