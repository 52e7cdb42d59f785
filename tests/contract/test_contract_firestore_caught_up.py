"""Firestore's `_caught_up` on the emulator: head() and changes() first wait until the
feed log's listener has delivered this process's own commits; a listener that is alive
but does not confirm them within the limit is restarted, and what it had not delivered
is reported then, once: never a silent drop (issue 8's "waits 2 s and then silently
clears what it was waiting for")."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
from structlog.testing import capture_logs

from cogmora.store.firestore import FirestoreStore
from cogmora.store.firestore.feed import SnapshotFeed
from cogmora.store.port import Tx
from conditions import until

GROUP = frozenset({"openPositions"})
OPEN = {"details": {"status": "open"}}
RESTARTING = "listeners did not confirm our commits; restarting them"


@pytest.fixture
async def store(firestore_emulator: str) -> AsyncIterator[FirestoreStore]:
    s = FirestoreStore(f"demo-caughtup-{uuid.uuid4().hex[:10]}", feed_groups=GROUP)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def put(name: str, v: int) -> object:
    def body(tx: Tx) -> None:
        tx.set(f"users/u1/openPositions/{name}", {"v": v, **OPEN})

    return body


@contextmanager
def listener_stalled(feed: SnapshotFeed) -> Iterator[threading.Event]:
    """The listener stays alive but delivers nothing until the event is set: another
    thread holds the lock every snapshot callback takes (as a listener stuck in the
    client, or a server that sends no snapshot, would look from here)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with feed._proc:
            held.set()
            release.wait(300)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    held.wait(30)
    try:
        yield release
    finally:
        release.set()
        thread.join(30)


async def test_head_waits_for_the_listener_to_deliver_our_own_commit(
    store: FirestoreStore,
) -> None:
    """Right after a commit, head() already counts it and changes() returns it without
    waiting: the path every reader takes when the listener keeps up."""
    start = await store.head()
    await store.transact(put("a", 1))
    head = await store.head()
    assert head > start
    got = await store.changes(start, groups=GROUP)  # no wait: it is already there
    assert [(c.path, c.doc) for c in got] == [("users/u1/openPositions/a", {"v": 1, **OPEN})]


async def test_a_listener_that_cannot_confirm_our_commit_is_restarted_and_delivers_it_once(
    store: FirestoreStore,
) -> None:
    """The listener stalls; a commit is made; head() waits its limit, restarts the
    listener, and returns only once the commit is confirmed: the change is then read
    exactly once, nothing dropped, nothing doubled."""
    feed = store._feed
    assert feed is not None
    await store.transact(put("before", 1))
    start = await store.head()
    with capture_logs() as logs, listener_stalled(feed) as release:
        await store.transact(put("during", 2))
        heading = asyncio.create_task(store.head())
        await until(
            lambda: any(e["event"] == RESTARTING for e in logs), 120, "the restart begins"
        )
        assert not heading.done()  # it waits for the confirmation, it does not give up
        release.set()  # the restart may proceed now
        head = await asyncio.wait_for(heading, 120)
    assert head > start
    got = await store.changes(start, groups=GROUP)
    assert [(c.path, c.doc) for c in got] == [
        ("users/u1/openPositions/during", {"v": 2, **OPEN})
    ]
    # And the restarted listener goes on delivering.
    await store.transact(put("after", 3))
    later = await store.changes(head, groups=GROUP)
    assert [c.path for c in later] == ["users/u1/openPositions/after"]
