"""compare_and_set expecting levels (SPEC 5.1): a decimal string, a null and an absent field,
the same on every backend."""

from __future__ import annotations

from typing import Any

from cogmora.store.port import Store, Tx

GROUP = "users/u1/openPositions"


def position(pid: str, **details: Any) -> tuple[str, dict[str, Any]]:
    return f"{GROUP}/{pid}", {
        "uid": "u1",
        "symbol": "BTC-USDT",
        "openedAt": "2024-01-01T00:00:00.000000Z",
        "details": {"status": "open", **details},
    }


async def put(store: Store, *docs: tuple[str, dict[str, Any]]) -> list[str]:
    def body(tx: Tx) -> None:
        for path, doc in docs:
            tx.set(path, doc)

    await store.transact(body)
    return [path for path, _ in docs]


async def cas(store: Store, paths: list[str], expect: dict[str, Any]) -> list[str]:
    return sorted(
        await store.transact(
            lambda tx: tx.compare_and_set(paths, expect, {"details.status": "closing"})
        )
    )


async def test_expecting_a_decimal_string_level_takes_only_documents_holding_that_string(
    store: Store,
) -> None:
    """A level expectation matches the exact stored string, not a moved, cleared or missing one."""
    paths = await put(
        store,
        position("same", stopLoss="59000.00000000"),
        position("moved", stopLoss="59500.00000000"),
        position("cleared", stopLoss=None),
        position("absent"),
        position("number", stopLoss=59000),
    )
    expect = {"details.status": "open", "details.stopLoss": "59000.00000000"}
    assert await cas(store, paths, expect) == [f"{GROUP}/same"]
    docs = await store.read(lambda tx: tx.get_many(paths))
    assert [d["details"]["status"] for d in docs if d] == [
        "closing",
        "open",
        "open",
        "open",
        "open",
    ]


async def test_expecting_none_matches_a_null_or_absent_field_only(store: Store) -> None:
    """Expecting None takes a position whose take profit is null or not stored, not one that has one."""
    paths = await put(
        store,
        position("null", takeProfit=None),
        position("absent"),
        position("set", takeProfit="62000.00000000"),
        position("closing_null", takeProfit=None),
    )
    await store.transact(
        lambda tx: tx.compare_and_set(
            [f"{GROUP}/closing_null"], {}, {"details.status": "closing"}
        )
    )
    expect = {"details.status": "open", "details.takeProfit": None}
    assert await cas(store, paths, expect) == [f"{GROUP}/absent", f"{GROUP}/null"]


async def test_expecting_several_levels_requires_all_of_them(store: Store) -> None:
    """Status, a level and a null level together: any one of them differing leaves the document."""
    paths = await put(
        store,
        position("all", stopLoss="1.5", takeProfit=None),
        position("tp_set", stopLoss="1.5", takeProfit="3"),
        position("sl_moved", stopLoss="1.25", takeProfit=None),
    )
    expect = {"details.status": "open", "details.stopLoss": "1.5", "details.takeProfit": None}
    assert await cas(store, paths, expect) == [f"{GROUP}/all"]
    assert await cas(store, paths, expect) == []  # now closing: the status no longer holds
