"""`cogmora agent run UID` and `cogmora jobs` as a user runs them, against the simulator."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cogmora_cli import COGMORA, run

from cogmora.cli.compose import build_system
from cogmora.domain.paths import agent_config_path, user_path
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store import queries as q
from cogmora.store.sqlite import SqliteStore


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    sim = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=5))
    await sim.start()
    try:
        yield {
            "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
            "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
            "COGMORA_STORE": f"sqlite:///{tmp_path / 'agent.db'}",
            "COGMORA_LOG_LEVEL": "WARNING",
        }
    finally:
        await sim.stop()


async def in_store(env: dict[str, str], body: Any) -> Any:
    """Open the command's store file in this process, as an operator's script would."""
    store = SqliteStore(env["COGMORA_STORE"].removeprefix("sqlite:///"))
    await store.start()
    try:
        return await body(build_system(Settings(), store))
    finally:
        await store.close()


async def test_agent_run_prints_and_logs_one_decision(env: dict[str, str]) -> None:
    """A run on demand prints the decision as JSON, logs it, and leaves the schedule alone."""
    code, out, err = await run("users", "create", "ann", "--balance", "10000", env=env)
    assert code == 0, err

    async def configure(system: Any) -> str:
        await system.agent_configs.put(
            "ann", {"enabled": True, "schedule": "every 1h", "symbols": ["ETH-USDT", "XBTUSDTM"]}
        )
        doc = await system.store.read(lambda tx: tx.get(agent_config_path("ann")))
        return str(doc["nextRunAt"])

    next_run = await in_store(env, configure)
    code, out, err = await run("agent", "run", "ann", env=env)
    assert code == 0, err
    decision = json.loads(out)
    assert decision["uid"] == "ann" and decision["provider"] == "builtin"
    assert decision["error"] is None
    assert decision["scheduledFor"] is None
    assert decision["inputs"]["candles"]["ETH-USDT"]["count"] == 100
    assert decision["inputs"]["candles"]["XBTUSDTM"]["interval"] == "1hour"
    assert len(decision["actions"]) >= 2

    async def check(system: Any) -> None:
        query = q.Query("agentDecisions", parent=user_path("ann")).order_by("createdAt", "desc")
        rows = await system.store.read(lambda tx: tx.query(query))
        assert [p.rsplit("/", 1)[1] for p, _ in rows] == [decision["id"]]
        doc = await system.store.read(lambda tx: tx.get(agent_config_path("ann")))
        assert doc["nextRunAt"] == next_run

    await in_store(env, check)


async def test_agent_run_refuses_unknown_users_and_empty_configs(env: dict[str, str]) -> None:
    """One clear line and exit code 1, no traceback."""
    code, _, err = await run("agent", "run", "ghost", env=env)
    assert code == 1 and "user ghost not found" in err
    assert "Traceback" not in err
    await run("users", "create", "bob", env=env)
    code, _, err = await run("agent", "run", "bob", env=env)
    assert code == 1 and "no symbols" in err


async def test_cogmora_jobs_runs_a_due_agent_and_the_watchlist(env: dict[str, str]) -> None:
    """The `jobs` process finds a due agent and the watchlist slot on its own, then stops
    cleanly on SIGINT."""
    await run("users", "create", "ann", "--balance", "10000", env=env)

    async def prepare(system: Any) -> None:
        await system.agent_configs.put(
            "ann", {"enabled": True, "schedule": "every 1h", "symbols": ["ETH-USDT"]}
        )
        await system.watchlists.put("ann", ["ETH-USDT", "NOPE-USDT"])
        path = agent_config_path("ann")
        doc = await system.store.read(lambda tx: tx.get(path))
        due = {**doc, "nextRunAt": "2020-01-01T00:00:00.000000Z"}  # due since long ago
        await system.store.transact(lambda tx: tx.set(path, due))

    await in_store(env, prepare)
    proc = await asyncio.create_subprocess_exec(
        COGMORA,
        "jobs",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    async def done(system: Any) -> bool:
        decisions = await system.store.read(
            lambda tx: tx.query(
                q.Query("agentDecisions", parent=user_path("ann")).order_by("createdAt", "desc")
            )
        )
        watch = await system.watchlists.get("ann")
        return bool(decisions) and all(e["error"] != "no market data yet" for e in watch)

    try:
        async with asyncio.timeout(60):
            while True:
                if await in_store(env, done):
                    break
                await asyncio.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()

    async def check(system: Any) -> None:
        watch = {e["symbol"]: e for e in await system.watchlists.get("ann")}
        assert watch["ETH-USDT"]["lastPrice"] is not None
        assert watch["NOPE-USDT"]["error"] == "unknown or delisted symbol on KuCoin"
        doc = await system.store.read(lambda tx: tx.get(agent_config_path("ann")))
        assert doc["nextRunAt"] > "2020-01-02" and doc["run"]["lastSlot"].startswith("2020")
        balance = (await system.accounts.get_user("ann")).balance
        assert balance <= Decimal(10000)

    await in_store(env, check)
