"""The change feed: commit order, filters, waiting, head(), on every backend."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from cogmora.errors import FeedResync
from cogmora.store.port import UNFED_GROUPS, Change, FeedPruning, Store, Tx
from feed_follower import follow_until

_LIVE = {"openPositions": {"status": "open"}, "tradeTriggers": {"status": "active"}}


def _live(path: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The document with the status followers act on (open position, active trigger):
    Firestore's feed follows only those, as the system's documents always have one."""
    status = _LIVE.get(path.rsplit("/", 2)[-2])
    return doc if status is None or "details" in doc else {**doc, "details": status}


def _writes(*items: tuple[str, dict[str, Any] | None]) -> Any:
    def body(tx: Tx) -> None:
        for path, doc in items:
            if doc is None:
                tx.delete(path)
            else:
                tx.set(path, _live(path, doc))

    return body


async def _all(store: Store, after: int, **kw: Any) -> list[Change]:
    return await store.changes(after, limit=10_000, **kw)


async def test_changes_come_in_commit_order_with_their_documents(store: Store) -> None:
    """Each committed write appears once, with increasing seq and its document (None for a
    delete), a group's changes in commit order; head() is the last seq."""
    start = await store.head()
    await store.transact(_writes(("users/u1", {"v": 1}), ("users/u1/openPositions/a", {"v": 2})))
    await store.transact(_writes(("users/u1/openPositions/a", {"v": 3})))
    await store.transact(_writes(("users/u1", {"v": 4}), ("users/u1/openPositions/a", None)))
    got = await _all(store, start)
    seqs = [c.seq for c in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    by_group = {
        g: [(c.uid, c.path, c.doc) for c in got if c.group == g] for g in ("users", "openPositions")
    }
    assert by_group == {
        "users": [("u1", "users/u1", {"v": 1}), ("u1", "users/u1", {"v": 4})],
        "openPositions": [
            ("u1", "users/u1/openPositions/a", _live("users/u1/openPositions/a", {"v": 2})),
            ("u1", "users/u1/openPositions/a", _live("users/u1/openPositions/a", {"v": 3})),
            ("u1", "users/u1/openPositions/a", None),
        ],
    }
    assert len(got) == 5
    assert await store.head() == seqs[-1]


async def test_on_sql_the_feed_is_one_commit_order_across_groups(backend: Any) -> None:
    """On the SQL backends the whole feed is in commit order, a transaction's changes in
    the order it wrote them."""
    if backend.kind == "firestore":
        pytest.skip(
            "Firestore has no global commit log: its feed is one listener per collection "
            "group, in commit order per group and in arrival order between groups"
        )
    store = await backend.open()
    start = await store.head()
    await store.transact(_writes(("users/u1/openPositions/b", {"v": 1}), ("users/u1", {"v": 2})))
    await store.transact(_writes(("users/u1/tradeTriggers/t", {"v": 3})))
    await store.transact(_writes(("users/u1", {"v": 4}), ("users/u1/openPositions/a", {"v": 5})))
    assert [{"v": c.doc["v"]} for c in await _all(store, start) if c.doc] == [
        {"v": i} for i in range(1, 6)
    ]


async def test_after_skips_what_was_already_seen_and_limit_caps(store: Store) -> None:
    """changes(after=seq) starts after that seq; limit returns the oldest ones only."""
    start = await store.head()
    for i in range(5):
        await store.transact(_writes((f"users/u{i}", {"i": i})))
    got = await _all(store, start)
    assert [c.doc for c in got] == [{"i": i} for i in range(5)]
    assert [c.doc for c in await store.changes(got[1].seq)] == [{"i": 2}, {"i": 3}, {"i": 4}]
    assert [c.doc for c in await store.changes(start, limit=2)] == [{"i": 0}, {"i": 1}]


async def test_changes_filter_by_group_and_by_user(store: Store) -> None:
    """groups= keeps those collection groups, uid= keeps one user's documents."""
    start = await store.head()
    await store.transact(
        _writes(
            ("users/u1", {"n": 1}),
            ("users/u1/openPositions/a", {"n": 2}),
            ("users/u2/openPositions/b", {"n": 3}),
            ("users/u2/tradeTriggers/t", {"n": 4}),
        )
    )
    positions = await _all(store, start, groups=frozenset({"openPositions"}))
    assert [c.path for c in positions] == ["users/u1/openPositions/a", "users/u2/openPositions/b"]
    u2 = await _all(store, start, uid="u2")
    assert sorted(c.path for c in u2) == ["users/u2/openPositions/b", "users/u2/tradeTriggers/t"]
    both = await _all(store, start, uid="u1", groups=frozenset({"users", "tradeTriggers"}))
    assert [c.path for c in both] == ["users/u1"]


async def test_unfed_groups_never_reach_the_feed(store: Store) -> None:
    """Writes to the groups nobody follows (ledger, history, prices...) are not published."""
    start = await store.head()
    await store.transact(
        _writes(
            *(
                (
                    f"users/u1/{g}/x" if g not in ("prices", "tokens", "idempotency") else f"{g}/x",
                    {},
                )
                for g in sorted(UNFED_GROUPS)
            ),
            ("users/u1", {"n": 1}),
        )
    )
    assert [c.path for c in await _all(store, start)] == ["users/u1"]


async def test_a_rolled_back_transaction_leaves_no_change(store: Store) -> None:
    """A body that raises publishes nothing."""
    start = await store.head()

    def body(tx: Tx) -> None:
        tx.set("users/u1", {"n": 1})
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        await store.transact(body)
    await store.transact(_writes(("users/u2", {"n": 2})))
    assert [c.path for c in await _all(store, start)] == ["users/u2"]


async def test_wait_returns_as_soon_as_a_change_commits(store: Store) -> None:
    """A waiting changes() call returns the change another task commits, well before its
    timeout."""
    start = await store.head()

    async def later() -> None:
        await asyncio.sleep(0.05)
        await store.transact(_writes(("users/u7", {"n": 7})))

    task = asyncio.create_task(later())
    got = await asyncio.wait_for(store.changes(start, wait=30.0), timeout=20.0)
    await task
    assert [c.path for c in got] == ["users/u7"]


async def test_wait_returns_nothing_after_the_timeout(store: Store) -> None:
    """With no commit, a waiting changes() call returns an empty list once `wait` ends."""
    start = await store.head()
    assert await store.changes(start, wait=0.2) == []


async def test_wait_ignores_changes_outside_the_filter(store: Store) -> None:
    """A commit to another group does not end a filtered wait early with an empty answer."""
    start = await store.head()

    async def later() -> None:
        await asyncio.sleep(0.05)
        await store.transact(_writes(("users/u1/tradeTriggers/t", {"n": 1})))
        await asyncio.sleep(0.05)
        await store.transact(_writes(("users/u1/openPositions/p", {"n": 2})))

    task = asyncio.create_task(later())
    got = await store.changes(start, groups=frozenset({"openPositions"}), wait=30.0)
    await task
    assert [c.path for c in got] == ["users/u1/openPositions/p"]


async def test_another_instance_is_woken_by_a_commit(backend: Any) -> None:
    """A store instance waiting on the feed (another process) returns when a different
    instance commits."""
    writer = await backend.open()
    follower = await backend.open()
    start = await follower.head()

    async def later() -> None:
        await asyncio.sleep(0.1)
        await writer.transact(_writes(("users/u1/openPositions/x", {"n": 1})))

    task = asyncio.create_task(later())
    got = await asyncio.wait_for(
        follower.changes(start, groups=frozenset({"openPositions"}), wait=30.0), timeout=20.0
    )
    await task
    assert [c.path for c in got] == ["users/u1/openPositions/x"]


async def test_a_follower_misses_nothing_while_writers_commit_concurrently(store: Store) -> None:
    """Following the feed from its cursor while many transactions commit at once yields
    every change exactly once: no seq becomes visible after a larger one was read."""
    start = await store.head()
    writers, each = 6, 15
    done = asyncio.Event()

    async def write(w: int) -> None:
        for i in range(each):
            await store.transact(_writes((f"users/w{w}/openPositions/p{i}", {"i": i})))

    follower = asyncio.create_task(follow_until(store, start, done))
    await asyncio.gather(*(write(w) for w in range(writers)))
    done.set()
    seen = await follower
    full = await _all(store, start)
    assert len(full) == writers * each
    assert [c.seq for c in seen] == [c.seq for c in full]


def _pruning(store: Store) -> FeedPruning:
    """The store as a prunable feed, or an expected failure where it is not one yet."""
    if not hasattr(store, "prune_changes"):
        pytest.xfail(f"{store.name} does not implement feed pruning (FeedPruning) yet")
    return cast(FeedPruning, store)


async def _write_each(store: Store, paths: list[str]) -> list[int]:
    seqs = []
    for i, path in enumerate(paths):
        await store.transact(_writes((path, {"i": i})))
        seqs.append(await store.head())
    return seqs


async def test_a_cursor_older_than_the_pruned_point_gets_feed_resync(store: Store) -> None:
    """After pruning, changes() from a cursor older than what is kept raises FeedResync
    (with or without filters, waiting or not) instead of returning what is left."""
    pruning = _pruning(store)
    start = await store.head()
    seqs = await _write_each(store, [f"users/u1/openPositions/p{i}" for i in range(5)])
    assert await pruning.prune_changes(2) >= 3
    for kw in ({}, {"groups": frozenset({"openPositions"})}, {"uid": "u1"}, {"wait": 5.0}):
        with pytest.raises(FeedResync):
            await store.changes(start, **kw)  # type: ignore[arg-type]
        with pytest.raises(FeedResync):
            await store.changes(seqs[1], **kw)  # type: ignore[arg-type]
    assert [c.doc["i"] for c in await _all(store, seqs[2]) if c.doc] == [3, 4]
    assert await store.head() == seqs[-1]


async def test_a_feed_pruned_to_nothing_keeps_its_head_and_follows_on(store: Store) -> None:
    """Pruning every change leaves head() where it was; the next commit is after it, and a
    follower at the head reads it, while one behind the head must resync."""
    pruning = _pruning(store)
    seqs = await _write_each(store, ["users/u1", "users/u2"])
    await pruning.prune_changes(0)
    assert await store.head() == seqs[-1]
    assert await store.changes(seqs[-1]) == []
    await store.transact(_writes(("users/u3", {"n": 3})))
    got = await store.changes(seqs[-1])
    assert [c.path for c in got] == ["users/u3"] and got[0].seq > seqs[-1]
    with pytest.raises(FeedResync):
        await store.changes(seqs[0])


async def test_another_instance_sees_the_prune(backend: Any) -> None:
    """A prune by one store instance (another process) makes a stale cursor resync on
    every instance."""
    if backend.kind == "firestore":
        pytest.skip("Firestore's feed is each instance's own buffer: its cursors mean "
                    "nothing to another instance, so there is no shared prune to see")
    writer = await backend.open()
    reader = await backend.open()
    pruning = _pruning(writer)
    start = await reader.head()
    await _write_each(writer, ["users/u1", "users/u2", "users/u3"])
    await pruning.prune_changes(1)
    with pytest.raises(FeedResync):
        await reader.changes(start, wait=5.0)
