"""Settlement throughput on SQLite: closing positions settled per second (target >= 20,000/s).

Set-up writes N `closing` positions (spot longs, futures longs and shorts at x1-x20, closed
by hand, stop loss, take profit and liquidation) over 1,000 users straight into the store;
that is not measured. What is measured is the real close handler path,
`Settler.settle_all()`: batched transactions that each read the closing positions and
their users, book P&L, ledger entries and history, and mark the positions closed.

The naive way, for comparison, is the same code settling one position per transaction
(`Settler(batch_size=1)`), on a smaller N because it is slow.

Each size runs `--repeat` times on a fresh database; printed: min / median / max, and the
ratio to the naive way from the medians, beside the absolute figures.

Run: .venv/bin/python bench/settlement.py [--sizes 10000 100000] [--naive 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _setup import FEES, USERS, closing_position, fill_closing, machine, median, spread

from cogmora.domain.models import User
from cogmora.domain.paths import position_path
from cogmora.services.clock import SystemClock
from cogmora.services.ledger import AccountBook
from cogmora.services.settlement import CLOSING, Settler, _settle
from cogmora.store.sqlite import SqliteStore


async def measure(path: Path, n: int, batch_size: int) -> tuple[float, float]:
    """Seconds `settle_all` takes to settle `n` closing positions, wall and the process's
    CPU (every thread: the writer, the snapshot reader, the loop); checks it settled them all.
    The CPU figure moves less than the wall one when other work shares the machine."""
    store = SqliteStore(path)
    await store.start()
    try:
        await fill_closing(store, n)
        settler = Settler(store, FEES, SystemClock(), batch_size=batch_size)
        t0, c0 = time.perf_counter(), time.process_time()
        settled = await settler.settle_all()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert settled == n, (settled, n)
        left = await store.read(lambda tx: tx.query(CLOSING.limited(1)))
        assert not left
    finally:
        await store.close()
    return elapsed, cpu


def maths_alone(n: int, batch: int) -> float:
    """CPU microseconds per position of the settlement's own work with no store at all:
    the same closing documents, owner by owner in batches as the settler takes them, each
    batch through the settler's maths (`_settle`: the fill, the closed document, the
    ledger lines) and `AccountBook.writes` (the user and ledger documents). What the
    measured figure spends beyond this is the store's: reads, JSON, rows, SQLite, the WAL."""
    now = datetime.now(UTC)
    uids = [f"bench{i:05d}" for i in range(USERS)]
    docs = sorted(
        (
            (position_path(p.uid, p.id), p.to_doc())
            for p in (closing_position(i, uids[i % USERS], now) for i in range(n))
        ),
        key=lambda row: row[0],
    )
    users = {uid: User(uid, Decimal(10_000_000), now).to_doc() for uid in uids}
    c0 = time.process_time()
    for first in range(0, n, batch):
        rows = docs[first : first + batch]
        book = AccountBook.from_docs(users[u] for u in sorted({d["uid"] for _, d in rows}))
        settled = _settle(rows, book, FEES, now)
        assert len(settled) == len(rows)
        book.writes()
    return (time.process_time() - c0) / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--naive", type=int, default=2_000, help="positions for the naive way")
    parser.add_argument("--batch", type=int, default=1000, help="Settler batch size")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine at start: {machine()}")
    rates: dict[int, list[float]] = {n: [] for n in args.sizes}
    cpus: dict[int, list[float]] = {n: [] for n in args.sizes}
    naive: list[float] = []
    maths: list[float] = []
    for _ in range(args.repeat):
        maths.append(maths_alone(max(args.sizes), args.batch))
        with tempfile.TemporaryDirectory() as d:
            for n in args.sizes:
                elapsed, cpu = await measure(Path(d) / f"settle{n}.db", n, args.batch)
                rates[n].append(n / elapsed)
                cpus[n].append(cpu / n * 1e6)
            elapsed, _ = await measure(Path(d) / "naive.db", args.naive, 1)
            naive.append(args.naive / elapsed)
    naive_rate = median(naive)
    print(
        f"naive (one transaction per position), {args.naive:,} positions: "
        f"{spread(naive, '{:,.0f}')} positions/s"
    )
    for n, measured in rates.items():
        rate = median(measured)
        verdict = "meets" if rate >= 20_000 else "MISSES"
        print(
            f"settle_all, {n:,} closing positions (batches of {args.batch}): "
            f"{spread(measured, '{:,.0f}')} positions/s ({verdict} the 20,000/s target "
            f"at the median); batched / naive: {rate / naive_rate:.1f}x; "
            f"CPU {spread(cpus[n], '{:.1f}')} us/position"
        )
    cpu = median(cpus[max(args.sizes)])
    print(
        f"of which the settlement's maths and documents alone, no store "
        f"({max(args.sizes):,} positions): {spread(maths, '{:.1f}')} us/position, "
        f"{median(maths) / cpu:.0%} of the {max(args.sizes):,} run's median CPU; the store's "
        f"share: {cpu - median(maths):.1f} us/position (20,000/s is 50 us/position in all)"
    )
    print(f"machine at end: {machine()}")


if __name__ == "__main__":
    asyncio.run(main())
