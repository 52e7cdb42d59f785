"""Jobs claimed per second by the scheduler, alone and with two competing instances.

A claim is the real one (`SlotScheduler.claim_agents`): the registered DUE_AGENTS query
plus a compare-and-set of nextRunAt to the lease, in one transaction, `--batch` slots at a
time. Agents are set up in bulk first (not measured), all due. Two cases of due times:
"same slot" (every agent due at :15, the common case, one compare-and-set per batch) and
"spread" (every agent due at a different microsecond, one compare-and-set per agent).
The naive way for comparison claims one job per transaction (`--batch 1`'s path).
"Two instances" are two store objects on the same data (two SQLite connections with their
own writer threads, as two processes would have), claiming concurrently; the benchmark
checks that no slot was claimed twice.

Run: .venv/bin/python bench/scheduler_claims.py [--jobs 50000] [--batch 500]
     [--pg postgresql://127.0.0.1:5432/test]   (also on PostgreSQL, in a scratch schema)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _setup import machine

from cogmora.domain.agent import AgentConfig
from cogmora.domain.paths import agent_config_path
from cogmora.domain.timeutil import to_iso
from cogmora.jobs.scheduler import SlotScheduler
from cogmora.store.port import Store, Tx
from cogmora.store.sqlite import SqliteStore

SLOT = datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
NOW = SLOT + timedelta(minutes=1)

Opener = Callable[[], Awaitable[Store]]


async def setup(store: Store, jobs: int, spread: bool) -> None:
    base = AgentConfig(enabled=True, schedule="every 15m", symbols=("BTC-USDT",)).to_doc()
    chunk = min(2000, store.max_writes_per_tx)
    for start in range(0, jobs, chunk):
        rows = range(start, min(jobs, start + chunk))

        def write(tx: Tx, rows: range = rows) -> None:
            for i in rows:
                due = SLOT - timedelta(microseconds=i) if spread else SLOT
                tx.set(agent_config_path(f"u{i:06d}"), {**base, "nextRunAt": to_iso(due)})

        await store.transact(write)


async def drain(scheduler: SlotScheduler, batch: int, claimed: list[str]) -> None:
    while True:
        got = await scheduler.claim_agents(NOW, batch)
        if not got:
            return
        claimed += [c.path for c in got]


async def measure(open_store: Opener, jobs: int, batch: int, spread: bool, instances: int) -> str:
    stores = [await open_store() for _ in range(instances)]
    await setup(stores[0], jobs, spread)
    claimed: list[str] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(drain(SlotScheduler(s), batch, claimed) for s in stores))
    elapsed = time.perf_counter() - t0
    for s in stores:
        await s.close()
    assert len(claimed) == jobs == len(set(claimed)), "a slot was claimed twice or missed"
    return f"{jobs / elapsed:>10,.0f} claims/s  ({jobs} in {elapsed:.2f} s)"


async def run_backend(name: str, make: Callable[[], Opener], args: argparse.Namespace) -> None:
    print(f"\n{name}")
    naive_jobs = min(args.jobs, 5000)
    naive = await measure(make(), naive_jobs, 1, False, 1)
    print(f"  naive, one claim per transaction:            {naive}")
    rates = {}
    for spread in (False, True):
        for instances in (1, 2):
            label = f"{'spread ' if spread else 'same slot'}, batch {args.batch}, " + (
                "1 instance " if instances == 1 else "2 instances"
            )
            line = await measure(make(), args.jobs, args.batch, spread, instances)
            rates[(spread, instances)] = float(line.split()[0].replace(",", ""))
            print(f"  {label:44s}{line}")
    naive_rate = float(naive.split()[0].replace(",", ""))
    print(f"  batched (same slot, 1 instance) / naive: {rates[(False, 1)] / naive_rate:.1f}x")


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:

        def sqlite_opener() -> Opener:
            path = Path(tmp) / f"{uuid.uuid4().hex}.db"

            async def open_one() -> Store:
                store = SqliteStore(path)
                await store.start()
                return store

            return open_one

        await run_backend("SQLite (one file)", sqlite_opener, args)

    if args.pg:
        import psycopg

        from cogmora.store.postgres import PostgresStore

        schemas: list[str] = []

        def pg_opener() -> Opener:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            schemas.append(schema)

            async def open_one() -> Store:
                store = PostgresStore(f"{args.pg}?schema={schema}", pool_size=4)
                await store.start()
                return store

            return open_one

        try:
            await run_backend("PostgreSQL", pg_opener, args)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pg", default=None, help="also run on this PostgreSQL server")
    asyncio.run(main(parser.parse_args()))
