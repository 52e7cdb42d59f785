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

The naive way, the seed's, on `--naive-n` laddered positions (default: as many): for the
tick, one indexed `symbol == S and details.status == open` query and a scan of every
returned document for the legs the price reached, then one transaction per leg through the
same settlement code (`apply_crossings` with that one hit), checked like the storm. Its
legs/s is the ratio's denominator.

Every way runs once a round, `--repeat` rounds interleaved; printed min / median / max and
the ratio of the medians, with `machine()` at start and end.

Run: .venv/bin/python bench/ladder_storm.py [--n 10000] [--naive-n N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _setup import FEES, Row, Runs, add_repeat, on_machine, rounds, write_positions, write_users
from prometheus_client import CollectorRegistry

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side
from cogmora.domain.ids import new_id
from cogmora.domain.models import Position
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import history_path
from cogmora.domain.takeprofits import TakeProfitLeg, leg_key
from cogmora.domain.ticks import Tick
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.services.clock import SystemClock
from cogmora.services.crossings import PositionHit, apply_crossings
from cogmora.services.prices import LivePrices
from cogmora.services.settlement import Settler
from cogmora.store import queries as q
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


async def prepare(
    path: Path, n: int, ladder: bool, engine_too: bool = True
) -> tuple[SqliteStore, Engine | None, list[Position]]:
    store = SqliteStore(path)
    await store.start()
    now = datetime.now(UTC)
    await write_users(store, (f"bench{i:05d}" for i in range(USERS)), Decimal(10_000_000))
    positions = await write_positions(store, (position(i, ladder, now) for i in range(n)))
    if not engine_too:  # the naive way reads the store itself
        return store, None, positions
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


async def check_first_legs(store: SqliteStore, positions: list[Position]) -> None:
    """Every position open with half its qty and leg 0 filled; every part's history there."""
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


async def run_ladder(path: Path, n: int) -> float:
    store, engine, positions = await prepare(path, n, ladder=True)
    assert engine is not None
    try:
        elapsed = await tick_storm(engine)
        await check_first_legs(store, positions)
        return elapsed
    finally:
        await store.close()


async def run_naive(path: Path, n: int) -> float:
    """The seed's way for the same tick: query, scan, one transaction per reached leg."""
    store, _, positions = await prepare(path, n, ladder=True, engine_too=False)
    query = q.Query("openPositions").where("symbol", "==", SYMBOL)
    query = query.where("details.status", "==", "open")
    try:
        t0 = time.perf_counter()
        rows = await store.read(lambda tx: tx.query(query))
        hits = []
        for doc_path, doc in rows:
            p = Position.from_doc(doc_path.rsplit("/", 1)[1], doc)
            for i, leg in enumerate(p.details.take_profits):
                if i not in p.details.legs_filled and leg.price <= TICK:
                    key = leg_key(p.id, i)
                    hits.append(PositionHit(p.uid, key, CloseReason.TAKE_PROFIT, TICK, leg.price))
        for hit in hits:

            def one(tx: Tx, hit: PositionHit = hit) -> None:
                apply_crossings(tx, [hit], [], FEES, datetime.now(UTC))

            await store.transact(one)
        elapsed = time.perf_counter() - t0
        assert len(hits) == n, (len(hits), n)
        await check_first_legs(store, positions)
        return elapsed
    finally:
        await store.close()


async def run_full(path: Path, n: int) -> tuple[float, float]:
    store, engine, _ = await prepare(path, n, ladder=False)
    assert engine is not None
    try:
        crossed = await tick_storm(engine)
        t0 = time.perf_counter()
        settled = await Settler(store, FEES, SystemClock()).settle_all()
        settle = time.perf_counter() - t0
        assert settled == n, (settled, n)
        return crossed, settle
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="legs (and full closes) per storm")
    parser.add_argument(
        "--naive-n", type=int, default=None, help="legs for the naive way (default: --n)"
    )
    add_repeat(parser, default=3)
    args = parser.parse_args()
    # The same size by default: the naive way's per-leg cost grows with the storm (at 1,000
    # legs it ran 985/s, at 10,000 540/s in one sitting), so a smaller one flatters it.
    n, naive_n = args.n, args.naive_n or args.n
    runs = Runs()
    with on_machine(), tempfile.TemporaryDirectory() as d:
        for r in rounds(args.repeat):
            ladder = await run_ladder(Path(d) / f"ladder{r}.db", n)
            crossed, settled = await run_full(Path(d) / f"full{r}.db", n)
            naive = await run_naive(Path(d) / f"naive{r}.db", naive_n)
            runs.add("ladder s", ladder)
            runs.add("ladder", n / ladder)
            runs.add("crossed s", crossed)
            runs.add("settled s", settled)
            runs.add("full s", crossed + settled)
            runs.add("full", n / (crossed + settled))
            runs.add("naive", naive_n / naive)
        print(f"storm size {n:,} (naive {naive_n:,}), one tick at {TICK} over {USERS:,} users")
        print(
            runs.table(
                [
                    Row("ladder", "ladder legs filled on one tick, partial closes settled, legs/s",
                        "naive"),
                    Row("ladder s", "  the same, s (tick to every part settled)", "full s",
                        fmt="{:,.2f}", lower=True),
                    Row("full", "full closes, tick to settled, positions/s", "naive"),
                    Row("full s", "  the same, s", fmt="{:,.2f}"),
                    Row("crossed s", "  of which tick to closing, s", fmt="{:,.2f}"),
                    Row("settled s", "  of which settle_all, s", fmt="{:,.2f}"),
                    Row("naive", "naive (seed's query + scan, a transaction a leg), legs/s"),
                ]
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
