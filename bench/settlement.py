"""Settlement throughput on SQLite: closing positions settled per second (target >= 20,000/s).

Set-up writes N `closing` positions (spot longs, futures longs and shorts at x1-x20, closed
by hand, stop loss, take profit and liquidation) over 1,000 users straight into the store;
that is not measured. What is measured is the real close handler path,
`Settler.settle_all()`: batched transactions that each read the closing positions and
their users, book P&L, ledger entries and history, and mark the positions closed.

The naive way, for comparison, is the same code settling one position per transaction
(`Settler(batch_size=1)`), on a smaller N because it is slow.

Run: .venv/bin/python bench/settlement.py [--sizes 10000 100000] [--naive 2000]
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

from _setup import machine

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import Position, User, user_path
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.services.clock import SystemClock
from cogmora.services.settlement import CLOSING, Settler
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

USERS = 1000
FEES = FeeSchedule()
REASONS = (CloseReason.MANUAL, CloseReason.STOP_LOSS, CloseReason.TAKE_PROFIT)


def closing_position(i: int, uid: str, now: datetime) -> Position:
    """Position number `i`, already `closing`: a deterministic mix of markets and outcomes."""
    entry = Decimal(60000) + i % 997
    if i % 3 == 0:
        request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=Decimal("0.01"))
    else:
        side = Side.LONG if i % 2 else Side.SHORT
        request = OpenRequest(
            "XBTUSDTM", Market.FUTURES, side, qty=Decimal("0.013"), leverage=Decimal(1 + i % 20)
        )
    p = build_position(request, uid, new_id(), entry, FEES, now)
    if i % 11 == 0 and p.details.liquidation_price is not None:
        reason, price = CloseReason.LIQUIDATION, p.details.liquidation_price
    else:
        reason, price = REASONS[i % 3], entry * (Decimal(1) + Decimal((i % 41) - 20) / 1000)
    return p.with_details(
        status=PositionStatus.CLOSING, close_reason=reason, close_price=price,
        close_requested_at=now,
    )


async def fill(store: SqliteStore, n: int) -> None:
    now = datetime.now(UTC)
    uids = [f"bench{i:05d}" for i in range(USERS)]

    def users(tx: Tx) -> None:
        for uid in uids:
            tx.set(user_path(uid), User(uid, Decimal(10_000_000), now).to_doc())

    await store.transact(users)
    for start in range(0, n, 10_000):
        stop = min(n, start + 10_000)
        batch = [closing_position(i, uids[i % USERS], now) for i in range(start, stop)]

        def write(tx: Tx, batch: list[Position] = batch) -> None:
            for p in batch:
                tx.set(p.path, p.to_doc())

        await store.transact(write)


async def measure(path: Path, n: int, batch_size: int) -> float:
    """Seconds `settle_all` takes to settle `n` closing positions; checks it settled them all."""
    store = SqliteStore(path)
    await store.start()
    try:
        await fill(store, n)
        settler = Settler(store, FEES, SystemClock(), batch_size=batch_size)
        t0 = time.perf_counter()
        settled = await settler.settle_all()
        elapsed = time.perf_counter() - t0
        assert settled == n, (settled, n)
        left = await store.read(lambda tx: tx.query(CLOSING.limited(1)))
        assert not left
    finally:
        await store.close()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--naive", type=int, default=2_000, help="positions for the naive way")
    parser.add_argument("--batch", type=int, default=1000, help="Settler batch size")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as d:
        for n in args.sizes:
            elapsed = await measure(Path(d) / f"settle{n}.db", n, args.batch)
            rates[n] = n / elapsed
            verdict = "meets" if rates[n] >= 20_000 else "MISSES"
            print(
                f"settle_all, {n:,} closing positions (batches of {args.batch}): {elapsed:.2f} s"
                f" = {rates[n]:,.0f} positions/s ({verdict} the 20,000/s target)"
            )
        naive_s = await measure(Path(d) / "naive.db", args.naive, 1)
    naive_rate = args.naive / naive_s
    print(
        f"naive (one transaction per position), {args.naive:,} positions: {naive_s:.2f} s"
        f" = {naive_rate:,.0f} positions/s"
    )
    for n, rate in rates.items():
        print(f"batched vs naive at {n:,}: {rate / naive_rate:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
