"""A storm of take-profit ladder legs filling on one tick (issue 9), beside full closes.

Set-up (not measured) writes N futures longs over 1,000 users straight into a SQLite store,
each with a two-leg ladder (half at 61,000, half at 62,000), and loads the worker's engine
from the store, so the book holds 2N leg keys plus each position's stop and liquidation.
Measured: one tick at 61,000.5 through `Engine.on_ticks` until the engine has committed
everything it crossed: N partial closes, each settled in the burst's transactions (its
ledger entries, history document, the reduced open position). Checked afterwards: every
position is open with half its qty and leg 0 filled, and every part's history document
exists.

Beside it, in the same run, the same N positions with one plain take profit at 61,000:
the same tick marks them `closing` (the storm's compare-and-set), and the close handler
settles them (`Settler.settle_all`): what a full close of the storm costs end to end.

Run: .venv/bin/python bench/ladder_storm.py [--n 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _setup import FEES, machine
from prometheus_client import CollectorRegistry

from cogmora.domain.enums import Market, PositionStatus, Side
from cogmora.domain.ids import new_id
from cogmora.domain.models import Position, User
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import history_path, user_path
from cogmora.domain.takeprofits import TakeProfitLeg
from cogmora.domain.ticks import Tick
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.services.clock import SystemClock
from cogmora.services.prices import LivePrices
from cogmora.services.settlement import Settler
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

USERS = 1000
SYMBOL = "XBTUSDTM"
ENTRY = Decimal(60000)
TICK = Decimal("61000.5")
LADDER = (
    TakeProfitLeg(Decimal(61000), Decimal("0.5")),
    TakeProfitLeg(Decimal(62000), Decimal("0.5")),
)


def position(i: int, ladder: bool, now: datetime) -> Position:
    request = OpenRequest(
        SYMBOL,
        Market.FUTURES,
        Side.LONG,
        qty=Decimal("0.02"),
        leverage=Decimal(10),
        stop_loss=Decimal(58000),
        take_profit=None if ladder else Decimal(61000),
        take_profits=LADDER if ladder else (),
    )
    return build_position(request, f"bench{i % USERS:05d}", new_id(), ENTRY, FEES, now)


async def prepare(path: Path, n: int, ladder: bool) -> tuple[SqliteStore, Engine, list[Position]]:
    store = SqliteStore(path)
    await store.start()
    now = datetime.now(UTC)

    def users(tx: Tx) -> None:
        for i in range(USERS):
            uid = f"bench{i:05d}"
            tx.set(user_path(uid), User(uid, Decimal(10_000_000), now).to_doc())

    await store.transact(users)
    positions = [position(i, ladder, now) for i in range(n)]
    for start in range(0, n, 5000):
        batch = positions[start : start + 5000]

        def write(tx: Tx, batch: list[Position] = batch) -> None:
            for p in batch:
                tx.set(p.path, p.to_doc())

        await store.transact(write)
    engine = Engine(store, FEES, SystemClock(), LivePrices(), EngineMetrics(CollectorRegistry()))
    await engine.load()
    return store, engine, positions


async def tick_storm(engine: Engine) -> float:
    task = asyncio.create_task(engine.run_commits())
    try:
        t0 = time.perf_counter()
        engine.on_ticks([Tick(SYMBOL, Market.FUTURES, TICK, received_ns=time.time_ns())])
        await asyncio.sleep(0)
        await engine.drained()
        return time.perf_counter() - t0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def run_ladder(path: Path, n: int) -> float:
    store, engine, positions = await prepare(path, n, ladder=True)
    try:
        elapsed = await tick_storm(engine)
        paths = [p.path for p in positions]
        parts = [history_path(p.uid, f"{p.id}-1") for p in positions]

        def check(tx: Tx) -> tuple[list[dict | None], list[dict | None]]:  # type: ignore[type-arg]
            return tx.get_many(paths), tx.get_many(parts)

        docs, history = await store.read(check)
        for doc in docs:
            assert doc is not None
            assert doc["details"]["status"] == PositionStatus.OPEN.value, doc["details"]
            assert (doc["qty"], doc["details"]["legsFilled"]) == ("0.01000000", [0])
        assert all(h is not None and h["partOf"] for h in history)
        return elapsed
    finally:
        await store.close()


async def run_full(path: Path, n: int) -> tuple[float, float]:
    store, engine, _ = await prepare(path, n, ladder=False)
    try:
        crossed = await tick_storm(engine)
        t0 = time.perf_counter()
        settled = await Settler(store, FEES, SystemClock()).settle_all()
        settle = time.perf_counter() - t0
        assert settled == n, (settled, n)
        return crossed, settle
    finally:
        await store.close()


def spread(values: list[float], fmt: Callable[[float], str]) -> str:
    return (
        f"min {fmt(min(values))} / median {fmt(statistics.median(values))} / max {fmt(max(values))}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="legs (and full closes) per storm")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ladder: list[float] = []
    crossed: list[float] = []
    settled: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.repeat):
            ladder.append(await run_ladder(Path(d) / f"ladder{r}.db", args.n))
            c, s = await run_full(Path(d) / f"full{r}.db", args.n)
            crossed.append(c)
            settled.append(s)
    full = [c + s for c, s in zip(crossed, settled, strict=True)]
    secs = lambda v: f"{v:.2f} s"  # noqa: E731
    rate = lambda v: f"{v:,.0f}/s"  # noqa: E731
    print(f"repeats: {args.repeat}, storm size: {args.n:,}")
    print(f"ladder legs filled on one tick, partial closes settled: {spread(ladder, secs)}")
    print(f"  = {spread([args.n / v for v in ladder], rate)} legs")
    print(f"full closes, tick to closing:   {spread(crossed, secs)}")
    print(f"full closes, settle_all:        {spread(settled, secs)}")
    print(f"full closes, tick to settled:   {spread(full, secs)}")
    print(f"  = {spread([args.n / v for v in full], rate)} positions")
    ratio = statistics.median(ladder) / statistics.median(full)
    print(f"ladder storm / full-close storm (medians): {ratio:.2f}x the time")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
