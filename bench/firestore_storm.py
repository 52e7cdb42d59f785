"""Opens/s and a crossing storm on the Firestore EMULATOR, through the services.

One command: `python bench/firestore_storm.py [--positions 1000] [--users 5] [--clients 16]`.
Uses FIRESTORE_EMULATOR_HOST, or starts an emulator of its own (`_setup.firestore_emulator`).

1. Opens: `clients` concurrent callers of `Positions.open` over `users` users (what the
   API route calls); opens/s and errors.
2. Storm: every position crosses its stop at once; the worker's path (apply_crossings,
   chunked by the store's write cap, as Engine._commit does) until all are `closing`,
   then the close handler's path (Settler.settle_all) until all are settled. The naive
   way beside it: one transaction per position (how the seed's close handler ran).
Both ways run once a round, `--repeat` rounds interleaved; printed min / median / max and
the ratio of the medians in one table, `machine()` at start and end.
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
from cogmora.store.port import Tx

sys.path.insert(0, str(Path(__file__).parent))
from _setup import Row, Runs, add_repeat, firestore_emulator, on_machine, rounds


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

        def cross(tx: Tx, part: list[PositionHit] = part) -> None:
            apply_crossings(tx, part, [], system.settings.fees, system.clock.now())

        await store.transact(cross)
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=1000)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    add_repeat(parser, default=1)
    args = parser.parse_args()
    n, small = args.positions, max(50, args.positions // 10)
    with firestore_emulator(), on_machine():
        print(f"EMULATOR, {n} positions (naive {small}), {args.users} users, "
              f"{args.clients} clients")
        runs = Runs()
        for _ in rounds(args.repeat):
            for key, size, naive in (("", n, False), ("naive ", small, True)):
                got = asyncio.run(run(size, args.users, args.clients, naive=naive))
                runs.add(f"{key}opens", got["opens_per_s"])
                runs.add(f"{key}errors", got["open_errors"])
                runs.add(f"{key}closing", size / got["to_closing_s"])
                runs.add(f"{key}settled", size / got["to_settled_s"])
        print(
            runs.table(
                [
                    Row("opens", f"opens/s, {args.clients} clients"),
                    Row("errors", "open errors a run"),
                    Row("closing", "storm to closing (batched apply_crossings), positions/s",
                        "naive closing"),
                    Row("settled", "closing to settled (settle_all), positions/s"),
                    Row("naive closing", "naive: one transaction per crossing, positions/s"),
                ]
            )
        )


if __name__ == "__main__":
    main()
