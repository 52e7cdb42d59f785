"""`cogmora worker` killed with SIGKILL in the middle of a storm, then started again:
every crossed position is closed and credited exactly once, and no money is created."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cogmora.domain.enums import Market, PositionStatus, Side, Source
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import User
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import user_path
from cogmora.services.accounts import Accounts
from cogmora.services.clock import SystemClock
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store import queries as q
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

COGMORA = str(Path(sys.executable).with_name("cogmora"))
POSITIONS = 20_000
USERS = 50


async def seed(path: Path) -> None:
    store = SqliteStore(path)
    await store.start()
    now = datetime.now(UTC)
    uids = [f"u{i}" for i in range(USERS)]
    accounts = Accounts(store, SystemClock())
    for uid in uids:
        await accounts.create_user(uid, Decimal("1000000"))
    fees = FeeSchedule()
    request = OpenRequest(
        "BTC-USDT",
        Market.SPOT,
        Side.LONG,
        qty=Decimal("0.01"),
        stop_loss=Decimal("59000"),
        source=Source.API,
    )

    def write(tx: Tx) -> None:
        # Positions are written with their opening debit, as the API would book them.
        from cogmora.services.ledger import AccountBook
        from cogmora.services.positions import book_open

        book = AccountBook.from_docs(tx.get_many([user_path(u) for u in uids]))
        for i in range(POSITIONS):
            p = build_position(request, uids[i % USERS], new_id(), Decimal("60000"), fees, now)
            book_open(tx, book, p)
        for wpath, doc in book.writes():
            tx.set(wpath, doc)

    await store.transact(write)
    await store.close()


async def audit(path: Path) -> tuple[int, int]:
    """(closed positions, users whose ledger does not sum to their balance)."""
    store = SqliteStore(path)
    await store.start()

    def body(tx: Tx) -> tuple[int, int, int, int]:
        closed = tx.query(q.positions_with_status("closed"))
        bad = 0
        closes = 0
        histories = 0
        for i in range(USERS):
            uid = f"u{i}"
            user = User.from_doc(tx.get(user_path(uid)) or {})
            entries = tx.query(
                q.Query("ledger", parent=user_path(uid)).where("seq", ">", 0).order_by("seq", "asc")
            )
            if sum(Decimal(d["amount"]) for _, d in entries) != user.balance:
                bad += 1
            closes += sum(1 for _, d in entries if d["kind"] == "close")
            histories += len(
                tx.query(
                    q.Query("positionHistory", parent=user_path(uid)).order_by("closedAt", "desc")
                )
            )
        return len(closed), bad, closes, histories

    closed, bad, closes, histories = await store.read(body)
    await store.close()
    assert closes == closed == histories, (closes, closed, histories)
    return closed, bad


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
    await seed(db)
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
        closed_at_kill, _ = await audit(db)
        assert closed_at_kill < POSITIONS, "the kill came too late to be mid-storm"
        assert await count(db, PositionStatus.CLOSING) > 0  # left for the restart to settle

        second = await start_worker(env)
        try:
            for _ in range(600):
                closed, bad = await audit(db)
                if closed == POSITIONS:
                    break
                await asyncio.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
    finally:
        await sim.stop()
    closed, bad = await audit(db)
    assert closed == POSITIONS
    assert bad == 0
    assert await count(db, PositionStatus.OPEN) == 0
    assert await count(db, PositionStatus.CLOSING) == 0


async def count(path: Path, status: PositionStatus) -> int:
    store = SqliteStore(path)
    await store.start()
    rows = await store.read(
        lambda tx: tx.query(q.positions_with_status(status.value))
    )
    await store.close()
    return len(rows)
