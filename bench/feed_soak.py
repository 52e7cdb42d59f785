"""Change-feed soak: 1,000,000 changes through a store, with and without feed pruning.

Each transaction rewrites `--batch` documents drawn from a fixed set of 10,000 position
paths, so the documents themselves stay the same size and only the change feed can grow.
Every `--report` changes the script prints the store's size (SQLite: the database as its
own page count says, which is what the file holds once the WAL is checkpointed, and the WAL
file beside it; PostgreSQL: `pg_total_relation_size` of the feed table, and
of the documents' table beside it), the feed's row count and the process's resident memory, for the
pruned run beside the naive one (no pruning: the feed keeps every change, as before), and
the ratio naive / pruned.

Pruning is the store's own `FeedPruner` with `Retention(keep=--keep, min_age=0)`, run in
band every `--prune-every` transactions (the store's background task runs the same
`run_once` on a timer; in band keeps the run deterministic on a busy machine).

Both runs (pruned, naive) run once a round, `--repeat` rounds interleaved; the samples of
the last round are printed as a table, then min / median / max over the rounds of the end
size, feed rows and time, with the ratio of the medians, and `machine()` at start and end.

Run: .venv/bin/python bench/feed_soak.py [--changes 1000000] [--backend sqlite|postgres]
     [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _setup import Row, Runs, add_repeat, on_machine, rounds

from cogmora.store.port import Store, Tx
from cogmora.store.retention import FeedPruner, Retention
from cogmora.store.sqlite import SqliteStore

PATHS = 10_000
PG_URL = os.environ.get("COGMORA_TEST_PG", "postgresql://127.0.0.1:5432/test")


@dataclass(frozen=True, slots=True)
class Sample:
    changes: int
    size_bytes: int  # SQLite: page_count x page_size; PostgreSQL: the feed's table
    wal_bytes: int  # SQLite's WAL (a checkpoint empties it); PostgreSQL: the documents' table
    rows: int
    rss_bytes: int  # this process's resident memory (the store's caches, the pruner's marks)


def _rss() -> int:
    """Resident memory now (not the peak getrusage gives), from /proc/self/statm."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _writes(start: int, batch: int) -> Any:
    def body(tx: Tx) -> None:
        for i in range(start, start + batch):
            p = i % PATHS
            tx.set(
                f"users/u{p % 1000}/openPositions/p{p}",
                {"symbol": "BTC-USDT", "seq": i, "details": {"status": "open", "qty": "1.5"}},
            )

    return body


async def _rows(store: Store) -> int:
    def body(tx: Any) -> int:
        row = tx._conn.execute("SELECT COUNT(*) FROM _changes").fetchone()
        return int(row[0])

    return await store.read(body)


def _wal_size(path: str) -> int:
    wal = Path(path + "-wal")
    return wal.stat().st_size if wal.exists() else 0


async def _size(store: Store) -> tuple[int, int]:
    if isinstance(store, SqliteStore):
        # The pages the database holds, wherever they are now: the file's own size says
        # only when SQLite last checkpointed (a run can end with the file at one page and
        # everything in the WAL), and the WAL's size how long a checkpoint was held off.
        def pages(tx: Any) -> int:
            count = tx._conn.execute("PRAGMA page_count").fetchone()[0]
            size = tx._conn.execute("PRAGMA page_size").fetchone()[0]
            return int(count) * int(size)

        return await store.read(pages), _wal_size(store.path)

    def body(tx: Any) -> tuple[int, int]:
        row = tx._conn.execute(
            "SELECT pg_total_relation_size('_changes'), pg_total_relation_size('\"openPositions\"')"
        ).fetchone()
        return int(row[0]), int(row[1])

    # PostgreSQL: the feed's table, and apart from it the documents' table (in the WAL
    # column): the documents bloat with dead row versions in both runs alike, which
    # autovacuum, not pruning, is for.
    return await store.read(body)


async def soak(
    store: Store,
    changes: int,
    *,
    batch: int,
    report: int,
    pruner: FeedPruner | None,
    prune_every: int,
    vacuum: Any = None,
) -> list[Sample]:
    """Write `changes` changes; a sample of size and rows after every `report` of them."""
    samples: list[Sample] = []
    written = txs = 0
    while written < changes:
        n = min(batch, changes - written)
        await store.transact(_writes(written, n))
        written += n
        txs += 1
        if pruner is not None and txs % prune_every == 0:
            removed = await pruner.run_once()
            if removed and vacuum is not None:
                await asyncio.to_thread(vacuum)
        if written % report == 0 or written == changes:
            samples.append(Sample(written, *await _size(store), await _rows(store), _rss()))
    return samples


async def _open(backend: str, where: Path, name: str) -> tuple[Store, str | None]:
    if backend == "sqlite":
        store: Store = SqliteStore(where / f"{name}.db", retention=None)
        schema = None
    else:
        from cogmora.store.postgres import PostgresStore

        schema = f"soak_{name}_{uuid.uuid4().hex[:8]}"
        store = PostgresStore(f"{PG_URL}?schema={schema}", retention=None)
    await store.start()
    return store, schema


def _vacuum(schema: str) -> Any:
    """`VACUUM` of the feed's table, what autovacuum does when the server runs it (the
    test server here runs with autovacuum off): deleted rows' space becomes reusable."""
    import psycopg

    def run() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'VACUUM "{schema}"._changes')

    return run


def _drop(schema: str | None) -> None:
    if schema is None:
        return
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def run(
    backend: str,
    changes: int,
    *,
    batch: int = 1000,
    report: int = 100_000,
    keep: int = 100_000,
    prune_every: int = 10,
    vacuum: bool = False,
    where: Path,
) -> tuple[list[Sample], list[Sample], float, float]:
    """(pruned samples, naive samples, pruned seconds, naive seconds)."""
    out: list[tuple[list[Sample], float]] = []
    for name, prune in (("pruned", True), ("naive", False)):
        store, schema = await _open(backend, where, name)
        try:
            pruner = FeedPruner(store, Retention(keep=keep, min_age=0.0)) if prune else None  # type: ignore[arg-type]
            t0 = time.perf_counter()
            vac = _vacuum(schema) if vacuum and prune and schema else None
            samples = await soak(
                store,
                changes,
                batch=batch,
                report=report,
                pruner=pruner,
                prune_every=prune_every,
                vacuum=vac,
            )
            out.append((samples, time.perf_counter() - t0))
        finally:
            await store.close()
            _drop(schema)
    (pruned, tp), (naive, tn) = out
    return pruned, naive, tp, tn


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="documents per transaction")
    parser.add_argument("--report", type=int, default=100_000)
    parser.add_argument("--keep", type=int, default=100_000, help="Retention.keep")
    parser.add_argument("--prune-every", type=int, default=10, help="transactions per prune")
    parser.add_argument(
        "--vacuum", action="store_true", help="PostgreSQL: VACUUM the feed after each prune"
    )
    add_repeat(parser, default=3)
    args = parser.parse_args()
    with on_machine():
        soak_rounds(args)


def soak_rounds(args: argparse.Namespace) -> None:
    runs = Runs()
    pruned: list[Sample] = []
    naive: list[Sample] = []
    for _ in rounds(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            pruned, naive, tp, tn = asyncio.run(
                run(
                    args.backend,
                    args.changes,
                    batch=args.batch,
                    report=args.report,
                    keep=args.keep,
                    prune_every=args.prune_every,
                    vacuum=args.vacuum,
                    where=Path(tmp),
                )
            )
        runs.add("pruned MB", pruned[-1].size_bytes / 1e6)
        runs.add("naive MB", naive[-1].size_bytes / 1e6)
        runs.add("pruned rows", pruned[-1].rows)
        runs.add("naive rows", naive[-1].rows)
        runs.add("pruned s", tp)
        runs.add("naive s", tn)
    print(
        f"{args.backend}: {args.changes:,} changes, {args.batch} per transaction,"
        f" keep {args.keep:,}; the last round's samples:"
    )
    side = "WAL" if args.backend == "sqlite" else "docs"
    print(
        f"{'changes':>10} {'pruned MB':>10} {side:>6} {'rows':>9} {'naive MB':>10} {side:>6}"
        f" {'rows':>9} {'naive/pruned':>13} {'RSS MB':>7} {'naive':>6}"
    )
    for p, n in zip(pruned, naive, strict=True):
        print(
            f"{p.changes:>10,} {_mb(p.size_bytes):>10} {_mb(p.wal_bytes):>6} {p.rows:>9,}"
            f" {_mb(n.size_bytes):>10} {_mb(n.wal_bytes):>6} {n.rows:>9,}"
            f" {n.size_bytes / p.size_bytes:>12.2f}x {_mb(p.rss_bytes):>7} {_mb(n.rss_bytes):>6}"
        )
    store_mb = "store at the end, MB" if args.backend == "sqlite" else "feed table at the end, MB"
    print(
        runs.table(
            [
                Row("pruned MB", f"pruned: {store_mb}", "naive MB", "{:,.1f}", lower=True),
                Row("naive MB", f"naive: {store_mb}", fmt="{:,.1f}"),
                Row("pruned rows", "pruned: feed rows at the end", "naive rows", lower=True),
                Row("naive rows", "naive: feed rows at the end"),
                Row("pruned s", "pruned: time, s", "naive s", "{:,.1f}", lower=True),
                Row("naive s", "naive: time, s", fmt="{:,.1f}"),
            ]
        )
    )


if __name__ == "__main__":
    main()
