"""One contract suite, every Store backend: the `backend` fixture runs each test on SQLite,
PostgreSQL and Firestore (its emulator), so the backends cannot drift apart.

PostgreSQL: one fresh schema per test, dropped after; Firestore: one fresh project id per
test. The servers come from the `pg_url` and `firestore_emulator` fixtures in
tests/conftest.py; a backend that cannot be reached is skipped with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from cogmora.store.port import Store
from cogmora.store.sqlite import SqliteStore

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("firestore", id="firestore"),
]


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Backend:
    """Opens store instances on one backend's data; each `open()` is a new instance on the
    same data, as another process would have."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.kind = kind
        self._request = request
        self._opened: list[Store] = []
        self._cleanup: list[tuple[str, str]] = []
        if kind == "sqlite":
            self._where = str(tmp_path / "contract.db")
        elif kind == "postgres":
            url = request.getfixturevalue("pg_url")
            schema = f"contract_{uuid.uuid4().hex[:12]}"
            self._where = f"{url}?schema={schema}"
            self._cleanup.append((url, schema))
        else:
            self._where = request.getfixturevalue("firestore_projects").new("demo-contract")

    def make(self) -> Store:
        if self.kind == "sqlite":
            return SqliteStore(self._where)
        if self.kind == "postgres":
            from cogmora.store.postgres import PostgresStore

            return PostgresStore(self._where, pool_size=4)
        from cogmora.store.firestore import FirestoreStore

        return FirestoreStore(self._where)

    async def open(self) -> Store:
        store = self.make()
        await store.start()
        self._opened.append(store)
        return store

    async def close(self) -> None:
        try:
            for store in reversed(self._opened):
                await store.close()
        finally:
            for url, schema in self._cleanup:
                drop_schema(url, schema)


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    b = Backend(request.param, request, tmp_path)
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()
