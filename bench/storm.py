"""Storm: one tick crosses 100,000 positions.

Targets (issue 3): every position `closing` committed within 1 s of the tick, every one
settled within 10 s. Measured on SQLite through the real engine (book -> burst
transaction) and the real settler. Two other ways, for comparison, on the same documents:

- the seed's: one indexed `symbol == S and details.status == open` query for the tick,
  then one compare-and-set transaction per position (slow: measured on fewer positions);
- the best a database can do: ONE batched `UPDATE ... WHERE symbol = ? AND status = 'open'
  AND stopLoss >= price` in one transaction, straight in SQL (no book, no documents
  through Python, no change feed): the floor any store-side approach pays for the same
  writes; and the same UPDATE followed by one INSERT ... SELECT that copies each changed
  document to the change feed, as the engine's store must;
- two floors under that one, to say what a 1 s storm would have to give up: the same
  UPDATE of the status column alone (the document untouched), and one narrow row per
  crossed position inserted into a table of its own (a "lighter status row").

Each way runs `--repeat` times (fresh database each time); printed: min / median / max,
and each ratio from the medians, beside the absolute figures, with the CPU and the load;
also the process CPU seconds of each, which a busy shared machine disturbs less than
their wall time.

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


_CROSSED = (
    f"WHERE {column('symbol')} = :symbol AND {column('details.status')} = 'open' "
    "AND CAST(json_extract(doc, '$.details.stopLoss') AS REAL) >= :level"
)
_FEED_COPY = (
    "INSERT INTO _changes (grp, uid, path, doc) SELECT 'openPositions', "
    f'{column("uid")}, path, doc FROM "openPositions" '
    f"WHERE {column('symbol')} = :symbol AND {column('details.status')} = 'closing'"
)
_MARK_CLOSING = (
    f"UPDATE \"openPositions\" SET {column('details.status')} = 'closing', "
    "doc = json_set(doc, '$.details.status', 'closing', '$.details.closeReason', "
    f"'stop_loss', '$.details.closePrice', :price) {_CROSSED}"
)
# Ways straight in SQL over the crossed rows, in one transaction each: what the engine
# writes with and without its change-feed copy, and two floors under them that say what a
# 1 s storm would have to give up.
SQL_WAYS: dict[str, tuple[str, ...]] = {
    # the same rows and fields the engine writes, and the feed's copy of each document
    "UPDATE + feed copy": (_MARK_CLOSING, _FEED_COPY),
    # the fairer naive of issue 11: the same UPDATE, no feed
    "batched UPDATE": (_MARK_CLOSING,),
    # the status column alone, the document untouched: no reader would see `closing`
    "status column only": (
        f"UPDATE \"openPositions\" SET {column('details.status')} = 'closing' {_CROSSED}",
    ),
    # a narrow row per crossed position in a table of its own (a "lighter status row")
    "narrow row insert": (
        "INSERT INTO _closing_bound (path, reason, price) "
        f"SELECT path, 'stop_loss', :price FROM \"openPositions\" {_CROSSED}",
    ),
}


def sql_storm(path: Path, price: Decimal, statements: tuple[str, ...]) -> tuple[float, int, float]:
    """One of SQL_WAYS over a fresh copy of the storm's rows: (seconds, rows its first
    statement changed, CPU seconds)."""
    conn = sqlite3.connect(path, isolation_level=None)
    # As the store's own connection (store/sqlite/store.py): no fsync at commit in WAL mode,
    # the same page cache, so a way differs from the engine only in what it writes.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _closing_bound (path TEXT PRIMARY KEY, reason TEXT, "
        "price TEXT) WITHOUT ROWID"
    )
    params = {"price": format(price, "f"), "symbol": "BTC-USDT", "level": float(price)}
    t0 = time.perf_counter()
    c0 = time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    changed = conn.execute(statements[0], params).rowcount
    for sql in statements[1:]:
        conn.execute(sql, params)  # a name a statement does not use is ignored
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


def copy_of(source: Path, target: Path) -> Path:
    """A byte-for-byte copy of a prepared database (SQLite's backup API), so each SQL way
    starts from the same rows without writing them again."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument("--naive-positions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine at start: {machine()}")
    n = args.positions
    price = Decimal("58999")
    loads, closings, settles, naives, closing_cpus = [], [], [], [], []
    ways: dict[str, list[float]] = {name: [] for name in SQL_WAYS}
    way_cpus: dict[str, list[float]] = {name: [] for name in SQL_WAYS}
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as d:
            load_s, closing_s, settle_s, closing_cpu = await engine_storm(Path(d) / "storm.db", n)
            naive_s = await naive_storm(Path(d) / "naive.db", args.naive_positions)
            await prepared(Path(d) / "rows.db", n)
            figures = []
            for name, sql in SQL_WAYS.items():
                copy = copy_of(Path(d) / "rows.db", Path(d) / f"{len(figures)}.db")
                way_s, way_n, way_cpu = sql_storm(copy, price, sql)
                assert way_n == n, (name, way_n)
                ways[name].append(way_s)
                way_cpus[name].append(way_cpu)
                figures.append(f"{name} {way_s:.3f} s")
        loads.append(load_s)
        closings.append(closing_s)
        settles.append(settle_s)
        naives.append(naive_s)
        closing_cpus.append(closing_cpu)
        print(
            f"  run {i + 1}: closing {closing_s:.3f} s (CPU {closing_cpu:.3f} s), settled "
            f"{settle_s:.2f} s, seed's naive {naive_s:.2f} s, {', '.join(figures)}"
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
    for name, times in ways.items():
        print(
            f"straight SQL, {name}, {n:,} rows: {spread(times)} s, median "
            f"{n / median(times):,.0f} rows/s; engine / this: {median(times) / closing:.2f}x; "
            f"process CPU {spread(way_cpus[name])} s"
        )
    print(
        f"process CPU seconds of the engine's tick -> closing (both threads; steadier than "
        f"wall time on a shared machine): {spread(closing_cpus)}"
    )
    print(f"machine at end: {machine()}")


if __name__ == "__main__":
    asyncio.run(main())
