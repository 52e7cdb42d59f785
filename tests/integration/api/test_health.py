"""/healthz tells the truth (SPEC 5.1) and /livez stays 200, over real HTTP against a real
worker: the KuCoin simulator going away, and a PostgreSQL server refusing the store."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from cogmora.cli.compose import System, build_system
from cogmora.cli.processes import start_components
from cogmora.cli.serve import api_server
from cogmora.cli.stores import open_store
from cogmora.cli.worker import start_worker
from cogmora.emulators import EmulatorUnavailable, FirestoreOnPort
from cogmora.feeds.kucoin.client import FeedOptions
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig

QUICK = FeedOptions(backoff_initial_s=0.1, backoff_max_s=0.5)



async def serve_api(
    system: System, http_timeout: float
) -> tuple[uvicorn.Server, httpx.AsyncClient]:
    """The API of `system` served on a free port in this event loop, and a client of it."""
    from conditions import until as until_true

    server = api_server(system, "127.0.0.1", 0)
    system.supervisor.start("api", server.serve)
    await until_true(lambda: server.started, 30.0, "the API serving")
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=http_timeout)

@dataclass
class Probed:
    """A worker, close handler and API in this event loop, and every /livez answer seen."""

    sim: KucoinSimulator
    system: System
    http: httpx.AsyncClient
    livez: list[int] = field(default_factory=list)

    async def health(self) -> tuple[int, dict[str, Any]]:
        live = await self.http.get("/livez")
        self.livez.append(live.status_code)
        answer = await self.http.get("/healthz")
        return answer.status_code, answer.json()

    async def until(
        self, check: Callable[[int, dict[str, Any]], bool], within: float = 60.0
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            code, body = await self.health()
            if check(code, body):
                return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"health never matched; last: {code} {body}")
            await asyncio.sleep(0.2)

    async def open_long(self, symbol: str = "BTC-USDT") -> str:
        _, token = await self.system.accounts.create_user(
            f"u{uuid.uuid4().hex[:8]}", Decimal("100000")
        )
        await self.sim.set_price(symbol, "60000")
        opened = await self.http.post(
            "/v1/positions",
            json={"symbol": symbol, "market": "spot", "side": "long", "qty": "0.1",
                  "stopLoss": "59000"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert opened.status_code == 201, opened.text
        await asyncio.wait_for(self.sim.wait_subscribed([symbol]), 60)
        return str(opened.json()["id"])

    async def status_of(self, position_id: str) -> str:
        from cogmora.store import queries as q

        for status in ("open", "closing", "closed"):
            rows = await self.system.store.read(
                lambda tx, s=status: tx.query(q.positions_with_status(s))
            )
            if any(path.endswith(position_id) for path, _ in rows):
                return status
        return "missing"


@contextlib.asynccontextmanager
async def probed(store_url: str, sim: KucoinSimulator) -> AsyncIterator[Probed]:
    settings = Settings(
        store_url=store_url, kucoin_spot_url=sim.spot_url, kucoin_futures_url=sim.futures_url
    )
    store = open_store(store_url)
    await store.start()
    system = build_system(settings, store)
    await start_components(system, ("close-handler",))
    await start_worker(system, QUICK)
    server, http = await serve_api(system, http_timeout=30)
    try:
        yield Probed(sim, system, http)
    finally:
        await http.aclose()
        server.should_exit = True
        await system.supervisor.stop()
        await system.aclose()
        await store.close()


def healthy(code: int, body: dict[str, Any]) -> bool:
    return code == 200 and body["status"] == "ok"


async def test_feeds_down_make_healthz_503_naming_the_feed_and_back_make_it_200(
    tmp_path: Path,
) -> None:
    """The simulator gone is a 503 naming the spot feed, back a 200; /livez 200 throughout."""
    sim = await KucoinSimulator(SimulatorConfig(tick_rate=0, seed=3)).start()
    ports = [int(u.rsplit(":", 1)[1]) for u in (sim.spot_url, sim.futures_url)]
    # A hang anywhere fails here, with the stack of whatever it was waiting for.
    async with asyncio.timeout(300), probed(f"sqlite:///{tmp_path / 'h.db'}", sim) as p:
        await p.open_long()
        await p.until(healthy)

        await sim.stop()
        down = await p.until(lambda code, body: code == 503)
        assert down["status"] == "unhealthy"
        assert any(r.startswith("spot feed disconnected") for r in down["reasons"]), down
        assert not any("futures" in r for r in down["reasons"])  # it watches nothing
        metrics = (await p.http.get("/metrics")).text
        assert 'cogmora_health_problem{code="feed_disconnected",subject="spot"} 1.0' in metrics
        assert "cogmora_healthy 0.0" in metrics

        p.sim = sim = await KucoinSimulator(
            SimulatorConfig(tick_rate=0, seed=3, spot_port=ports[0], futures_port=ports[1])
        ).start()
        try:
            back = await p.until(healthy)
            assert back["reasons"] == []
            metrics = (await p.http.get("/metrics")).text
            assert 'cogmora_health_problem{code="feed_disconnected",subject="spot"} 0.0' in metrics
            assert "cogmora_healthy 1.0" in metrics
        finally:
            await sim.stop()
    assert p.livez and set(p.livez) == {200}


@dataclass
class PgRole:
    """A login role of its own owning a fresh schema, so this test can cut only itself off."""

    admin: str
    role: str = field(default_factory=lambda: f"health_{uuid.uuid4().hex[:10]}")

    @property
    def url(self) -> str:
        base = self.admin.replace("postgresql://", f"postgresql://{self.role}@", 1)
        return f"{base}?schema={self.role}"

    def sql(self, *statements: str) -> None:
        # Bounded: an administrative statement that waits on a lock fails instead of hanging.
        with psycopg.connect(
            self.admin, autocommit=True, connect_timeout=10,
            options="-c lock_timeout=20s -c statement_timeout=30s",
        ) as conn:
            for statement in statements:
                conn.execute(statement)

    def cut(self) -> None:
        self.sql(
            f'ALTER ROLE "{self.role}" CONNECTION LIMIT 0',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{self.role}'",
        )

    def restore(self) -> None:
        self.sql(f'ALTER ROLE "{self.role}" CONNECTION LIMIT -1')


@pytest.fixture
def pg_role(pg_url: str) -> Iterator[PgRole]:
    r = PgRole(pg_url)
    r.sql(f'CREATE ROLE "{r.role}" LOGIN', f'CREATE SCHEMA "{r.role}" AUTHORIZATION "{r.role}"')
    yield r
    r.restore()
    r.sql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{r.role}'",
        f'DROP SCHEMA "{r.role}" CASCADE',
        f'DROP ROLE "{r.role}"',
    )


Check = Callable[[int, dict[str, Any]], bool]


def reason(fragment: str) -> Check:
    return lambda code, body: code == 503 and any(fragment in r for r in body["reasons"])


@pytest.mark.postgres
async def test_commits_failing_past_five_seconds_answer_503_until_the_store_is_back(
    pg_role: PgRole,
) -> None:
    """A crossing that cannot commit for over 5 s is a 503 naming the commits; 200 once it lands."""
    sim = await KucoinSimulator(SimulatorConfig(tick_rate=0, seed=4)).start()
    try:
        async with asyncio.timeout(400), probed(pg_role.url, sim) as p:
            pid = await p.open_long()
            await p.until(healthy)

            await asyncio.to_thread(pg_role.cut)  # never block the worker's loop
            await sim.set_price("BTC-USDT", "58000")
            down = await p.until(reason("crossing commits have not succeeded"), within=90)
            assert down["worker"]["commits"]["failingSeconds"] > 5
            assert any("book trails" in r for r in down["reasons"])  # its feed is cut off too

            await asyncio.to_thread(pg_role.restore)
            await p.until(healthy, within=120)
            await until(lambda: _is(p, pid, "closed"), within=60)
    finally:
        await sim.stop()
    assert p.livez and set(p.livez) == {200}


async def _is(p: Probed, pid: str, status: str) -> bool:
    return await p.status_of(pid) == status


async def until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


# ---------------------------------------------------------------- the store itself
# An API-only process has no feed and no commits of its own: the store probe
# (cogmora.health.StoreProbe) is what tells an orchestrator that its store is away.

STORE_DOWN = 'cogmora_health_problem{code="store_unreachable",subject="store"}'


@dataclass
class Serving:
    system: System
    http: httpx.AsyncClient
    livez: list[int] = field(default_factory=list)

    async def until(self, check: Check, within: float = 120.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            self.livez.append((await self.http.get("/livez")).status_code)
            answer = await self.http.get("/healthz")
            body = answer.json()
            if check(answer.status_code, body):
                return dict(body)
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"health never matched; last: {answer.status_code} {body}")
            await asyncio.sleep(0.2)

    async def metrics(self) -> str:
        return (await self.http.get("/metrics")).text


@contextlib.asynccontextmanager
async def serving(store: Any, store_url: str) -> AsyncIterator[Serving]:
    """The API alone on `store` (already started), in this event loop."""
    system = build_system(Settings(store_url=store_url), store)
    server, http = await serve_api(system, http_timeout=60)
    try:
        yield Serving(system, http)
    finally:
        await http.aclose()
        server.should_exit = True
        await system.supervisor.stop()
        await system.aclose()


def store_reachable(code: int, body: dict[str, Any]) -> bool:
    return code == 200 and body["storeProbe"]["reachable"] is True


async def test_a_reachable_store_is_shown_in_healthz_and_metrics(tmp_path: Path) -> None:
    """SQLite (an embedded file cannot go away under an open connection in a way a read
    would notice; the server stores below can): 200, the probe's answer in the body."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    await store.start()
    try:
        async with asyncio.timeout(300), serving(store, url) as s:
            body = await s.until(store_reachable)
            assert body["status"] == "ok" and body["storeProbe"]["name"] == store.name
            assert body["storeProbe"]["error"] is None
            assert "cogmora_healthy 1.0" in await s.metrics()
            assert STORE_DOWN not in await s.metrics()  # never down: no series yet
    finally:
        await store.close()


@pytest.mark.postgres
async def test_an_unreachable_postgresql_makes_healthz_503_naming_it_until_it_is_back(
    pg_role: PgRole,
) -> None:
    """The API's role is cut off the server (its connections terminated, new ones
    refused): 503 naming the store within the probe's bounds, 200 once it may connect
    again; the gauge goes 1 then 0; /livez 200 throughout."""
    store = open_store(pg_role.url)
    await store.start()
    try:
        async with asyncio.timeout(400), serving(store, pg_role.url) as s:
            await s.until(store_reachable)

            await asyncio.to_thread(pg_role.cut)
            down = await s.until(reason(f"store {store.name}"))
            assert down["status"] == "unhealthy"
            assert down["storeProbe"]["reachable"] is False
            assert f"{STORE_DOWN} 1.0" in await s.metrics()
            assert "cogmora_healthy 0.0" in await s.metrics()

            await asyncio.to_thread(pg_role.restore)
            back = await s.until(store_reachable, within=180)
            assert back["status"] == "ok" and back["reasons"] == []
            assert f"{STORE_DOWN} 0.0" in await s.metrics()
    finally:
        await store.close()
    assert s.livez and set(s.livez) == {200}


@pytest.fixture
def own_emulator(tmp_path: Path) -> Iterator[FirestoreOnPort]:
    """A Firestore emulator of this test's own on a fixed free port (never the shared one),
    killed and started again on the same port."""
    try:
        emu = FirestoreOnPort(tmp_path)
    except EmulatorUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield emu
    finally:
        emu.kill()


async def test_a_stopped_firestore_emulator_makes_healthz_503_naming_it_until_it_is_back(
    own_emulator: FirestoreOnPort,
) -> None:
    """Firestore (the emulator killed, then started again on the same port): 503 naming
    the store, then 200; /livez 200 throughout."""
    from cogmora.store.firestore import FirestoreStore

    emu = own_emulator
    await asyncio.to_thread(emu.start)
    project = f"demo-health-{uuid.uuid4().hex[:8]}"
    saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host  # read once, when the client is made
    try:
        store = FirestoreStore(project, feed_groups=frozenset())
        await store.start()
    finally:
        if saved is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = saved
    try:
        async with asyncio.timeout(600), serving(store, f"firestore://{project}") as s:
            await s.until(store_reachable, within=180)

            await asyncio.to_thread(emu.kill)
            down = await s.until(reason(f"store {store.name}"), within=180)
            assert down["storeProbe"]["reachable"] is False
            assert f"{STORE_DOWN} 1.0" in await s.metrics()

            await asyncio.to_thread(emu.start)
            back = await s.until(store_reachable, within=240)
            assert back["status"] == "ok"
            assert f"{STORE_DOWN} 0.0" in await s.metrics()
    finally:
        await store.close()
    assert s.livez and set(s.livez) == {200}
