"""Commit markers on the Firestore emulator: a transaction that creates no document writes
`txmarks/{id}` as its proof, with the Timestamp its TTL policy deletes it by."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cogmora.store.firestore import FirestoreStore
from cogmora.store.firestore.ttl import MARKER_GROUP, MARKER_LIFETIME, MARKER_TTL_FIELD
from cogmora.store.port import Store

ON_FIRESTORE = pytest.mark.parametrize("backend", ["firestore"], indirect=True)


def _markers(store: Store) -> list[dict[str, Any]]:
    assert isinstance(store, FirestoreStore)
    client, _ = store._require()
    return [snap.to_dict() for snap in client.collection(MARKER_GROUP).stream()]


@ON_FIRESTORE
async def test_a_transaction_creating_nothing_writes_a_marker_that_expires(store: Store) -> None:
    """The marker's expireAt is a Timestamp one lifetime after its commit; a transaction
    that creates a document, or writes a followed group (its change-feed log entry is
    created with it), is its own proof and writes no marker. Prices are not followed."""
    await store.transact(lambda tx: tx.create("prices/BTC-USDT", {"price": "1"}))
    await store.transact(lambda tx: tx.set("users/u1", {"uid": "u1", "n": 1}))
    assert _markers(store) == []
    before = datetime.now(UTC)
    await store.transact(lambda tx: tx.set("prices/BTC-USDT", {"price": "2"}))
    after = datetime.now(UTC)

    [marker] = _markers(store)
    expires = marker[MARKER_TTL_FIELD]
    assert isinstance(expires, datetime)  # a Firestore Timestamp, as TTL requires
    assert before + MARKER_LIFETIME <= expires <= after + MARKER_LIFETIME
    assert datetime.fromisoformat(marker["at"]) + MARKER_LIFETIME == expires
