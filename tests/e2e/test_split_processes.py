"""`cogmora api`, `cogmora worker` and `cogmora jobs` as three separate processes on one
store trade end to end (open, trigger, stop, settle), on SQLite, PostgreSQL and Firestore.

About 5-15 s per backend on a loaded 2-core machine, so all three run by default. The
processes are the installed console script against the KuCoin simulator on loopback;
the test talks to them only through HTTP, the CLI and the simulator's controls. The API
process has no feed: it must load KuCoin's symbol lists itself and fill at a REST price.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cogmora_cli import COGMORA, run

from cogmora.simulator import KucoinSimulator, SimulatorConfig

SYMBOL = "XBTUSDTM"
T = TypeVar("T")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("firestore", id="firestore"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    env: dict[str, str]
    http: httpx.AsyncClient
    procs: dict[str, subprocess.Popen[bytes]]
    logs: Path

    async def cli(self, *args: str) -> str:
        code, out, err = await run(*args, env=self.env)
        assert code == 0, err
        return out

    def alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited: " + self.log(name)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]


async def until(check: Callable[[], Awaitable[T | None]], what: str, within: float = 60) -> T:
    """Poll `check` until it answers something truthy; fail naming `what` at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {within} s: {what}")
        await asyncio.sleep(0.1)


def spawn(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`cogmora COMMAND` in the background, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen([COGMORA, command], env=env, stdout=out, stderr=subprocess.STDOUT)


def store_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """COGMORA_STORE on a fresh SQLite file, PostgreSQL schema or Firestore project."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'split.db'}"
    if kind == "postgres":
        return str(request.getfixturevalue("pg_schema_url"))
    request.getfixturevalue("firestore_emulator")
    return f"firestore://demo-split-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    simulator = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=11))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture(params=BACKENDS)
async def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, sim: KucoinSimulator
) -> AsyncIterator[Deployment]:
    url = store_url(request.param, request, tmp_path)
    port = free_port()
    env = {
        **os.environ,
        "COGMORA_STORE": url,
        "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
        "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
        "COGMORA_API_PORT": str(port),
        "COGMORA_LOG_LEVEL": "WARNING",
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20)
    deployment = Deployment(env, http, procs, tmp_path)
    try:
        for name in ("worker", "jobs", "api"):
            procs[name] = spawn(name, env, tmp_path / f"{name}.log")

        async def api_up() -> bool:
            deployment.alive()
            try:
                await http.get("/healthz")
            except httpx.TransportError:
                return False
            return True

        await until(api_up, "the API answers", within=90)
        yield deployment
    finally:
        await http.aclose()
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_three_processes_open_trigger_stop_and_settle(
    deployment: Deployment, sim: KucoinSimulator
) -> None:
    """Through the API process alone: a futures position with a stop loss opens at KuCoin's
    price, a trigger fires and opens its position, both stops close and settle, and the
    ledger sums to the balance."""
    d = deployment
    token = json.loads(await d.cli("users", "create", "sam", "--balance", "100000"))["token"]
    auth = {"Authorization": f"Bearer {token}"}
    price = sim.price(SYMBOL)

    def level(factor: str) -> str:
        return str((price * Decimal(factor)).quantize(Decimal("0.1")))

    opened = await d.http.post(
        "/v1/positions",
        json={
            "symbol": SYMBOL,
            "market": "futures",
            "side": "long",
            "qty": "0.01",
            "leverage": "5",
            "stopLoss": level("0.95"),
        },
        headers=auth,
    )
    assert opened.status_code == 201, opened.text + d.log("api")
    first = opened.json()["id"]
    placed = await d.http.post(
        "/v1/triggers",
        json={
            "symbol": SYMBOL,
            "market": "futures",
            "condition": {"op": "below", "price": level("0.97")},
            "action": {"side": "long", "qty": "0.02", "leverage": "5", "stopLoss": level("0.93")},
        },
        headers=auth,
    )
    assert placed.status_code == 201, placed.text
    tid = placed.json()["id"]

    await asyncio.wait_for(sim.wait_subscribed([SYMBOL]), 60)

    async def get(path: str) -> Any:
        response = await d.http.get(path, headers=auth)
        assert response.status_code == 200, response.text
        return response.json()

    # Through the trigger: it fires and its position opens (the feed and the book are the
    # worker's; the API only sees the store).
    async def fired() -> str | None:
        await sim.set_price(SYMBOL, level("0.965"))
        doc = await get(f"/v1/triggers/{tid}")
        return doc["details"].get("positionId") if doc["details"]["status"] == "triggered" else None

    second = await until(fired, "the trigger fired")
    assert (await get(f"/v1/positions/{second}"))["details"]["status"] == "open"
    assert (await get(f"/v1/positions/{first}"))["details"]["status"] == "open"

    # Through both stops: each closes at the tick and is settled by a close handler.
    async def both_closed() -> list[Any] | None:
        await sim.set_price(SYMBOL, level("0.92"))
        docs = [await get(f"/v1/positions/{p}") for p in (first, second)]
        return docs if all(p["details"]["status"] == "closed" for p in docs) else None

    closed = await until(both_closed, "both positions stopped out and settled")
    assert {p["details"]["closeReason"] for p in closed} == {"stop_loss"}

    ledger = await get("/v1/ledger")
    account = await get("/v1/account")
    assert sum(Decimal(e["amount"]) for e in ledger) == Decimal(account["balance"])
    assert [e["kind"] for e in ledger].count("close") == 2
    d.alive()
