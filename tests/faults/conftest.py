"""Seeded race runs against a real engine and a real store (SQLite; PostgreSQL when the
server at 127.0.0.1:5432 answers; Firestore on its emulator, a fresh project per test).

Tests marked `faults` run their long version only when selected (`-m faults`); otherwise
they run a small seeded version, so the default suite still exercises every race.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cogmora.store.port import Store
from cogmora.store.sqlite import SqliteStore


@pytest.fixture
def tries(request: pytest.FixtureRequest) -> int:
    """How many times a race is run: 1,000 under `-m faults` (COGMORA_FAULT_TRIES
    overrides), a few dozen otherwise (fewer on Firestore, whose emulator commits slowly)."""
    selected = "faults" in (request.config.option.markexpr or "")
    if selected:
        return int(os.environ.get("COGMORA_FAULT_TRIES", 1000))
    return 8 if "firestore" in request.node.callspec.params.get("race_store", "") else 25


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("firestore", id="firestore"),
    ]
)
async def race_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A started store of each backend, on fresh data, closed (and dropped) after."""
    if request.param == "firestore":
        from cogmora.store.firestore import FirestoreStore

        store = FirestoreStore(request.getfixturevalue("firestore_projects").new("demo-races"))
        await store.start()
        yield store
        await store.close()
        return
    if request.param == "sqlite":
        store: Store = SqliteStore(tmp_path / "races.db")
        await store.start()
        yield store
        await store.close()
        return
    from cogmora.store.postgres import PostgresStore

    store = PostgresStore(request.getfixturevalue("pg_schema_url"), pool_size=4)
    await store.start()
    try:
        yield store
    finally:
        await store.close()
