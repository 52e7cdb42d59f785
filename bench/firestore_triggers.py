"""Trigger placements and cancels over HTTP on the Firestore EMULATOR, many clients, few users.

One command: `python bench/firestore_triggers.py [--ops 400] [--users 5] [--clients 16]
[--repeat 3] [--opens 0]`. Uses FIRESTORE_EMULATOR_HOST, or starts an emulator of its
own (`_setup.firestore_emulator`; use your own: a shared one skews every figure).

The API runs in this process (uvicorn, the same app as `cogmora api`) on one
FirestoreStore; `--clients` concurrent HTTP clients over `--users` users each place a
trigger (`POST /v1/triggers`) and cancel it (`DELETE /v1/triggers/{id}`) until `--ops`
placements are made; with `--opens N`, N position opens by the same users run beside them
(what contends with a placement on the user's document). Printed: placements/s and
cancels/s, every status code answered (5xx counted apart), and whether every placed trigger
is stored `cancelled` (none lost). The reference in the same round: one client, no
concurrency, `--ops / 4` placements. Both run once a round, `--repeat` rounds interleaved;
printed min / median / max and the ratio of the medians, `machine()` at start and end.

"Before" is the same command with PYTHONPATH on a checkout without trigger lanes: the
script uses the HTTP API only. Figures are the emulator's, on a shared machine, not
production Firestore's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _setup import Row, Runs, add_repeat, firestore_emulator, on_machine, rounds

from cogmora.cli.compose import System, build_system
from cogmora.cli.serve import api_server
from cogmora.domain.models import PriceQuote
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.firestore import FirestoreStore

TRIGGER = {
    "symbol": "XBTUSDTM",
    "market": "futures",
    "condition": {"op": "below", "price": "2500"},
    "action": {"side": "long", "qty": "0.01", "leverage": "10"},
}
OPEN = {"symbol": "XBTUSDTM", "market": "futures", "side": "long", "qty": "0.01", "leverage": "10"}


@dataclass
class Tally:
    placed: list[tuple[int, str]] = field(default_factory=list)  # (user, trigger id)
    codes: Counter[str] = field(default_factory=Counter)
    cancelled: int = 0

    def fivexx(self) -> int:
        return sum(n for k, n in self.codes.items() if k.split()[1].startswith("5"))


@asynccontextmanager
async def serving(system: System) -> AsyncIterator[str]:
    server = api_server(system, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started and not task.done() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


async def run(ops: int, users: int, clients: int, opens: int) -> tuple[float, Tally, bool]:
    """Seconds for `ops` place+cancel pairs by `clients` callers, the tally, none lost."""
    store = FirestoreStore(f"demo-triggers-{uuid.uuid4().hex[:8]}")
    await store.start()
    system = build_system(
        Settings(store_url="firestore://bench"),
        store,
        catalog=SymbolCatalog(spot=(), futures=("XBTUSDTM",)),
    )
    tokens = [(await system.accounts.create_user(f"u{u}", D(10**8)))[1] for u in range(users)]
    tally = Tally()
    try:
        async with serving(system) as url:
            http = [
                httpx.AsyncClient(
                    base_url=url, headers={"Authorization": f"Bearer {t}"}, timeout=120.0
                )
                for t in tokens
            ]
            todo = iter(range(ops))
            open_todo = iter(range(opens))

            def price() -> None:
                system.live.put(PriceQuote("XBTUSDTM", D("3000"), system.clock.now()))

            async def placer() -> None:
                for k in todo:
                    u = k % users
                    price()
                    r = await http[u].post("/v1/triggers", json=TRIGGER)
                    tally.codes[f"place {r.status_code}"] += 1
                    if r.status_code != 201:
                        continue
                    tid = r.json()["id"]
                    tally.placed.append((u, tid))
                    r = await http[u].delete(f"/v1/triggers/{tid}")
                    tally.codes[f"cancel {r.status_code}"] += 1
                    tally.cancelled += r.status_code == 200

            async def opener() -> None:
                for k in open_todo:
                    price()
                    r = await http[k % users].post("/v1/positions", json=OPEN)
                    tally.codes[f"open {r.status_code}"] += 1

            openers = min(clients, opens) // 2 if opens else 0
            began = time.perf_counter()
            await asyncio.gather(
                *(placer() for _ in range(clients - openers)), *(opener() for _ in range(openers))
            )
            took = time.perf_counter() - began
            stored: set[str] = set()
            for u in range(users):
                r = await http[u].get("/v1/triggers", params={"status": "cancelled"})
                stored |= {t["id"] for t in r.json()}
            for client in http:
                await client.aclose()
    finally:
        await store.close()
    whole = {tid for _, tid in tally.placed} == stored and len(stored) == tally.cancelled
    return took, tally, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=400)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--opens", type=int, default=0)
    add_repeat(parser, default=3)
    args = parser.parse_args()
    small = max(20, args.ops // 4)
    with firestore_emulator() as host, on_machine():
        print(f"EMULATOR {host}; {args.ops} placements a round by {args.clients} clients over "
              f"{args.users} users (opens beside them: {args.opens}); reference {small}, 1 client")
        runs = Runs()
        for r in rounds(args.repeat):
            took, tally, whole = asyncio.run(run(args.ops, args.users, args.clients, args.opens))
            runs.add("many", len(tally.placed) / took)
            runs.add("5xx", tally.fivexx())
            print(
                f"round {r}: {len(tally.placed)} placed and {tally.cancelled} cancelled of "
                f"{args.ops} in {took:.1f} s, codes {dict(sorted(tally.codes.items()))}, "
                f"every placed trigger stored cancelled: {whole}",
                flush=True,
            )
            took, tally, whole = asyncio.run(run(small, args.users, 1, 0))
            runs.add("one", len(tally.placed) / took)
        print(
            runs.table(
                [
                    Row("many", f"{args.clients} clients over {args.users} users, placements/s"
                        " (each with its cancel)", "one", "{:,.1f}"),
                    Row("5xx", "  answered 5xx a round"),
                    Row("one", "one client (reference), placements/s", fmt="{:,.1f}"),
                ]
            )
        )


if __name__ == "__main__":
    main()
