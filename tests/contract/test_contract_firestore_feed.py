"""Firestore's own feed machinery, on the emulator: what the other backends get from a log
table, Firestore gets from listeners, and a listener can die."""

from __future__ import annotations

import uuid

from cogmora.store.firestore import FirestoreStore
from cogmora.store.port import Tx

OPEN = {"details": {"status": "open"}}


async def test_a_dead_listener_is_restarted_and_reports_what_changed_meanwhile(
    firestore_emulator: str,
) -> None:
    """When a collection group's listener has died, the next changes() call restarts it
    and reports the documents written, changed or deleted while nobody listened."""
    project = f"demo-feed-{uuid.uuid4().hex[:10]}"
    store = FirestoreStore(project)
    writer = FirestoreStore(project)
    await store.start()
    await writer.start()
    try:

        def before(tx: Tx) -> None:
            tx.set("users/u1/openPositions/kept", {"v": 1, **OPEN})
            tx.set("users/u1/openPositions/changed", {"v": 1, **OPEN})
            tx.set("users/u1/openPositions/deleted", {"v": 1, **OPEN})

        await writer.transact(before)
        await store.changes(0, wait=5.0)  # the listener has seen them
        start = await store.head()
        feed = store._feed
        assert feed is not None
        feed._listeners["openPositions"].watch.close()

        def meanwhile(tx: Tx) -> None:
            tx.set("users/u1/openPositions/changed", {"v": 2, **OPEN})
            tx.delete("users/u1/openPositions/deleted")
            tx.set("users/u1/openPositions/new", {"v": 3, **OPEN})

        await writer.transact(meanwhile)
        got = await store.changes(start, groups=frozenset({"openPositions"}), wait=5.0)
        assert sorted((c.path.rsplit("/", 1)[1], c.doc) for c in got) == [
            ("changed", {"v": 2, **OPEN}),
            ("deleted", None),
            ("new", {"v": 3, **OPEN}),
        ]
    finally:
        await store.close()
        await writer.close()
