"""A settlement process that crashes on purpose: run as `python crash_child.py DB MODE ...`.

Modes:
- `settle COMMITS WRITES`: settle in batches of 7 and SIGKILL itself inside the
  transaction after `COMMITS` commits, at its `WRITES`-th write statement (0: at the
  COMMIT statement itself, before it runs). SQLite's trace hook sees every statement the
  writer runs, so the crash lands between two real steps of one settlement transaction.
- `mark-and-settle REASON PRICE`: the worker's compare-and-set marks every open position
  `closing`, then settles in batches of 7, printing `committed N` after each commit, so
  the parent can SIGKILL it from outside mid-settlement.
- `recover`: the close handler as it starts after a crash: `run_close_handler` until no
  position is left closing; prints how many it settled.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from decimal import Decimal

from cogmora.cli.compose import build_system
from cogmora.domain.enums import CloseReason, PositionStatus
from cogmora.jobs.close_handler import run_close_handler
from cogmora.services.crossings import PositionHit, apply_crossings
from cogmora.services.settlement import CLOSING, Settler
from cogmora.settings import Settings
from cogmora.store import queries as q
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

BATCH = 7


def _head(sql: str) -> str:
    parts = sql.split(None, 1)
    return parts[0].upper() if parts else ""


async def _on_writer(store: SqliteStore, fn: object) -> None:
    """Run `fn` on the writer thread (its connection is not shared with other threads)."""
    await asyncio.get_running_loop().run_in_executor(store._writer, fn)  # type: ignore[arg-type]


async def settle(store: SqliteStore, settler: Settler, commits: int, writes: int) -> None:
    state = {"commits": 0, "writes": 0}

    def trace(sql: str) -> None:
        head = _head(sql)
        if state["commits"] == commits:
            if head == "COMMIT" and writes == 0 and state["writes"] > 0:
                os.kill(os.getpid(), signal.SIGKILL)
            if head in ("INSERT", "UPDATE", "DELETE"):
                state["writes"] += 1
                if state["writes"] == writes:
                    os.kill(os.getpid(), signal.SIGKILL)
        if head == "COMMIT":
            state["commits"] += 1

    conn = store._wconn
    assert conn is not None
    await _on_writer(store, lambda: conn.set_trace_callback(trace))
    await settler.settle_all()
    print("finished without crashing", flush=True)


async def mark_and_settle(store: SqliteStore, settler: Settler, reason: str, price: str) -> None:
    fees = settler._fees
    query = q.positions_with_status(PositionStatus.OPEN.value)

    def mark(tx: Tx) -> int:
        rows = tx.query(query)
        hits = [
            PositionHit(doc["uid"], path.rsplit("/", 1)[1], CloseReason(reason), Decimal(price))
            for path, doc in rows
        ]
        apply_crossings(tx, hits, [], fees, settler._clock.now())
        return len(hits)

    print(f"marked {await store.transact(mark)}", flush=True)
    done = 0
    while await settler.settle_pending():
        done += 1
        print(f"committed {done}", flush=True)
    print("finished without crashing", flush=True)


async def recover(store: SqliteStore, settler: Settler) -> None:
    task = asyncio.create_task(run_close_handler(store, settler, idle_wait=0.05))
    try:
        # a deadline for a real failure, not a guess of how long settling takes
        deadline = asyncio.get_running_loop().time() + 300
        while await store.read(lambda tx: tx.query(CLOSING.limited(1))):
            if asyncio.get_running_loop().time() > deadline:
                raise SystemExit("positions still closing after 300 s")
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    print("recovered", flush=True)


async def main(argv: list[str]) -> None:
    db, mode, *args = argv
    store = SqliteStore(db)
    await store.start()
    system = build_system(Settings(store_url=f"sqlite:///{db}"), store)
    settler = Settler(store, system.settings.fees, system.clock, batch_size=BATCH)
    try:
        if mode == "settle":
            await settle(store, settler, int(args[0]), int(args[1]))
        elif mode == "mark-and-settle":
            await mark_and_settle(store, settler, args[0], args[1])
        elif mode == "recover":
            await recover(store, settler)
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
