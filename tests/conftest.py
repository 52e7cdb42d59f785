"""Shared fixtures: a real SQLite store, a wired System, a live HTTP server.

Everything here is the real code on real files and sockets; nothing of ours is mocked.
Fixtures (all function-scoped, each test gets fresh ones):

- `clock` -> `ManualClock`: starts at 2026-01-01T00:00:00Z and only moves when told
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
- `live_server` -> `LiveServer`: the real FastAPI app (`cogmora.cli.serve.api_server`) on
  uvicorn, on a free loopback port, in the test's event loop; `.url`, `.system`, and
  `.client(token=None)` -> an `httpx.AsyncClient` with the bearer header set (close it,
  or use it as `async with`).

Other engineers: override `catalog` or `clock` in a nearer conftest to change them for a
directory; everything built on top follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from cogmora.cli.compose import System, build_system
from cogmora.cli.serve import api_server
from cogmora.domain.models import PriceQuote
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.sqlite import SqliteStore

SPOT_SYMBOLS = ("BTC-USDT", "ETH-USDT")
FUTURES_SYMBOLS = ("XBTUSDTM", "ETHUSDTM")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class ManualClock:
    """A clock that stands still until the test moves it."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, at: datetime) -> None:
        self._now = at


@dataclass
class LiveServer:
    url: str
    system: System

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10.0)


QuoteFn = Callable[..., PriceQuote]
MakeUser = Callable[..., Awaitable[tuple[str, str]]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


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
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        task.cancel()
        raise RuntimeError("the API server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    yield LiveServer(f"http://127.0.0.1:{port}", system)
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)
