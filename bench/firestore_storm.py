"""Opens/s and a crossing storm on the Firestore EMULATOR, through the services.

One command: `python bench/firestore_storm.py [--positions 1000] [--users 5] [--clients 16]`.
Uses FIRESTORE_EMULATOR_HOST, or starts an emulator of its own (`_setup.firestore_emulator`).

1. Opens: `clients` concurrent callers of `Positions.open` over `users` users (what the
   API route calls); opens/s and errors.
2. Storm: every position crosses its stop at once; the worker's path (apply_crossings,
   chunked by the store's write cap, as Engine._commit does) until all are `closing`,
   then the close handler's path (Settler.settle_all) until all are settled. The naive
   way beside it: one transaction per position (how the seed's close handler ran).
Figures are the emulator's, on a shared machine, not production Firestore's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from decimal import Decimal as D
from pathlib import Path

from cogmora.cli.compose import build_system
from cogmora.domain.enums import CloseReason, Market, Side
from cogmora.domain.models import PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.services.crossings import PositionHit, apply_crossings
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.firestore import FirestoreStore

sys.path.insert(0, str(Path(__file__).parent))
from _setup import firestore_emulator


async def run(n: int, users: int, clients: int, naive: bool) -> dict[str, float]:
    store = FirestoreStore(f"demo-storm-{uuid.uuid4().hex[:8]}")
    await store.start()
    system = build_system(
        Settings(store_url="firestore://bench"),
        store,
        catalog=SymbolCatalog(spot=(), futures=("XBTUSDTM",)),
    )
    for u in range(users):
        await system.accounts.create_user(f"u{u}", D("100000000"))
    request = OpenRequest(
        "XBTUSDTM", Market.FUTURES, Side.LONG, qty=D("1"), leverage=D(10), stop_loss=D("2900")
    )
    ids: list[tuple[str, str]] = []
    errors = 0
    todo = iter(range(n))

    async def client() -> None:
        nonlocal errors
        for k in todo:
            system.live.put(PriceQuote("XBTUSDTM", D("3000"), system.clock.now()))
            uid = f"u{k % users}"
            try:
                ids.append((uid, (await system.positions.open(uid, request))["id"]))
            except Exception:
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    opens = time.perf_counter() - began
    hits = [PositionHit(uid, pid, CloseReason.STOP_LOSS, D("2899")) for uid, pid in ids]
    chunk = 1 if naive else store.max_writes_per_tx // 6
    began = time.perf_counter()
    for i in range(0, len(hits), chunk):
        part = hits[i : i + chunk]
        await store.transact(
            lambda tx, part=part: apply_crossings(
                tx, part, [], system.settings.fees, system.clock.now()
            )
        )
    closing = time.perf_counter() - began
    began = time.perf_counter()
    settled = await system.settler.settle_all()
    settle = time.perf_counter() - began
    await store.close()
    assert settled == len(ids), (settled, len(ids))
    return {
        "opens_per_s": len(ids) / opens,
        "open_errors": errors,
        "to_closing_s": closing,
        "to_settled_s": settle,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--positions", type=int, default=1000)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with firestore_emulator():
        print(f"EMULATOR, {args.positions} positions, {args.users} users, {args.clients} clients")
        print(Path("/proc/loadavg").read_text().strip(), "(load before)")
        for r in range(args.repeats):
            ours = asyncio.run(run(args.positions, args.users, args.clients, naive=False))
            print(f"run {r + 1} batched: {ours}")
        small = max(50, args.positions // 10)
        naive = asyncio.run(run(small, args.users, args.clients, naive=True))
        print(f"naive (one transaction per crossing), {small} positions: {naive}")
        ratio = (naive["to_closing_s"] / small) / (ours["to_closing_s"] / args.positions)
        print(f"to-closing per position, naive/batched: {ratio:.1f}x")
        print(Path("/proc/loadavg").read_text().strip(), "(load after)")


if __name__ == "__main__":
    main()
