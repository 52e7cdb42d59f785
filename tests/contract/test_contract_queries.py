"""Every registered query, on every backend: the right documents, in the right order, limited.

The data is generated from each spec, so a query added to the registry is covered here
without a new test: documents that match, and for every filter one that misses on
exactly that filter, under two users (a collection query must see only its own).
"""

from __future__ import annotations

from typing import Any

import pytest

from cogmora.errors import FailedPrecondition
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx
from cogmora.store.queries import REGISTRY, QuerySpec

PARENTS = ("users/u1", "users/u2")
N = 7  # matching documents per parent


def _value(field: str, i: int) -> Any:
    """The i-th value of a range/order field, increasing with i: numbers for `seq` (they
    cross 9 -> 10 and 99 -> 100, so text order would be wrong), fixed-width times otherwise."""
    if field == "seq":
        return 3 * i + 2
    return f"2024-05-01T00:00:00.{i:06d}Z"


def _scrambled(k: int) -> int:
    """Document k's rank in the order, unrelated to insertion order (37 is prime to 97)."""
    return (k * 37) % 97


def _hit(field: str) -> Any:
    return True if field == "enabled" else f"want-{field}"


def _miss(field: str) -> Any:
    return False if field == "enabled" else f"other-{field}"


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[last] = value


def _get(doc: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc[part]
    return doc


def dataset(spec: QuerySpec) -> list[tuple[str, dict[str, Any]]]:
    ordered = {f for f, _ in spec.order} | ({spec.range} if spec.range else set())
    out: list[tuple[str, dict[str, Any]]] = []
    k = 0
    for parent in PARENTS:
        variants: list[str | None] = [None] * N + [
            *spec.equals,
            *([spec.range] if spec.range else []),
        ]
        for miss in variants:
            doc: dict[str, Any] = {"k": k, "parent": parent}
            for f in spec.equals:
                _put(doc, f, _miss(f) if f == miss else _hit(f))
            for f in ordered:
                # the range filter keeps values below the cut; a `miss` lies above it
                _put(doc, f, _value(f, 100 + k) if f == miss else _value(f, _scrambled(k)))
            out.append((f"{parent}/{spec.group}/d{k:03d}", doc))
            k += 1
    return out


def build_query(spec: QuerySpec, limit: int | None) -> tuple[q.Query, Any]:
    query = q.Query(spec.group, parent=PARENTS[0] if spec.scope == "collection" else None)
    for f in spec.equals:
        query = query.where(f, "==", _hit(f))
    cut = None
    if spec.range is not None:
        cut = _value(spec.range, 99)
        query = query.where(spec.range, "<", cut)
    for f, d in spec.order:
        query = query.order_by(f, d)
    if limit is not None:
        query = query.limited(limit)
    return query, cut


def expected(
    spec: QuerySpec, docs: list[tuple[str, dict[str, Any]]], cut: Any, limit: int | None
) -> list[str]:
    rows = [
        (path, doc)
        for path, doc in docs
        if (spec.scope == "collection_group" or doc["parent"] == PARENTS[0])
        and all(_get(doc, f) == _hit(f) for f in spec.equals)
        and (spec.range is None or _get(doc, spec.range) < cut)
    ]
    for f, d in reversed(spec.order):
        rows.sort(key=lambda r, f=f: _get(r[1], f), reverse=d == "desc")
    paths = [p for p, _ in rows]
    return paths if limit is None else paths[:limit]


@pytest.mark.parametrize("spec", REGISTRY, ids=[s.name for s in REGISTRY])
async def test_every_registered_query_returns_the_right_documents_in_order(
    store: Store, spec: QuerySpec
) -> None:
    """Each declared query finds exactly the matching documents, in the declared order,
    and a limit keeps the first ones of that order."""
    docs = dataset(spec)

    def write(tx: Tx) -> None:
        for path, doc in docs:
            tx.set(path, doc)

    await store.transact(write)
    for limit in (None, 3):
        query, cut = build_query(spec, limit)
        rows = await store.read(lambda tx, query=query: tx.query(query))
        got = [path for path, _ in rows]
        want = expected(spec, docs, cut, limit)
        assert all(doc == dict(docs)[path] for path, doc in rows)
        if spec.order:
            assert got == want
        elif limit is None:
            assert sorted(got) == sorted(want)  # an unordered query promises no order
        else:
            assert len(got) == limit and set(got) <= set(expected(spec, docs, cut, None))


async def test_a_query_on_an_empty_collection_returns_nothing(store: Store) -> None:
    """A declared query over a collection never written returns an empty list."""
    query = q.Query("agentDecisions", parent="users/nobody").order_by("createdAt", "desc")
    assert await store.read(lambda tx: tx.query(query)) == []


async def test_an_undeclared_query_is_refused_naming_the_index_it_needs(store: Store) -> None:
    """A query shape missing from the registry raises FailedPrecondition with the index."""
    query = q.Query("openPositions").where("symbol", "==", "BTC-USDT").order_by("openedAt")
    with pytest.raises(FailedPrecondition) as err:
        await store.read(lambda tx: tx.query(query))
    assert "openPositions [COLLECTION_GROUP]: symbol ASCENDING, openedAt ASCENDING" in str(
        err.value
    )


async def test_a_query_in_a_transaction_sees_the_committed_state(store: Store) -> None:
    """A query inside transact reads what earlier transactions committed."""
    status = q.positions_with_status("closing")
    await store.transact(
        lambda tx: tx.set(
            "users/u1/openPositions/p", {"uid": "u1", "details": {"status": "closing"}}
        )
    )
    rows = await store.transact(lambda tx: tx.query(status))
    assert [p for p, _ in rows] == ["users/u1/openPositions/p"]
