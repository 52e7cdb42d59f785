"""`cogmora worker` killed with SIGKILL, the price goes through a stop and back while no
worker runs, and the restarted worker closes the position from the gap's candles."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cogmora_cli import COGMORA

from cogmora.domain.enums import Market, Side, Source
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import position_path, price_path, user_path
from cogmora.services.accounts import Accounts
from cogmora.services.clock import SystemClock
from cogmora.services.ledger import AccountBook
from cogmora.services.positions import book_open
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

SYM = "BTC-USDT"


async def seed(path: Path) -> str:
    store = SqliteStore(path)
    await store.start()
    await Accounts(store, SystemClock()).create_user("kim", Decimal("100000"))
    request = OpenRequest(SYM, Market.SPOT, Side.LONG, qty=Decimal("0.1"),
                          stop_loss=Decimal("59000"), source=Source.API)
    pid = new_id()

    def write(tx: Tx) -> None:
        book = AccountBook.from_docs(tx.get_many([user_path("kim")]))
        p = build_position(request, "kim", pid, Decimal("60000"), FeeSchedule(),
                           datetime.now(UTC))
        book_open(tx, book, p)
        for wpath, doc in book.writes():
            tx.set(wpath, doc)

    await store.transact(write)
    await store.close()
    return pid


async def read(path: Path, doc_path: str) -> dict[str, Any] | None:
    store = SqliteStore(path)
    await store.start()
    try:
        return await store.read(lambda tx: tx.get(doc_path))
    finally:
        await store.close()


async def until(check: Any, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def room_in_this_minute() -> bool:
    """At least 20 s of the minute left: the dip and its return share one candle."""
    return time.time() % 60 < 40


async def worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        COGMORA, "worker", env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def test_a_stop_crossed_while_the_worker_was_dead_closes_after_restart(
    tmp_path: Path,
) -> None:
    """SIGKILL, a dip through the stop and back, restart: closed from the candles, recovered,
    at the stop's level (the dip's candle opened above it)."""
    db = tmp_path / "gap.db"
    pid = await seed(db)
    sim = KucoinSimulator(SimulatorConfig(tick_rate=0, mark_rate=0, seed=3,
                                          spot={SYM: "60000"}, futures={"XBTUSDTM": "60000"}))
    await sim.start()
    env = {
        "COGMORA_STORE": f"sqlite:///{db}",
        "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
        "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
        "COGMORA_LOG_LEVEL": "WARNING",
    }
    second = None
    try:
        first = await worker(env)
        try:
            await asyncio.wait_for(sim.wait_subscribed([SYM]), 60)

            async def mirrored() -> bool:
                await sim.set_price(SYM, "60010")
                doc = await read(db, price_path(SYM))
                return doc is not None and doc["price"] == "60010.00000000"

            await until(mirrored)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        # No worker runs: the dip is heard by nobody, the candles keep it.
        await until(room_in_this_minute, within=61)
        await sim.set_price(SYM, "60000")
        await sim.set_price(SYM, "58500")
        await sim.set_price(SYM, "60000")
        second = await worker(env)

        async def closed() -> dict[str, Any] | None:
            doc = await read(db, position_path("kim", pid))
            return doc if doc and doc["details"]["status"] == "closed" else None

        doc = await until(closed)
    finally:
        if second is not None:
            second.send_signal(signal.SIGTERM)
            await second.wait()
        await sim.stop()
    assert doc["details"]["closeReason"] == "stop_loss"
    assert doc["details"]["recovered"] is True
    assert doc["details"]["closePrice"] == "59000.00000000"
