"""SIGKILL of the close handler inside its settlement transactions, at seeded points (the
Nth batch, the Mth write statement of it, or the COMMIT itself), then a fresh close
handler: every `closing` position is settled exactly once and every ledger sums.

The crashing process is tests/integration/settlement/crash_child.py, whose SQLite trace
hook lets the kill land between two real statements of one transaction.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from functools import partial
from pathlib import Path

import faultkit as kit
import pytest

from cogmora.domain.enums import CloseReason
from cogmora.domain.fees import FeeSchedule
from cogmora.services.clock import SystemClock
from cogmora.services.crossings import PositionHit, apply_crossings
from cogmora.store import queries as q
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

CHILD = Path(__file__).parents[1] / "integration" / "settlement" / "crash_child.py"
BATCH = 7  # crash_child's settlement batch
USERS = 20


async def mark_storm_closing(store: SqliteStore, storm: kit.Storm) -> None:
    """The worker's compare-and-set for the whole storm: every stop crossed at 58000."""

    def mark(tx: Tx) -> None:
        rows = tx.query(q.positions_with_status("open"))
        hits = [
            PositionHit(d["uid"], p.rsplit("/", 1)[1], CloseReason.STOP_LOSS, kit.STORM_PRICE)
            for p, d in rows
        ]
        apply_crossings(tx, hits, [], FeeSchedule(), SystemClock().now())

    await store.transact(mark)


async def child(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def one_try(positions: int, tmp: Path, rng: random.Random) -> tuple[kit.Findings, str]:
    db = tmp / "settle.db"
    store = SqliteStore(db)
    await store.start()
    try:
        storm = await kit.seed_storm(store, positions, USERS, rng, safe_share=0.0)
        await mark_storm_closing(store, storm)
        commits = rng.randrange(positions // BATCH)
        writes = rng.randint(0, 6)  # 0: at the COMMIT statement itself
        code, out = await child(str(db), "settle", str(commits), str(writes))
        where = f"batch {commits}, write {writes or 'COMMIT'}"
        if code != -signal.SIGKILL:
            where += f" (not killed: {out.strip()[-200:]})"
        code, out = await child(str(db), "recover")
        assert code == 0, out
        return await kit.audit(store, storm), where
    finally:
        await store.close()


FAULT = "close handler SIGKILL inside a settlement transaction"


@pytest.mark.slow
async def test_close_handler_killed_mid_settlement_settles_each_once_after_restart(
    tmp_path: Path,
) -> None:
    """Two seeded SIGKILLs inside settlement transactions (350 positions): the restarted
    close handler settles every position once."""
    found = await kit.run_tries(FAULT, 2, tmp_path, partial(one_try, 350), "350 positions")
    assert found.clean, (kit.seed(), found)


@pytest.mark.faults
async def test_close_handler_killed_20_times_mid_settlement(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Twenty seeded SIGKILLs inside the settlement of 2,100-position storms: nothing lost,
    doubled or contradictory."""
    kit.long_run(request)
    found = await kit.run_tries(
        FAULT, kit.tries(20), tmp_path, partial(one_try, 2100), "2100 positions"
    )
    assert found.clean, (kit.seed(), found)
