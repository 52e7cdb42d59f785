"""The query registry: every declared query runs on an index; anything else is refused."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cogmora.domain.timeutil import to_iso
from cogmora.errors import FailedPrecondition
from cogmora.store import queries as q
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore
from cogmora.store.sqlite.tx import DIALECT

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def query_for(spec: q.QuerySpec) -> q.Query:
    """A query of exactly `spec`'s shape, with arbitrary values."""
    query = q.Query(spec.group, parent=None if spec.scope == "collection_group" else "users/u1")
    for f in spec.equals:
        query = query.where(f, "==", "x")
    if spec.range is not None:
        query = query.where(spec.range, "<=", "x")
    for f, d in spec.order:
        query = query.order_by(f, d)
    return query


@pytest.mark.parametrize("spec", q.REGISTRY, ids=lambda s: s.name)
def test_every_declared_query_is_accepted(spec: q.QuerySpec) -> None:
    """`require` finds each registered spec for a query of its shape, whatever the values."""
    assert q.require(query_for(spec)) is spec
    assert q.require(query_for(spec).limited(7)) is spec


@pytest.mark.parametrize("spec", q.REGISTRY, ids=lambda s: s.name)
async def test_every_declared_query_runs_on_its_own_sqlite_index(
    spec: q.QuerySpec, store: SqliteStore, db_path: Path
) -> None:
    """SQLite's plan for each registered query searches the index created from the registry."""
    await store.read(lambda tx: tx.query(query_for(spec)))  # runs without error
    sql, params = DIALECT.select(query_for(spec))
    with sqlite3.connect(db_path) as conn:
        plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    if spec.index_fields() or spec.scope == "collection":
        assert f"ix_{spec.name}" in plan or "USING INDEX" in plan, plan
        assert "USE TEMP B-TREE" not in plan, plan  # the index already delivers the order


def test_undeclared_query_is_failed_precondition_naming_the_index() -> None:
    """A query off the registry fails like Firestore would, naming the index it needs."""
    query = q.Query("openPositions").where("side", "==", "long").order_by("openedAt", "desc")
    with pytest.raises(FailedPrecondition) as info:
        q.require(query)
    message = str(info.value)
    assert message.startswith("FAILED_PRECONDITION")
    assert "openPositions [COLLECTION_GROUP]: side ASCENDING, openedAt DESCENDING" in message


async def test_the_store_refuses_an_undeclared_query(store: SqliteStore) -> None:
    """The SQLite backend raises FailedPrecondition before touching the database."""
    scoped_wrong = q.Query("ledger").order_by("seq")  # the ledger query is per user
    with pytest.raises(FailedPrecondition, match=r"ledger \[COLLECTION_GROUP\]: seq ASCENDING"):
        await store.read(lambda tx: tx.query(scoped_wrong))
    wrong_direction = q.Query("ledger", parent="users/u").order_by("seq", "desc")
    with pytest.raises(FailedPrecondition):
        await store.read(lambda tx: tx.query(wrong_direction))


def test_query_building_rules() -> None:
    """Only equality, `in` and range operators; one range field; scope follows the parent."""
    with pytest.raises(ValueError, match="unsupported operator"):
        q.Query("openPositions").where("symbol", "not-in", ["a"])
    with pytest.raises(ValueError, match="1 to 30 values"):
        q.Query("openPositions").where("symbol", "in", [])
    assert q.Query("openPositions").where("details.status", "in", ["open"]).equals == {
        "details.status"
    }
    two_ranges = q.Query("tradeTriggers").where("a", "<", 1).where("b", ">", 2)
    with pytest.raises(FailedPrecondition, match="range filters on more than one field"):
        _ = two_ranges.range_field
    assert q.Query("x").scope == "collection_group"
    assert q.Query("x", parent="users/u").scope == "collection"


def test_index_fields_put_equalities_then_range_then_order() -> None:
    """Index column order is what every engine needs: equality, range, then ordering."""
    assert q.EXPIRING_TRIGGERS.index_fields() == (
        ("details.status", "asc"),
        ("expiresAt", "asc"),
    )
    assert q.USER_POSITIONS_BY_STATUS.index_fields() == (
        ("details.status", "asc"),
        ("openedAt", "desc"),
    )
    spec = q.QuerySpec("s", "g", "collection", equals=("a",), range="b", order=(("c", "desc"),))
    assert spec.index_fields() == (("a", "asc"), ("b", "asc"), ("c", "desc"))
    by_group = q.filtered_fields_by_group()
    assert set(by_group["openPositions"]) == {
        "symbol", "details.status", "openedAt", "uid", "expiresAt"
    }


def test_registry_names_are_unique() -> None:
    """Each declared query has its own name (SQL index names come from it)."""
    names = [s.name for s in q.REGISTRY]
    assert len(names) == len(set(names))


# ---------------------------------------------------------------- results on SQLite


async def test_collection_group_and_per_user_queries_return_the_right_documents(
    store: SqliteStore,
) -> None:
    """The worker's query spans users; a user's query sees only that user, newest first."""
    docs = {
        "users/a/openPositions/1": ("BTC-USDT", "open", 1),
        "users/a/openPositions/2": ("BTC-USDT", "closing", 2),
        "users/b/openPositions/3": ("BTC-USDT", "open", 3),
        "users/b/openPositions/4": ("ETH-USDT", "open", 4),
    }

    def write(tx: Tx) -> None:
        for path, (symbol, status, minute) in docs.items():
            tx.set(path, {
                "symbol": symbol,
                "details": {"status": status},
                "openedAt": to_iso(T0 + timedelta(minutes=minute)),
            })

    await store.transact(write)
    worker = q.Query("openPositions").where("symbol", "==", "BTC-USDT").where(
        "details.status", "==", "open"
    )
    rows = await store.read(lambda tx: tx.query(worker))
    assert sorted(p for p, _ in rows) == ["users/a/openPositions/1", "users/b/openPositions/3"]
    mine = q.Query("openPositions", parent="users/a").order_by("openedAt", "desc")
    rows = await store.read(lambda tx: tx.query(mine))
    assert [p for p, _ in rows] == ["users/a/openPositions/2", "users/a/openPositions/1"]
    closing = q.positions_with_status("closing")
    assert [p for p, _ in await store.read(lambda tx: tx.query(closing))] == [
        "users/a/openPositions/2"
    ]


async def test_range_queries_on_iso_times_and_booleans(store: SqliteStore) -> None:
    """Due agents: enabled (a JSON boolean) and nextRunAt at or before now, oldest first."""
    rows: dict[str, dict[str, Any]] = {
        "users/a/agent/config": {"enabled": True, "nextRunAt": to_iso(T0)},
        "users/b/agent/config": {"enabled": True, "nextRunAt": to_iso(T0 - timedelta(hours=1))},
        "users/c/agent/config": {"enabled": False, "nextRunAt": to_iso(T0)},
        "users/d/agent/config": {"enabled": True, "nextRunAt": to_iso(T0 + timedelta(hours=1))},
    }

    def write(tx: Tx) -> None:
        for path, doc in rows.items():
            tx.set(path, doc)

    await store.transact(write)
    due = (
        q.Query("agent")
        .where("enabled", "==", True)
        .where("nextRunAt", "<=", to_iso(T0))
        .order_by("nextRunAt", "asc")
    )
    found = await store.read(lambda tx: tx.query(due))
    assert [p for p, _ in found] == ["users/b/agent/config", "users/a/agent/config"]
    assert found[0][1]["enabled"] is True  # the document keeps its JSON type
