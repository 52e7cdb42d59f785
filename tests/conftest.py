"""Shared fixtures: a real SQLite store, a wired System, a live HTTP server.

Everything here is the real code on real files and sockets; nothing of ours is mocked.
Fixtures (all function-scoped, each test gets fresh ones):

- `clock` -> `cogmora.testing.ManualClock`: starts at 2026-01-01T00:00:00Z and only moves when told
  (`clock.advance(seconds)`, `clock.set(datetime)`), so price freshness is deterministic.
- `db_path` -> `Path`: where this test's SQLite file lives (inside `tmp_path`).
- `store` -> a started `SqliteStore` on `db_path`, closed after the test.
- `catalog` -> `SymbolCatalog` with `SPOT_SYMBOLS` and `FUTURES_SYMBOLS` below.
- `system` -> `build_system(Settings(store_url=...), store, catalog=..., clock=clock)`, the
  production composition root; feed it prices with `system.live.put(PriceQuote(...))` or
  the `quote` helper.
- `quote` -> `quote(symbol, price, age=0.0)`: puts a live price seen `age` seconds ago.
- `make_user` -> `await make_user(uid, balance="10000")` -> `(uid, token)` via
  `Accounts.create_user` (ledger entry included).
- `pg_url` -> the PostgreSQL server's URL (session; skips when unreachable);
  `pg_schema_url` -> a URL on a fresh schema, dropped after the test.
- `firestore_emulator` (session) -> host:port of a Firestore emulator
  (FIRESTORE_EMULATOR_HOST, or gcloud's emulator started once per session on a free
  loopback port and put in FIRESTORE_EMULATOR_HOST, so subprocesses find it too; started
  by `cogmora.emulators`, as the benchmarks start theirs), or a skip naming what is
  missing; use a fresh project id per test, from `firestore_projects` (session) ->
  `FirestoreProjects`: `.new(prefix)` is a fresh project id, remembered so the index
  guard (tests/firebase/test_index_guard.py, run last) reads every project's index usage.
  Tests marked `after_firestore` run after all others.
- `live_server` -> `LiveServer`: the real FastAPI app (`cogmora.cli.serve.api_server`) on
  uvicorn, on a free loopback port, in the test's event loop; `.url`, `.system`, `.app`
  (the FastAPI app it serves), and `.client(token=None)` -> an `httpx.AsyncClient` with
  the bearer header set (close it, or use it as `async with`).

Other engineers: override `catalog` or `clock` in a nearer conftest to change them for a
directory; everything built on top follows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from cogmora import emulators
from cogmora.cli.compose import System, build_system
from cogmora.cli.serve import api_server
from cogmora.domain.models import PriceQuote
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.sqlite import SqliteStore
from cogmora.testing import EPOCH, ManualClock
from emulators import FirestoreProjects

SPOT_SYMBOLS = ("BTC-USDT", "ETH-USDT")
FUTURES_SYMBOLS = ("XBTUSDTM", "ETHUSDTM")

PG_URL = os.environ.get("COGMORA_TEST_PG", "postgresql://127.0.0.1:5432/test")


@dataclass
class LiveServer:
    url: str
    system: System
    app: FastAPI  # the app it serves: its route table is what tests walk

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10.0)


QuoteFn = Callable[..., PriceQuote]
MakeUser = Callable[..., Awaitable[tuple[str, str]]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(EPOCH)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cogmora.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    st = SqliteStore(db_path)
    await st.start()
    yield st
    await st.close()


@pytest.fixture
def catalog() -> SymbolCatalog:
    return SymbolCatalog(spot=SPOT_SYMBOLS, futures=FUTURES_SYMBOLS)


@pytest.fixture
def system(
    store: SqliteStore, db_path: Path, catalog: SymbolCatalog, clock: ManualClock
) -> System:
    settings = Settings(store_url=f"sqlite:///{db_path}")
    return build_system(settings, store, catalog=catalog, clock=clock)


@pytest.fixture
def quote(system: System, clock: ManualClock) -> QuoteFn:
    def put(symbol: str, price: str | Decimal, age: float = 0.0) -> PriceQuote:
        q = PriceQuote(symbol, Decimal(price), clock.now() - timedelta(seconds=age))
        system.live.put(q)
        return q

    return put


@pytest.fixture
def make_user(system: System) -> MakeUser:
    async def make(uid: str, balance: str | Decimal = "10000") -> tuple[str, str]:
        user, token = await system.accounts.create_user(uid, Decimal(balance))
        return user.uid, token

    return make


@pytest.fixture
async def live_server(system: System) -> AsyncIterator[LiveServer]:
    server = api_server(system, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 60  # generous: a loaded machine
    while not (server.started or task.done()) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    if not server.started:
        task.cancel()
        raise RuntimeError("the API server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    yield LiveServer(f"http://127.0.0.1:{port}", system, server.config.app)
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL server's URL (COGMORA_TEST_PG overrides), or a skip naming why it
    cannot be used."""
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
    return PG_URL


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A store URL on a fresh schema of its own, dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{pg_url}?schema={schema}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[str]:
    """host:port of a Firestore emulator (FIRESTORE_EMULATOR_HOST, or one started here)."""
    try:
        with emulators.firestore_emulator(within=60) as host:
            yield host
    except emulators.EmulatorUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def firestore_projects(firestore_emulator: str) -> FirestoreProjects:
    return FirestoreProjects(firestore_emulator)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `after_firestore` (the index guard) run after every other test."""
    last = [i for i in items if i.get_closest_marker("after_firestore")]
    items[:] = [i for i in items if not i.get_closest_marker("after_firestore")] + last


def _dump_asyncio_tasks(signum: int, frame: object) -> None:
    """`kill -USR1 <pytest pid>`: every task of the running event loop, with its stack, into
    `$TMPDIR/cogmora-tasks-<pid>.txt` (pytest captures fd 2); a hung await shows where it
    waits, which a thread dump (only the selector) does not."""
    import tempfile

    path = Path(tempfile.gettempdir()) / f"cogmora-tasks-{os.getpid()}.txt"
    with path.open("a") as out:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            print("no running event loop", file=out)
            return
        for task in asyncio.all_tasks(loop):
            print(f"--- {task!r}", file=out)
            task.print_stack(file=out)


signal.signal(signal.SIGUSR1, _dump_asyncio_tasks)


AUTH_PROJECT = "demo-cogmora"  # .ci/run starts the Auth emulator for this project


@pytest.fixture(scope="session")
def auth_emulator() -> Iterator[str]:
    """host:port of firebase-tools' Auth emulator (FIREBASE_AUTH_EMULATOR_HOST, or one
    started here for the session)."""
    try:
        with emulators.auth_emulator(AUTH_PROJECT) as host:
            yield host
    except emulators.EmulatorUnavailable as exc:
        pytest.skip(str(exc))
