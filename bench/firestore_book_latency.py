"""Change to book on the Firestore EMULATOR: 10,000 open positions, 20 writes/s.

One command: `python bench/firestore_book_latency.py [--open 10000] [--rate 20] [--seconds 20]
[--repeat 3] [--naive-writes 20]`. Uses FIRESTORE_EMULATOR_HOST, or starts gcloud's
emulator on a free port (use your own: a shared one skews every figure).

A writer store commits one new open position every 1/rate s (stamped with its wall time);
a follower store (what the worker's Engine.follow reads) reports each arrival through
`changes()`. Beside it, in the same run, the official client alone: a bare on_snapshot
listener on the same query (the feed log's, `feed_log_since`), so the emulator's and the
client's own delay shows as the floor. Then the naive way, alone, on the same data: a bare
listener on the followed positions themselves (`details.status in [open, closing]`, how
the feed listened before), for `--naive-writes` writes; what it has not delivered within
`--naive-wait` s is counted as not delivered (its percentiles are then lower bounds).
Every way runs once a round, `--repeat` rounds; printed min / median / max of the rounds'
percentiles and the ratio of the medians, `machine()` at start and end.
Figures are the emulator's, on a shared machine, not production Firestore's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import document as fs_document

from cogmora.store.firestore import FirestoreStore
from cogmora.store.firestore.tx import to_firestore
from cogmora.store.port import Tx
from cogmora.store.queries import FOLLOWED, feed_log_since

sys.path.insert(0, str(Path(__file__).parent))
from _setup import Row, Runs, add_repeat, firestore_emulator, on_machine, percentile, rounds


def doc(i: int, stamp: int = 0) -> dict[str, object]:
    return {
        "uid": f"u{i % 500}",
        "symbol": f"S{i % 50}-USDT",
        "details": {"status": "open", "stopLoss": "1"},
        "t": stamp,
    }


def put(i: int, stamp: int) -> Callable[[Tx], None]:
    def body(tx: Tx) -> None:
        tx.set(f"users/u{i % 500}/openPositions/p{i}", doc(i, stamp))

    return body


async def run_once(
    n_open: int,
    rate: float,
    seconds: float,
    bare: bool = True,
    naive_writes: int = 20,
    naive_wait: float = 120.0,
) -> tuple[list[float], list[float], tuple[list[float], int]]:
    project = f"demo-bench-{uuid.uuid4().hex[:8]}"
    writer = FirestoreStore(project)
    await writer.start()
    for start in range(0, n_open, 450):

        def seed(tx: Tx, start: int = start) -> None:
            for i in range(start, min(n_open, start + 450)):
                tx.set(f"users/u{i % 500}/openPositions/p{i}", doc(i))

        await writer.transact(seed)
    follower = FirestoreStore(project)
    await follower.start()
    # the official client alone, on the same filtered query
    client, _ = follower._require()
    raw: list[float] = []

    def on_snapshot(docs: object, changes: list[object], read_time: object) -> None:
        now = time.time_ns()
        for change in changes:
            blob = change.document.get("w")  # type: ignore[attr-defined]
            value = fs_document.Value.deserialize(blob)
            for entry in _helpers.decode_value(value, client):  # type: ignore[union-attr]
                d: dict[str, Any] = entry.get("d") or {}  # type: ignore[union-attr]
                if d.get("t"):
                    raw.append((now - d["t"]) / 1e6)

    query = to_firestore(client, feed_log_since(datetime.now(UTC)))
    watch = query.on_snapshot(on_snapshot) if bare else None
    ours: list[float] = []
    cursor = await follower.head()
    done = asyncio.Event()

    async def follow() -> None:
        nonlocal cursor
        while not done.is_set():
            got = await follower.changes(
                cursor, groups=frozenset({"openPositions"}), limit=5000, wait=0.5
            )
            now = time.time_ns()
            for c in got:
                cursor = c.seq
                if c.doc and c.doc.get("t"):
                    ours.append((now - c.doc["t"]) / 1e6)

    task = asyncio.create_task(follow())
    await asyncio.sleep(3.0)  # past the seeding's log entries (the first listener's window)
    writes = int(seconds * rate)
    began = time.monotonic()
    for k in range(writes):
        i = n_open + k
        await asyncio.sleep(max(0.0, began + k / rate - time.monotonic()))
        stamp = time.time_ns()
        await writer.transact(put(i, stamp))
    deadline = time.monotonic() + 60
    while (len(ours) < writes or (bare and len(raw) < writes)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    done.set()
    await task
    if watch is not None:
        watch.unsubscribe()
    naive: tuple[list[float], int] = ([], 0)
    if naive_writes:
        naive = await naive_run(writer, client, n_open + writes, naive_writes, rate, naive_wait)
    await follower.close()
    await writer.close()
    return ours, raw, naive


async def naive_run(
    writer: FirestoreStore, client: Any, first: int, writes: int, rate: float, wait: float
) -> tuple[list[float], int]:
    """A bare listener on the positions themselves; (latencies, writes not delivered)."""
    got: list[float] = []
    armed = threading.Event()

    def on_snapshot(docs: object, changes: list[object], read_time: object) -> None:
        now = time.time_ns()
        if not armed.is_set():  # the first snapshot is the current contents, not news
            armed.set()
            return
        for change in changes:
            d = change.document.to_dict()  # type: ignore[attr-defined]
            if d.get("t"):
                got.append((now - d["t"]) / 1e6)

    watch = to_firestore(client, FOLLOWED["openPositions"]).on_snapshot(on_snapshot)
    await asyncio.get_running_loop().run_in_executor(None, armed.wait, 300)
    began = time.monotonic()
    for k in range(writes):
        i = first + k
        await asyncio.sleep(max(0.0, began + k / rate - time.monotonic()))
        stamp = time.time_ns()
        await writer.transact(put(i, stamp))
    deadline = time.monotonic() + wait
    while len(got) < writes and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    watch.unsubscribe()
    return list(got), writes - len(got)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--naive-writes", type=int, default=20)
    parser.add_argument("--naive-wait", type=float, default=120.0)
    parser.add_argument("--alone", action="store_true", help="no bare client beside it")
    add_repeat(parser, default=3)
    args = parser.parse_args()
    with firestore_emulator(), on_machine():
        print(
            f"EMULATOR ({os.environ['FIRESTORE_EMULATOR_HOST']}), {args.open} open positions, "
            f"{args.rate}/s for {args.seconds}s; naive {args.naive_writes} writes"
        )
        runs = Runs()
        for r in rounds(args.repeat):
            ours, raw, (naive, lost) = asyncio.run(
                run_once(
                    args.open,
                    args.rate,
                    args.seconds,
                    not args.alone,
                    args.naive_writes,
                    args.naive_wait,
                )
            )
            raw = raw or [0.0]
            censored = naive + [args.naive_wait * 1000] * lost or [float("nan")]
            for key, values in (("ours", ours), ("bare", raw), ("naive", censored)):
                runs.add(f"{key} p50", statistics.median(values))
                runs.add(f"{key} p99", percentile(values, 0.99))
            runs.add("ours n", len(ours))
            runs.add("naive lost", lost)
            print(f"round {r}: store feed n={len(ours)}, bare client n={len(raw)}, naive "
                  f"n={len(naive)}/{args.naive_writes}", flush=True)
        ms = "{:,.0f}"
        print(
            runs.table(
                [
                    Row("ours p50", "store feed (Engine.follow's), p50 ms",
                        ("naive p50", "bare p50"), ms, lower=True),
                    Row("ours p99", "  p99 ms", ("naive p99", "bare p99"), ms, lower=True),
                    Row("ours n", "  changes seen a round"),
                    Row("bare p50", "bare client on the same query (the floor), p50 ms", fmt=ms),
                    Row("bare p99", "  p99 ms", fmt=ms),
                    Row("naive p50", "naive (bare listener on the positions), p50 ms (at least)",
                        fmt=ms),
                    Row("naive p99", "  p99 ms (at least)", fmt=ms),
                    Row("naive lost", f"  writes not delivered within {args.naive_wait:.0f} s"),
                ]
            )
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
