"""Documents and transactions: the port's rules, identical on every backend."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

from cogmora.errors import Conflict, Fatal
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx
from cogmora.store.rules import ReadAfterWrite

POS = "users/u1/openPositions/p1"


def position(status: str = "open", **extra: Any) -> dict[str, Any]:
    return {
        "uid": "u1",
        "symbol": "BTC-USDT",
        "openedAt": "2024-01-01T00:00:00.000000Z",
        "details": {"status": status, "stopLoss": None},
        "n": 1,
        "flag": True,
        "tags": ["a", "b"],
        **extra,
    }


async def test_set_then_get_returns_the_same_document(store: Store) -> None:
    """A document written with set reads back equal, nested values and types included."""
    await store.transact(lambda tx: tx.set(POS, position()))
    assert await store.read(lambda tx: tx.get(POS)) == position()


async def test_get_of_a_missing_document_is_none(store: Store) -> None:
    """Reading a path never written, even in a collection never written, gives None."""
    assert await store.read(lambda tx: tx.get("users/u1/neverWritten/x")) is None
    assert await store.read(lambda tx: tx.get(POS)) is None


async def test_set_replaces_the_whole_document(store: Store) -> None:
    """set overwrites: fields absent from the new document are gone."""
    await store.transact(lambda tx: tx.set(POS, position(extra="x")))
    await store.transact(lambda tx: tx.set(POS, {"only": 1}))
    assert await store.read(lambda tx: tx.get(POS)) == {"only": 1}


async def test_create_on_an_existing_path_is_a_conflict(store: Store) -> None:
    """create refuses an existing document with Conflict and the transaction writes nothing."""
    await store.transact(lambda tx: tx.create(POS, position()))

    def body(tx: Tx) -> None:
        tx.set("users/u1/openPositions/other", position())
        tx.create(POS, position(status="closed"))

    with pytest.raises(Conflict):
        await store.transact(body)
    assert await store.read(lambda tx: tx.get(POS)) == position()
    assert await store.read(lambda tx: tx.get("users/u1/openPositions/other")) is None


async def test_delete_removes_the_document(store: Store) -> None:
    """After delete a get returns None, and deleting a missing document is not an error."""
    await store.transact(lambda tx: tx.set(POS, position()))
    await store.transact(lambda tx: tx.delete(POS))
    assert await store.read(lambda tx: tx.get(POS)) is None
    await store.transact(lambda tx: tx.delete(POS))


async def test_get_many_keeps_the_order_asked_and_marks_missing_ones(store: Store) -> None:
    """get_many answers one entry per path, in the order given, None where missing."""

    def body(tx: Tx) -> None:
        tx.set("users/u1", {"uid": "u1"})
        tx.set("users/u2/openPositions/a", {"n": 2})
        tx.set(POS, {"n": 1})

    await store.transact(body)
    paths = [POS, "users/u9", "users/u2/openPositions/a", "users/u1", "users/u1/ledger/none"]
    docs = await store.read(lambda tx: tx.get_many(paths))
    assert docs == [{"n": 1}, None, {"n": 2}, {"uid": "u1"}, None]


async def test_a_read_after_a_write_is_refused(store: Store) -> None:
    """A body that reads after writing fails and nothing it wrote is committed."""

    def body(tx: Tx) -> None:
        tx.set(POS, position())
        tx.get("users/u1")

    with pytest.raises(ReadAfterWrite):
        await store.transact(body)
    assert await store.read(lambda tx: tx.get(POS)) is None


async def test_a_write_in_a_read_only_body_is_refused(store: Store) -> None:
    """read() bodies may not write."""
    with pytest.raises(Fatal):
        await store.read(lambda tx: tx.set(POS, position()))
    assert await store.read(lambda tx: tx.get(POS)) is None


async def test_an_exception_in_the_body_rolls_back_every_write(store: Store) -> None:
    """A transaction is atomic: when its body raises, none of its writes are visible."""
    await store.transact(lambda tx: tx.set("users/u1", {"balance": "10"}))

    def body(tx: Tx) -> None:
        tx.get("users/u1")
        tx.set("users/u1", {"balance": "0"})
        tx.set(POS, position())
        tx.delete("users/u1")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await store.transact(body)
    assert await store.read(lambda tx: tx.get_many(["users/u1", POS])) == [
        {"balance": "10"},
        None,
    ]


async def test_the_body_result_is_returned(store: Store) -> None:
    """transact and read return what the body returned."""
    assert await store.transact(lambda tx: 42) == 42
    assert await store.read(lambda tx: "x") == "x"


async def test_two_concurrent_compare_and_set_bodies_have_one_winner(store: Store) -> None:
    """Two bodies that both read `open` and both write `closing`: exactly one commits its
    change; the other is re-run, sees `closing` and gives up."""
    await store.transact(lambda tx: tx.set(POS, position()))
    # The barrier makes both bodies read before either writes, where the backend runs
    # bodies in parallel; where it runs them one at a time it simply times out.
    barrier = threading.Barrier(2, timeout=0.3)

    def close(who: str) -> Any:
        def body(tx: Tx) -> bool:
            doc = tx.get(POS)
            assert doc is not None
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
            if doc["details"]["status"] != "open":
                return False
            doc["details"]["status"] = "closing"
            doc["closedBy"] = who
            tx.set(POS, doc)
            return True

        return body

    won = await asyncio.gather(store.transact(close("a")), store.transact(close("b")))
    assert sorted(won) == [False, True]
    doc = await store.read(lambda tx: tx.get(POS))
    assert doc is not None
    assert doc["closedBy"] == ("a" if won[0] else "b")


async def test_concurrent_read_modify_write_bodies_lose_no_update(backend: Any) -> None:
    """N concurrent increments of one counter leave it at N."""
    store = await backend.open()
    # The emulator settles a lock conflict only by a 2 s lock timeout (production Firestore
    # wounds the younger transaction at once), so it gets a smaller crowd.
    n = 3 if backend.kind == "firestore" else 8
    await store.transact(lambda tx: tx.set("users/u1", {"n": 0}))

    def bump(tx: Tx) -> None:
        doc = tx.get("users/u1")
        assert doc is not None
        tx.set("users/u1", {"n": doc["n"] + 1})

    await asyncio.gather(*(store.transact(bump) for _ in range(n)))
    assert await store.read(lambda tx: tx.get("users/u1")) == {"n": n}


async def test_a_second_instance_sees_committed_writes(backend: Any) -> None:
    """Two store instances on the same data (two processes) see each other's commits."""
    one = await backend.open()
    two = await backend.open()
    await one.transact(lambda tx: tx.set(POS, position()))
    assert await two.read(lambda tx: tx.get(POS)) == position()
    await two.transact(lambda tx: tx.set("users/u1/brandNewGroup/x", {"k": 1}))
    assert await one.read(lambda tx: tx.get("users/u1/brandNewGroup/x")) == {"k": 1}


def _positions(tx: Tx, statuses: dict[str, str]) -> None:
    for pid, status in statuses.items():
        tx.set(f"users/u1/openPositions/{pid}", position(status=status))


async def test_compare_and_set_changes_only_documents_still_in_the_expected_state(
    store: Store,
) -> None:
    """compare_and_set sets the dotted fields on matching documents only, keeps every other
    field, skips missing ones, and returns the paths it changed."""
    await store.transact(lambda tx: _positions(tx, {"a": "open", "b": "closing", "c": "open"}))
    paths = [f"users/u1/openPositions/{p}" for p in ("a", "b", "c", "missing")]
    changed = await store.transact(
        lambda tx: tx.compare_and_set(
            paths,
            {"details.status": "open"},
            {"details.status": "closing", "details.closePrice": "101.5", "closedBy": "worker"},
        )
    )
    assert sorted(changed) == [paths[0], paths[2]]
    docs = await store.read(lambda tx: tx.get_many(paths))
    want = position(status="closing", closedBy="worker")
    want["details"]["closePrice"] = "101.5"
    assert docs == [want, position(status="closing"), want, None]
    # the typed column moved too: the status query sees the new state
    closing = q.positions_with_status("closing")
    rows = await store.read(lambda tx: tx.query(closing))
    assert sorted(p for p, _ in rows) == sorted(paths[:3])


async def test_racing_compare_and_sets_have_one_winner_per_document(store: Store) -> None:
    """Two concurrent compare-and-sets over the same documents: each document changes once."""
    await store.transact(lambda tx: _positions(tx, {f"p{i}": "open" for i in range(6)}))
    paths = [f"users/u1/openPositions/p{i}" for i in range(6)]

    def cas(who: str) -> Any:
        return lambda tx: tx.compare_and_set(
            paths, {"details.status": "open"}, {"details.status": "closing", "by": who}
        )

    one, two = await asyncio.gather(store.transact(cas("a")), store.transact(cas("b")))
    assert sorted(one + two) == sorted(paths)
    docs = await store.read(lambda tx: tx.get_many(paths))
    assert all(d is not None and d["details"]["status"] == "closing" for d in docs)
    assert {p for p, d in zip(paths, docs, strict=True) if d and d["by"] == "a"} == set(one)


async def test_compare_and_sets_may_follow_one_another_then_writes_but_not_reads(
    store: Store,
) -> None:
    """Several compare-and-sets may run in one body before its plain writes; a read after
    them is refused."""
    await store.transact(lambda tx: _positions(tx, {"a": "open", "b": "open"}))

    def body(tx: Tx) -> list[str]:
        got = tx.compare_and_set(["users/u1/openPositions/a"], {"details.status": "open"}, {"x": 1})
        got += tx.compare_and_set(
            ["users/u1/openPositions/b"], {"details.status": "open"}, {"x": 2}
        )
        tx.set("users/u1", {"after": True})
        return got

    assert len(await store.transact(body)) == 2

    def reads_after(tx: Tx) -> None:
        tx.compare_and_set(["users/u1/openPositions/a"], {"x": 1}, {"x": 3})
        tx.get("users/u1")

    with pytest.raises(ReadAfterWrite):
        await store.transact(reads_after)
