"""Close handlers side by side on the Firestore EMULATOR: a storm's settlement, 1 and 2 handlers.

One command: `python bench/firestore_settlers.py [--positions 3000] [--owners random|bench]
[--settlers 1 2] [--repeat 1]`. Uses FIRESTORE_EMULATOR_HOST, or an emulator of its own.

Every deployment shape runs two close handlers (`cogmora worker`'s and `cogmora jobs`'s),
each on its own store instance; this writes `--positions` closing positions over 1,000
owners (ids random, as Firebase's and ours are, or `bench00000`... that all share a first
character) and times `Settler.settle_all` run by each handler at once until all are
settled, counting the settling transactions that waited on the other's locks (the store's
"slow transaction" log). Run it with PYTHONPATH pointing at another checkout's `src` to
compare two versions of the close handler in one sitting. Every handler count runs once a
round, `--repeat` rounds interleaved; printed min / median / max and the ratio of the
medians to one handler, `machine()` at start and end. EMULATOR figures, shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).parent))
from _setup import (
    FEES,
    USERS,
    Row,
    Runs,
    add_repeat,
    fill_closing,
    firestore_emulator,
    on_machine,
    rounds,
)

from cogmora.domain.ids import new_id
from cogmora.services.clock import SystemClock
from cogmora.services.settlement import Settler
from cogmora.store.firestore import FirestoreStore

SLOW: list[str] = []


def _count_slow(_: object, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
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
    add_repeat(parser, default=1)
    args = parser.parse_args()
    structlog.configure(
        processors=[_count_slow],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    with firestore_emulator(), on_machine():
        print(f"EMULATOR, {args.positions:,} closing positions, {USERS:,} owners ({args.owners})")
        runs = Runs()
        for r in rounds(args.repeat):
            for k in args.settlers:
                seconds, slow, counts = asyncio.run(run(args.positions, args.owners, k))
                runs.add(f"{k} handler(s)", args.positions / seconds)
                runs.add(f"{k} slow", slow)
                print(f"round {r}, {k} handler(s): per handler {counts}", flush=True)
        first = f"{args.settlers[0]} handler(s)"
        rows = []
        for k in args.settlers:
            key = f"{k} handler(s)"
            rows.append(Row(key, f"{key} at once, settled/s", None if key == first else first))
            rows.append(Row(f"{k} slow", "  slow transactions (waited on the other's locks)"))
        print(runs.table(rows))
        print(f"(ratio: against {first} in the same rounds)")


if __name__ == "__main__":
    main()
