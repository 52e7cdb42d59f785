"""Per-document lanes and group commit, on their own (the stores' side is the contract
suite's: tests/contract/test_contract_concurrent_opens.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cogmora.errors import Temporary
from cogmora.store.lanes import GroupCommit, lanes


class Store:
    """Only what lanes use: an identity to hang them on."""


async def test_a_lane_runs_one_holder_at_a_time_and_is_forgotten_when_free() -> None:
    store: Any = Store()
    inside: list[int] = []
    most = 0

    async def hold(i: int) -> None:
        nonlocal most
        async with lanes(store).hold(["users/a"]):
            inside.append(i)
            most = max(most, len(inside))
            await asyncio.sleep(0)
            inside.remove(i)

    await asyncio.gather(*(hold(i) for i in range(10)))
    assert most == 1
    assert len(lanes(store)) == 0


async def test_overlapping_key_sets_taken_in_any_order_never_deadlock() -> None:
    store: Any = Store()

    async def hold(keys: list[str]) -> None:
        async with lanes(store).hold(keys):
            await asyncio.sleep(0)

    await asyncio.wait_for(
        asyncio.gather(*(hold(["a", "b"] if i % 2 else ["b", "a"]) for i in range(20))), 10
    )


async def test_items_queued_behind_a_batch_commit_together_in_arrival_order() -> None:
    store: Any = Store()
    batches: list[list[int]] = []

    async def run(key: str, items: list[int]) -> list[Any]:
        batches.append(items)
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    gc: GroupCommit[int, int] = GroupCommit(store, run, limit=50)
    first = asyncio.create_task(gc.submit("users/a", 0))
    for _ in range(3):  # the first is committing alone
        await asyncio.sleep(0)
    assert batches == [[0]]
    got = [await first, *await asyncio.gather(*(gc.submit("users/a", i) for i in range(1, 7)))]
    assert got == [i * 10 for i in range(7)]
    assert batches == [[0], [1, 2, 3, 4, 5, 6]]


async def test_items_with_one_token_never_share_a_batch() -> None:
    store: Any = Store()
    batches: list[list[str]] = []

    async def run(key: str, items: list[str]) -> list[Any]:
        batches.append(items)
        await asyncio.sleep(0.01)
        return items

    gc: GroupCommit[str, str] = GroupCommit(store, run, limit=50, token=lambda i: i[0])
    await asyncio.gather(*(gc.submit("k", i) for i in ["x0", "x1", "y0", "x2", "y1"]))
    assert all(len({i[0] for i in b}) == len(b) for b in batches)
    assert [i for b in batches for i in b if i[0] == "x"] == ["x0", "x1", "x2"]


async def test_a_batch_that_raises_is_run_item_by_item_so_only_the_bad_one_fails() -> None:
    store: Any = Store()

    async def run(key: str, items: list[int]) -> list[Any]:
        await asyncio.sleep(0)
        if 3 in items:
            raise KeyError("item 3 is broken")
        return items

    gc: GroupCommit[int, int] = GroupCommit(store, run, limit=50)
    got = await asyncio.gather(*(gc.submit("k", i) for i in range(6)), return_exceptions=True)
    assert [isinstance(g, KeyError) for g in got] == [i == 3 for i in range(6)]


async def test_a_batch_the_store_gave_up_on_fails_every_item_alike() -> None:
    store: Any = Store()
    calls = 0

    async def run(key: str, items: list[int]) -> list[Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise Temporary("contention: gave up")

    gc: GroupCommit[int, int] = GroupCommit(store, run, limit=50)
    got = await asyncio.gather(*(gc.submit("k", i) for i in range(4)), return_exceptions=True)
    assert all(isinstance(g, Temporary) for g in got)
    assert calls == 1  # all four in one batch, not re-run one by one


@pytest.mark.parametrize("limit", [1, 2])
async def test_a_batch_holds_at_most_limit_items(limit: int) -> None:
    store: Any = Store()
    sizes: list[int] = []

    async def run(key: str, items: list[int]) -> list[Any]:
        sizes.append(len(items))
        await asyncio.sleep(0.001)
        return items

    gc: GroupCommit[int, int] = GroupCommit(store, run, limit=limit)
    await asyncio.gather(*(gc.submit("k", i) for i in range(9)))
    assert max(sizes) <= limit and sum(sizes) == 9
