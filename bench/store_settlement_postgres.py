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

Every way runs once a round on a fresh schema, `--repeat` rounds interleaved; printed
min / median / max and the ratio of each way's median to the naive way's.

Run: .venv/bin/python bench/store_settlement_postgres.py [--positions 10000] [--naive 500]
     [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))

from _setup import FEES, Row, Runs, add_repeat, fill_closing, on_machine, rounds

from cogmora.services.clock import SystemClock
from cogmora.services.settlement import CLOSING, Settler
from cogmora.store.postgres import PostgresStore

SERVER = "postgresql://127.0.0.1:5432/test"


async def measure(n: int, replicas: int, batch_size: int) -> tuple[float, int]:
    """(seconds to settle n closing positions with `replicas` racing settlers, retries)."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    url = f"{SERVER}?schema={schema}"
    stores = [PostgresStore(url, pool_size=2) for _ in range(replicas)]
    try:
        for s in stores:
            await s.start()
        await fill_closing(stores[0], n)
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
    parser.add_argument("--naive", type=int, default=500, help="positions for the naive way")
    parser.add_argument("--batch", type=int, default=1000)
    add_repeat(parser)
    args = parser.parse_args()
    n = args.positions
    with psycopg.connect(SERVER) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    with on_machine():
        print(f"PostgreSQL {version[0] if version else '?'} on loopback")
        runs = Runs()
        for _ in rounds(args.repeat):
            one_s, _ = await measure(n, 1, args.batch)
            runs.add("1 replica", n / one_s)
            four_s, retries = await measure(n, 4, args.batch)
            runs.add("4 replicas", n / four_s)
            runs.add("retries", retries)
            naive_s, _ = await measure(args.naive, 1, 1)
            runs.add("naive", args.naive / naive_s)
        print(f"{n:,} closing positions a run (naive: {args.naive:,}), batches of {args.batch}")
        print(
            runs.table(
                [
                    Row("1 replica", "1 replica, settle_all, positions/s", "naive"),
                    Row(
                        "4 replicas",
                        "4 replicas racing, each position settled once, positions/s",
                        "naive",
                    ),
                    Row("retries", "4 replicas: serialization retries a run"),
                    Row("naive", "naive, one transaction per position, positions/s"),
                ]
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
