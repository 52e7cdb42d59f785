"""Storm: one tick crosses 100,000 positions.

Targets (issue 3): every position `closing` committed within 1 s of the tick, every one
settled within 10 s. Measured on SQLite through the real engine (book -> burst
transaction) and the real settler. The naive way, for comparison, is the seed's: one
indexed `symbol == S and details.status == open` query for the tick, then one
compare-and-set transaction per position.

Run: .venv/bin/python bench/storm.py [--positions 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).parent))

from _setup import bulk_positions, machine

from cogmora.domain.enums import CloseReason, Market, PositionStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Position
from cogmora.domain.ticks import Tick
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.services.clock import SystemClock
from cogmora.services.prices import LivePrices
from cogmora.services.settlement import Settler
from cogmora.store import queries as q
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore


async def engine_storm(path: Path, n: int) -> tuple[float, float, float]:
    store = SqliteStore(path)
    await store.start()
    await bulk_positions(store, n)
    clock = SystemClock()
    engine = Engine(store, FeeSchedule(), clock, LivePrices(), EngineMetrics(CollectorRegistry()))
    t0 = time.perf_counter()
    await engine.load()
    load_s = time.perf_counter() - t0
    commits = asyncio.create_task(engine.run_commits())
    t0 = time.perf_counter()
    engine.on_ticks([Tick("BTC-USDT", Market.SPOT, Decimal("58999"), received_ns=time.time_ns())])
    await asyncio.sleep(0)
    await engine.drained()
    closing_s = time.perf_counter() - t0
    settled = await Settler(store, FeeSchedule(), clock).settle_all()
    settle_s = time.perf_counter() - t0
    assert settled == n, settled
    commits.cancel()
    await store.close()
    return load_s, closing_s, settle_s


async def naive_storm(path: Path, n: int) -> float:
    """The seed's way: query the symbol's open positions, then one CAS per position."""
    store = SqliteStore(path)
    await store.start()
    await bulk_positions(store, n)
    price = Decimal("58999")
    query = (
        q.Query("openPositions")
        .where("symbol", "==", "BTC-USDT")
        .where("details.status", "==", "open")
    )
    t0 = time.perf_counter()
    rows = await store.read(lambda tx: tx.query(query))
    for path_, doc in rows:
        p = Position.from_doc(path_.rsplit("/", 1)[1], doc)
        sl = p.details.stop_loss
        if sl is None or price > sl:
            continue

        def cas(tx: Tx, path_: str = path_) -> None:
            current = tx.get(path_)
            if current is None or current["details"]["status"] != "open":
                return
            pos = Position.from_doc(path_.rsplit("/", 1)[1], current).with_details(
                status=PositionStatus.CLOSING,
                close_reason=CloseReason.STOP_LOSS,
                close_price=price,
            )
            tx.set(path_, pos.to_doc())

        await store.transact(cas)
    elapsed = time.perf_counter() - t0
    await store.close()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument("--naive-positions", type=int, default=10_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as d:
        load_s, closing_s, settle_s = await engine_storm(Path(d) / "storm.db", args.positions)
        naive_s = await naive_storm(Path(d) / "naive.db", args.naive_positions)
    n = args.positions
    print(f"positions crossed by one tick: {n:,}")
    print(f"book load at start: {load_s:.2f} s")
    print(
        f"tick -> all closing committed: {closing_s:.3f} s (target <= 1 s) "
        f"= {n / closing_s:,.0f} positions/s"
    )
    print(f"tick -> all settled: {settle_s:.2f} s (target <= 10 s)")
    naive_rate = args.naive_positions / naive_s
    print(
        f"naive (query + one CAS transaction per position), {args.naive_positions:,} positions: "
        f"{naive_s:.2f} s = {naive_rate:,.0f} positions/s"
    )
    print(f"engine vs naive, closing throughput: {(n / closing_s) / naive_rate:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
