"""Change to book on the Firestore EMULATOR: 10,000 open positions, 20 writes/s.

One command: `python bench/firestore_book_latency.py [--open 10000] [--rate 20] [--seconds 20]
[--repeats 3]`. Uses FIRESTORE_EMULATOR_HOST, or starts gcloud's emulator on a free port.

A writer store commits one new open position every 1/rate s (stamped with its wall time);
a follower store (what the worker's Engine.follow reads) reports each arrival through
`changes()`. Beside it, in the same run, the official client alone: a bare on_snapshot
listener on the same filtered query, so the emulator's own delay shows as the baseline.
Figures are the emulator's, on a shared machine, not production Firestore's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from cogmora.store.firestore import FirestoreStore
from cogmora.store.firestore.tx import to_firestore
from cogmora.store.port import Tx
from cogmora.store.queries import FOLLOWED

SCRIPT = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator"


def start_emulator() -> subprocess.Popen[str] | None:
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        return None
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [SCRIPT, "start", "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Dev App Server is now running" in line:
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{port}"
    return proc


def doc(i: int, stamp: int = 0) -> dict[str, object]:
    return {
        "uid": f"u{i % 500}",
        "symbol": f"S{i % 50}-USDT",
        "details": {"status": "open", "stopLoss": "1"},
        "t": stamp,
    }


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


async def run_once(
    n_open: int, rate: float, seconds: float, bare: bool = True
) -> tuple[list[float], list[float]]:
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
            d = change.document.to_dict()  # type: ignore[attr-defined]
            if d.get("t"):
                raw.append((now - d["t"]) / 1e6)

    query = to_firestore(client, FOLLOWED["openPositions"])
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
    await asyncio.sleep(1.0)
    writes = int(seconds * rate)
    began = time.monotonic()
    for k in range(writes):
        i = n_open + k
        await asyncio.sleep(max(0.0, began + k / rate - time.monotonic()))
        stamp = time.time_ns()
        await writer.transact(
            lambda tx, i=i, stamp=stamp: tx.set(
                f"users/u{i % 500}/openPositions/p{i}", doc(i, stamp)
            )
        )
    deadline = time.monotonic() + 60
    while (len(ours) < writes or (bare and len(raw) < writes)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    done.set()
    await task
    if watch is not None:
        watch.unsubscribe()
    await follower.close()
    await writer.close()
    return ours, raw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--alone", action="store_true", help="no bare client beside it")
    args = parser.parse_args()
    proc = start_emulator()
    try:
        print(f"EMULATOR, {args.open} open positions, {args.rate}/s for {args.seconds}s")
        print(Path("/proc/loadavg").read_text().strip(), "(load before)")
        rows = []
        for r in range(args.repeats):
            ours, raw = asyncio.run(
                run_once(args.open, args.rate, args.seconds, bare=not args.alone)
            )
            raw = raw or [0.0]
            row = (
                len(ours),
                statistics.median(ours),
                pct(ours, 0.99),
                len(raw),
                statistics.median(raw),
                pct(raw, 0.99),
            )
            rows.append(row)
            print(
                f"run {r + 1}: store feed n={row[0]} p50={row[1]:.0f}ms p99={row[2]:.0f}ms | "
                f"bare client n={row[3]} p50={row[4]:.0f}ms p99={row[5]:.0f}ms | "
                f"ratio p99 {row[2] / max(row[5], 1e-9):.2f}"
            )
        p99s = sorted(r[2] for r in rows)
        print(
            f"store feed p99 min/median/max: {p99s[0]:.0f}/{statistics.median(p99s):.0f}/"
            f"{p99s[-1]:.0f} ms"
        )
        print(Path("/proc/loadavg").read_text().strip(), "(load after)")
    finally:
        if proc is not None:
            proc.terminate()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
