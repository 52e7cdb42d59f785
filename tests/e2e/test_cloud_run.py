"""`cogmora worker` as Cloud Run runs it: PORT set, probed over HTTP, stopped with SIGTERM
in the middle of a storm: it exits 0 and leaves nothing half-written."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import httpx
import pytest
from cogmora_cli import COGMORA
from storm_kit import audit, count, seed

from cogmora.domain.enums import PositionStatus
from cogmora.simulator import KucoinSimulator, SimulatorConfig

POSITIONS = 5_000
USERS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def poll(
    http: httpx.AsyncClient, path: str, want: int, within: float = 60.0, status: str | None = None
) -> dict:
    """The first answer with code `want` (and body status `status`, if given: a 200 is also
    "recovering" while a start-up REST price is replayed)."""
    deadline = asyncio.get_running_loop().time() + within
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            answer = await http.get(path)
            if answer.status_code == want and (
                status is None or answer.json().get("status") == status
            ):
                return dict(answer.json())
            last = (answer.status_code, answer.text[:500])
        except httpx.TransportError as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never answered {want}; last: {last}")


async def test_worker_serves_probes_on_port_and_drains_on_sigterm(tmp_path: Path) -> None:
    """With PORT set the worker answers /livez and /healthz; SIGTERM mid-storm exits 0, settled."""
    db = tmp_path / "run.db"
    await seed(db, POSITIONS, USERS)
    sim = await KucoinSimulator(SimulatorConfig(tick_rate=0, seed=11)).start()
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "COGMORA_API_HOST": "127.0.0.1",
        "COGMORA_STORE": f"sqlite:///{db}",
        "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
        "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
        "COGMORA_LOG_LEVEL": "INFO",
    }
    log = (tmp_path / "worker.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        COGMORA, "worker", env=env, stdout=log, stderr=log
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            alive = await poll(http, "/livez", 200)
            assert alive["status"] == "alive"
            ready = await poll(http, "/healthz", 200, status="ok")
            assert ready["worker"]["feeds"]["spot"]["connected"] is True
            assert "cogmora_healthy 1.0" in (await http.get("/metrics")).text

            await asyncio.wait_for(sim.wait_subscribed(["BTC-USDT"]), 60)
            await sim.set_price("BTC-USDT", "58000")
            for _ in range(600):  # the crossing committed: SIGTERM lands mid-settlement
                if await count(db, PositionStatus.OPEN) < POSITIONS:
                    break
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
        await sim.stop()
    output = (tmp_path / "worker.log").read_text()
    assert code == 0, output[-3000:]
    assert '"drained"' in output or "drained" in output
    closed, bad = await audit(db, USERS)  # one history and one close entry per closed one
    assert bad == 0
    assert await count(db, PositionStatus.OPEN) == 0
    assert await count(db, PositionStatus.CLOSING) == 0  # the drain settled them all
    assert closed == POSITIONS


@pytest.mark.parametrize("role", ["jobs", "api"])
async def test_every_role_answers_its_probes_on_port_and_exits_0_on_sigterm(
    role: str, tmp_path: Path
) -> None:
    """`cogmora jobs` and `cogmora api` with PORT serve /livez and /healthz and stop with 0."""
    sim = await KucoinSimulator(SimulatorConfig(tick_rate=0, seed=12)).start()
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "COGMORA_API_HOST": "127.0.0.1",
        "COGMORA_API_PORT": str(free_port()),  # PORT wins over it
        "COGMORA_STORE": f"sqlite:///{tmp_path / 'role.db'}",
        "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
        "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
    }
    log = (tmp_path / f"{role}.log").open("w")
    proc = await asyncio.create_subprocess_exec(COGMORA, role, env=env, stdout=log, stderr=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert (await poll(http, "/livez", 200))["status"] == "alive"
            await poll(http, "/healthz", 200, status="ok")
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
        await sim.stop()
    assert code == 0, (tmp_path / f"{role}.log").read_text()[-3000:]
