"""Close handlers side by side on the Firestore EMULATOR: a storm's settlement, 1 and 2 handlers.

One command: `python bench/firestore_settlers.py [--positions 3000] [--owners random|bench]
[--settlers 1 2] [--repeats 1]`. Uses FIRESTORE_EMULATOR_HOST, or an emulator of its own.

Every deployment shape runs two close handlers (`cogmora worker`'s and `cogmora jobs`'s),
each on its own store instance; this writes `--positions` closing positions over 1,000
owners (ids random, as Firebase's and ours are, or `bench00000`... that all share a first
character) and times `Settler.settle_all` run by each handler at once until all are
settled, counting the settling transactions that waited on the other's locks (the store's
"slow transaction" log). Run it with PYTHONPATH pointing at another checkout's `src` to
compare two versions of the close handler in one sitting. EMULATOR figures, shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).parent))
from _setup import FEES, USERS, fill_closing, firestore_emulator, machine

from cogmora.domain.ids import new_id
from cogmora.services.clock import SystemClock
from cogmora.services.settlement import Settler
from cogmora.store.firestore import FirestoreStore

SLOW: list[str] = []


def _count_slow(_: object, __: str, event: dict[str, object]) -> dict[str, object]:
    """Counts the store's "slow transaction" lines and prints no log line at all."""
    if "slow" in str(event.get("event", "")):
        SLOW.append(str(event.get("event")))
    raise structlog.DropEvent


async def run(positions: int, owners: str, settlers: int) -> tuple[float, int, list[int]]:
    project = f"demo-settlers-{uuid.uuid4().hex[:8]}"
    stores = [FirestoreStore(project) for _ in range(settlers)]
    for store in stores:
        await store.start()
    uids = [new_id() for _ in range(USERS)] if owners == "random" else None
    await fill_closing(stores[0], positions, chunk=400, uids=uids)
    SLOW.clear()
    began = time.perf_counter()
    counts = await asyncio.gather(
        *(Settler(s, FEES, SystemClock()).settle_all() for s in stores)
    )
    seconds = time.perf_counter() - began
    for store in stores:
        await store.close()
    assert sum(counts) == positions, (counts, positions)
    return seconds, len(SLOW), list(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=3000)
    parser.add_argument("--owners", choices=["random", "bench"], default="random")
    parser.add_argument("--settlers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    structlog.configure(
        processors=[_count_slow],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    with firestore_emulator():
        print(f"machine: {machine()}")
        print(f"EMULATOR, {args.positions:,} closing positions, {USERS:,} owners ({args.owners})")
        for r in range(args.repeats):
            for k in args.settlers:
                seconds, slow, counts = asyncio.run(run(args.positions, args.owners, k))
                print(
                    f"run {r + 1}, {k} handler(s): {args.positions / seconds:,.0f} settled/s"
                    f" ({seconds:.1f} s; per handler {counts}; slow transactions {slow})"
                )
        print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
