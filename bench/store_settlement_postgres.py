"""Settlement throughput on PostgreSQL: closing positions settled per second.

Set-up (not measured): N `closing` positions of mixed markets and outcomes (spot and
futures, long and short, x1-x20, manual, stop loss, take profit, liquidation) over 1,000
users, written straight into a fresh schema. Measured is the real
close handler path, `Settler.settle_all()`, on `PostgresStore` (SERIALIZABLE
transactions, commit-ordered change feed):

- one replica settling everything;
- four replicas (four stores, four pools) settling the same positions at once, as four
  close handlers would: each position must still be settled exactly once;
- the naive way, one position per transaction (`batch_size=1`), on a smaller N.

Run: .venv/bin/python bench/store_settlement_postgres.py [--positions 10000] [--naive 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))

from _setup import machine

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import Position, User, user_path
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.services.clock import SystemClock
from cogmora.services.settlement import CLOSING, Settler
from cogmora.store.port import Store, Tx
from cogmora.store.postgres import PostgresStore

SERVER = "postgresql://127.0.0.1:5432/test"
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
        lev = Decimal(1 + i % 20)
        request = OpenRequest("XBTUSDTM", Market.FUTURES, side, qty=Decimal("0.013"), leverage=lev)
    p = build_position(request, uid, new_id(), entry, FEES, now)
    if i % 11 == 0 and p.details.liquidation_price is not None:
        reason, price = CloseReason.LIQUIDATION, p.details.liquidation_price
    else:
        reason, price = REASONS[i % 3], entry * (Decimal(1) + Decimal((i % 41) - 20) / 1000)
    return p.with_details(
        status=PositionStatus.CLOSING,
        close_reason=reason,
        close_price=price,
        close_requested_at=now,
    )


async def fill(store: Store, n: int) -> None:
    now = datetime.now(UTC)
    uids = [f"bench{i:05d}" for i in range(USERS)]

    def users(tx: Tx) -> None:
        for uid in uids:
            tx.set(user_path(uid), User(uid, Decimal(10_000_000), now).to_doc())

    await store.transact(users)
    for start in range(0, n, 5000):
        batch = [
            closing_position(i, uids[i % USERS], now) for i in range(start, min(n, start + 5000))
        ]

        def write(tx: Tx, batch: list[Position] = batch) -> None:
            for p in batch:
                tx.set(p.path, p.to_doc())

        await store.transact(write)


async def measure(n: int, replicas: int, batch_size: int) -> tuple[float, int]:
    """(seconds to settle n closing positions with `replicas` racing settlers, retries)."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    url = f"{SERVER}?schema={schema}"
    stores = [PostgresStore(url, pool_size=2) for _ in range(replicas)]
    try:
        for s in stores:
            await s.start()
        await fill(stores[0], n)
        settlers = [Settler(s, FEES, SystemClock(), batch_size=batch_size) for s in stores]
        t0 = time.perf_counter()
        settled = await asyncio.gather(*(st.settle_all() for st in settlers))
        elapsed = time.perf_counter() - t0
        assert sum(settled) == n, (settled, n)  # each position settled exactly once
        left = await stores[0].read(lambda tx: tx.query(CLOSING.limited(1)))
        assert not left
        return elapsed, sum(s.retried for s in stores)
    finally:
        for s in stores:
            await s.close()
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    n = args.positions
    with psycopg.connect(SERVER) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    print(f"machine: {machine()}; PostgreSQL {version[0] if version else '?'} on loopback")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    one_s, _ = await measure(n, 1, args.batch)
    print(
        f"1 replica, settle_all, {n:,} closing positions (batches of {args.batch}): "
        f"{one_s:.2f} s = {n / one_s:,.0f} positions/s"
    )
    four_s, retries = await measure(n, 4, args.batch)
    print(
        f"4 replicas racing, {n:,} positions, each settled once: {four_s:.2f} s = "
        f"{n / four_s:,.0f} positions/s ({retries} serialization retries)"
    )
    naive_s, _ = await measure(args.naive, 1, 1)
    naive = args.naive / naive_s
    print(
        f"naive (one transaction per position), {args.naive:,} positions: {naive_s:.2f} s"
        f" = {naive:,.0f} positions/s"
    )
    print(f"batched vs naive: {(n / one_s) / naive:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
