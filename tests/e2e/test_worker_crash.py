"""`cogmora worker` killed with SIGKILL in the middle of a storm, then started again:
every crossed position is closed and credited exactly once, and no money is created."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from cogmora_cli import COGMORA
from storm_kit import audit, count, seed

from cogmora.domain.enums import PositionStatus
from cogmora.simulator import KucoinSimulator, SimulatorConfig

POSITIONS = 20_000
USERS = 50


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        COGMORA,
        "worker",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


@pytest.mark.slow
async def test_worker_killed_mid_storm_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    """A SIGKILL during the storm leaves no position unsettled or settled twice after restart."""
    db = tmp_path / "crash.db"
    await seed(db, POSITIONS, USERS)
    sim = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=5))
    await sim.start()
    env = {
        "COGMORA_STORE": f"sqlite:///{db}",
        "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
        "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
        "COGMORA_LOG_LEVEL": "WARNING",
    }
    try:
        first = await start_worker(env)
        await asyncio.wait_for(sim.wait_subscribed(["BTC-USDT"]), 60)
        await sim.set_price("BTC-USDT", "58000")
        await asyncio.sleep(1.0)  # the closing commit is done; settlement is under way
        first.send_signal(signal.SIGKILL)
        await first.wait()
        closed_at_kill, _ = await audit(db, USERS)
        assert closed_at_kill < POSITIONS, "the kill came too late to be mid-storm"
        assert await count(db, PositionStatus.CLOSING) > 0  # left for the restart to settle

        second = await start_worker(env)
        try:
            for _ in range(600):
                closed, bad = await audit(db, USERS)
                if closed == POSITIONS:
                    break
                await asyncio.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
    finally:
        await sim.stop()
    closed, bad = await audit(db, USERS)
    assert closed == POSITIONS
    assert bad == 0
    assert await count(db, PositionStatus.OPEN) == 0
    assert await count(db, PositionStatus.CLOSING) == 0
