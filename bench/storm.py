"""Storm: one tick crosses 100,000 positions.

Targets (issue 3): every position `closing` committed within 1 s of the tick, every one
settled within 10 s. Measured on SQLite through the real engine (book -> burst
transaction) and the real settler. Two other ways, for comparison, on the same documents:

- the seed's: one indexed `symbol == S and details.status == open` query for the tick,
  then one compare-and-set transaction per position (slow: measured on fewer positions);
- the best a database can do: ONE batched `UPDATE ... WHERE symbol = ? AND status = 'open'
  AND stopLoss >= price` in one transaction, straight in SQL (no book, no documents
  through Python): the floor any store-side approach pays for the same writes.

Each way runs `--repeat` times (fresh database each time); printed: min / median / max,
and each ratio from the medians, beside the absolute figures, with the CPU and the load;
also the process CPU seconds of the engine's storm and of the batched UPDATE, which a
busy shared machine disturbs less than their wall time.

Run: .venv/bin/python bench/storm.py [--positions 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).parent))

from _setup import bulk_positions, machine, median, spread

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
from cogmora.store.sqlschema import column


async def engine_storm(path: Path, n: int) -> tuple[float, float, float, float]:
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
    c0 = time.process_time()
    engine.on_ticks([Tick("BTC-USDT", Market.SPOT, Decimal("58999"), received_ns=time.time_ns())])
    await asyncio.sleep(0)
    await engine.drained()
    closing_s = time.perf_counter() - t0
    closing_cpu = time.process_time() - c0
    settled = await Settler(store, FeeSchedule(), clock).settle_all()
    settle_s = time.perf_counter() - t0
    assert settled == n, settled
    commits.cancel()
    await store.close()
    return load_s, closing_s, settle_s, closing_cpu


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


def batched_update_storm(path: Path, price: Decimal) -> tuple[float, int, float]:
    """One SQL statement marks every crossed position closing (the fairer naive)."""
    conn = sqlite3.connect(path, isolation_level=None)
    status = column("details.status")
    t0 = time.perf_counter()
    c0 = time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    cur = conn.execute(
        f"UPDATE \"openPositions\" SET {status} = 'closing', doc = json_set(doc, "
        "'$.details.status', 'closing', '$.details.closeReason', 'stop_loss', "
        "'$.details.closePrice', ?) "
        f"WHERE {column('symbol')} = ? AND {status} = 'open' "
        "AND CAST(json_extract(doc, '$.details.stopLoss') AS REAL) >= ?",
        (format(price, "f"), "BTC-USDT", float(price)),
    )
    changed = cur.rowcount
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    conn.close()
    return elapsed, changed, cpu


async def prepared(path: Path, n: int) -> None:
    store = SqliteStore(path)
    await store.start()
    await bulk_positions(store, n)
    await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument("--naive-positions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine at start: {machine()}")
    n = args.positions
    loads, closings, settles, naives, batched = [], [], [], [], []
    closing_cpus, batched_cpus = [], []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as d:
            load_s, closing_s, settle_s, closing_cpu = await engine_storm(Path(d) / "storm.db", n)
            naive_s = await naive_storm(Path(d) / "naive.db", args.naive_positions)
            await prepared(Path(d) / "batched.db", n)
            batched_s, batched_n, batched_cpu = batched_update_storm(
                Path(d) / "batched.db", Decimal("58999")
            )
            assert batched_n == n, batched_n
        loads.append(load_s)
        closings.append(closing_s)
        settles.append(settle_s)
        naives.append(naive_s)
        batched.append(batched_s)
        closing_cpus.append(closing_cpu)
        batched_cpus.append(batched_cpu)
        print(
            f"  run {i + 1}: closing {closing_s:.3f} s, settled {settle_s:.2f} s, "
            f"seed's naive {naive_s:.2f} s, batched UPDATE {batched_s:.3f} s "
            f"(process CPU: closing {closing_cpu:.3f} s, batched {batched_cpu:.3f} s)"
        )
    closing = median(closings)
    naive_rate = args.naive_positions / median(naives)
    print(f"positions crossed by one tick: {n:,}; {args.repeat} runs")
    print(f"book load at start: {spread(loads)} s")
    print(
        f"tick -> all closing committed: {spread(closings)} s (target <= 1 s), "
        f"median {n / closing:,.0f} positions/s"
    )
    print(f"tick -> all settled: {spread(settles)} s (target <= 10 s)")
    print(
        f"naive, the seed's (query + one CAS transaction per position), "
        f"{args.naive_positions:,} positions: {spread(naives)} s, median "
        f"{naive_rate:,.0f} positions/s; engine / this: {(n / closing) / naive_rate:.1f}x"
    )
    print(
        f"naive, one batched SQL UPDATE, {n:,} positions: {spread(batched)} s, median "
        f"{n / median(batched):,.0f} positions/s; engine / this: "
        f"{median(batched) / closing:.2f}x"
    )
    print(
        f"process CPU seconds (both threads; steadier than wall time on a shared machine): "
        f"engine tick -> closing {spread(closing_cpus)}, batched UPDATE {spread(batched_cpus)}; "
        f"engine / this: {median(batched_cpus) / median(closing_cpus):.2f}x"
    )
    print(f"machine at end: {machine()}")


if __name__ == "__main__":
    asyncio.run(main())
