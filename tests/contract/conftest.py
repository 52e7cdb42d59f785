"""One contract suite, every Store backend: the `backend` fixture runs each test on SQLite,
PostgreSQL and Firestore (its emulator), so the backends cannot drift apart.

PostgreSQL: the server on 127.0.0.1:5432 (COGMORA_TEST_PG overrides), one fresh schema per
test, dropped after. Firestore: FIRESTORE_EMULATOR_HOST if set, else the emulator from
the Google Cloud CLI's `cloud-firestore-emulator` package, started once per session on a
free loopback port; one fresh project id per test. A backend that cannot be reached is
skipped with the reason.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from cogmora.store.port import Store
from cogmora.store.sqlite import SqliteStore

EMULATOR_SCRIPTS = (
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator",
    "/usr/share/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator",
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("firestore", id="firestore"),
]


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _emulator_script() -> str | None:
    gcloud = shutil.which("gcloud")
    candidates = list(EMULATOR_SCRIPTS)
    if gcloud is not None:
        root = Path(gcloud).resolve().parent.parent
        candidates.insert(
            0, str(root / "platform/cloud-firestore-emulator/cloud_firestore_emulator")
        )
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[str]:
    """host:port of a Firestore emulator (FIRESTORE_EMULATOR_HOST, or one started here)."""
    given = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if given:
        yield given
        return
    script = _emulator_script()
    if script is None:
        pytest.skip(
            "no Firestore emulator: set FIRESTORE_EMULATOR_HOST, or install the Google Cloud "
            "CLI's cloud-firestore-emulator component (Debian package "
            "google-cloud-cli-firestore-emulator); firebase-tools downloads its jar at run "
            "time, which this machine cannot"
        )
    if shutil.which("java") is None:
        pytest.skip("the Firestore emulator needs Java (11+), which is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [script, "start", "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=60)
            seen.append(line)
            if "Dev App Server is now running" in line:
                break
            if line == "":
                pytest.skip("the Firestore emulator exited at start:\n" + "".join(seen[-20:]))
    except queue.Empty:
        os.killpg(proc.pid, signal.SIGTERM)
        pytest.skip("the Firestore emulator did not start within 60 s")
    host = f"127.0.0.1:{port}"
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    try:
        yield host
    finally:
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


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
            request.getfixturevalue("firestore_emulator")
            self._where = f"demo-contract-{uuid.uuid4().hex[:12]}"

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
