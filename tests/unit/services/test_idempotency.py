"""Idempotency keys: scoped to the caller, bound to the request, stored with the effect."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cogmora.errors import ValidationError
from cogmora.services import idempotency
from cogmora.services.idempotency import IdempotencyKey
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_no_header_means_no_key() -> None:
    """Without the header there is nothing to replay."""
    assert IdempotencyKey.of("u", None, "POST /x", {}) is None


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_empty_or_overlong_keys_are_refused(key: str) -> None:
    """A key must be 1 to 255 characters."""
    with pytest.raises(ValidationError, match="Idempotency-Key must be 1 to 255 characters"):
        IdempotencyKey.of("u", key, "POST /x", {})


def test_key_path_is_per_user_and_fingerprint_ignores_field_order() -> None:
    """Two users may use the same key; the same body in another order is the same request."""
    a = IdempotencyKey.of("alice", "k1", "POST /x", {"a": 1, "b": 2})
    b = IdempotencyKey.of("bob", "k1", "POST /x", {"b": 2, "a": 1})
    assert a is not None and b is not None
    assert a.path != b.path
    assert a.fingerprint == b.fingerprint
    assert a.path.startswith("idempotency/")


async def test_recorded_answer_is_replayed_and_a_different_body_is_refused(
    store: SqliteStore,
) -> None:
    """The first answer comes back for the same request; another body with the key is 422."""
    key = IdempotencyKey.of("alice", "k1", "POST /x", {"qty": "1"})
    assert await store.read(lambda tx: idempotency.replay(tx, key)) is None

    def first(tx: Tx) -> None:
        idempotency.record(tx, key, {"id": "p1"}, NOW)

    await store.transact(first)
    assert await store.read(lambda tx: idempotency.replay(tx, key)) == {"id": "p1"}
    other_body = IdempotencyKey.of("alice", "k1", "POST /x", {"qty": "2"})
    other_route = IdempotencyKey.of("alice", "k1", "POST /y", {"qty": "1"})
    for other in (other_body, other_route):
        with pytest.raises(ValidationError, match="already used for a different request"):
            await store.read(lambda tx, k=other: idempotency.replay(tx, k))
