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

Every way runs once a round on fresh data, `--repeat` rounds interleaved; printed
min / median / max and each batched way's ratio to the naive way's median.

Run: .venv/bin/python bench/scheduler_claims.py [--jobs 20000] [--naive 2000] [--batch 500]
     [--repeat 5] [--pg postgresql://127.0.0.1:5432/test]   (also on PostgreSQL, in a
     scratch schema)
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

from _setup import Row, Runs, add_repeat, on_machine, rounds

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


async def measure(open_store: Opener, jobs: int, batch: int, spread: bool, instances: int) -> float:
    """Claims per second draining `jobs` due agents; checks none was claimed twice or missed."""
    stores = [await open_store() for _ in range(instances)]
    await setup(stores[0], jobs, spread)
    claimed: list[str] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(drain(SlotScheduler(s), batch, claimed) for s in stores))
    elapsed = time.perf_counter() - t0
    for s in stores:
        await s.close()
    assert len(claimed) == jobs == len(set(claimed)), "a slot was claimed twice or missed"
    return jobs / elapsed


async def run_backend(name: str, make: Callable[[], Opener], args: argparse.Namespace) -> None:
    ways = {
        f"{'spread' if spread else 'same slot'}, {instances} instance{'s' * (instances > 1)}": (
            spread,
            instances,
        )
        for spread in (False, True)
        for instances in (1, 2)
    }
    runs = Runs()
    for _ in rounds(args.repeat):
        runs.add("naive", await measure(make(), args.naive, 1, False, 1))
        for key, (spread, instances) in ways.items():
            runs.add(key, await measure(make(), args.jobs, args.batch, spread, instances))
    print(f"\n{name}: {args.jobs:,} jobs a run (naive: {args.naive:,}), batch {args.batch}")
    print(
        runs.table(
            [Row("naive", "naive, one claim per transaction, claims/s")]
            + [Row(key, f"{key}, claims/s", "naive") for key in ways]
        )
    )


async def main(args: argparse.Namespace) -> None:
    with on_machine():
        await both_backends(args)


async def both_backends(args: argparse.Namespace) -> None:
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
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--naive", type=int, default=2_000, help="jobs for the naive way")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pg", default=None, help="also run on this PostgreSQL server")
    add_repeat(parser)
    asyncio.run(main(parser.parse_args()))
