"""`cogmora worker` killed with SIGKILL in the middle of a storm, then started again:
every crossed position is closed and credited exactly once, and no money is created.

No step waits a fixed time: each waits on the condition it needs (the worker subscribed,
every position marked, every position closed), so the test means the same on an idle
machine and on a loaded one. The market stays silent after the kill, as it may in life:
what the first worker had not committed, the restarted one must find on its own."""

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
from conditions import until

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


async def storm_and_kill(db: Path, kill_when: str, within: float = 600) -> None:
    """Seed the storm, start a worker, cross every stop with one trade, SIGKILL the worker
    at `kill_when`, start it again, and wait (a generous deadline, on conditions only) for
    the storm to be settled; the market stays silent after the kill."""
    await seed(db, POSITIONS, USERS)
    sim = KucoinSimulator(SimulatorConfig(tick_rate=0, mark_rate=0, seed=5))
    await sim.start()
    env = {
        "COGMORA_STORE": f"sqlite:///{db}",
        "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
        "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
        "COGMORA_LOG_LEVEL": "WARNING",
    }
    try:
        first = await start_worker(env)
        try:
            await asyncio.wait_for(sim.wait_subscribed(["BTC-USDT"]), 120)
            assert await sim.set_price("BTC-USDT", "58000") > 0  # the trade reached the worker
            if kill_when == "every position is marked":
                await until(
                    lambda: _none(db, PositionStatus.OPEN), 300, "every position marked closing"
                )
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        second = await start_worker(env)
        try:
            await until(lambda: _all_closed(db), within, "every position closed after restart")
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
    finally:
        await sim.stop()


async def _none(db: Path, status: PositionStatus) -> bool:
    return await count(db, status) == 0


async def _all_closed(db: Path) -> bool:
    return await count(db, PositionStatus.CLOSED) == POSITIONS


async def assert_settled_once(db: Path) -> None:
    closed, bad = await audit(db, USERS)
    assert closed == POSITIONS
    assert bad == 0
    assert await count(db, PositionStatus.OPEN) == 0
    assert await count(db, PositionStatus.CLOSING) == 0


@pytest.mark.slow
async def test_worker_killed_mid_settlement_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    """A SIGKILL once every crossed position is marked (settlement under way or done) leaves
    none unsettled or settled twice after a restart."""
    db = tmp_path / "crash.db"
    await storm_and_kill(db, "every position is marked")
    await assert_settled_once(db)


@pytest.mark.slow
async def test_worker_killed_before_its_closing_commits_closes_everything_on_restart(
    tmp_path: Path,
) -> None:
    """A SIGKILL as the crossing trade arrives (before some or all closing commits): the
    restarted worker closes every crossed position once, though no new trade arrives."""
    db = tmp_path / "crash.db"
    # A minute and a half is generous for the restart's catch-up (the store is settled in
    # seconds once all is marked), and keeps a failing run short.
    await storm_and_kill(db, "the trade is sent", within=90)
    await assert_settled_once(db)
