"""How long replaying a 1-hour feed gap takes: 60 one-minute candles, 10,000 levels on one
symbol (5,000 spot longs with a stop loss and a take profit each).

Measures, each as min / median / max of `--repeat` rounds:
- walk: the candles through the book and the fill rules (domain.gap.walk), the part that
  holds the symbol's live ticks;
- walk + enqueue: the same, with every fill handed to Engine.on_recovered (hits built,
  triggers predicted), as the worker does;
- commit: the queued closes written to SQLite by the engine's commit loop;
- candles: fetching the hour's candles from the simulator over loopback REST;
- naive: every position checked against every candle with the per-document rule
  (domain.crossing.position_reason at the low and at the high).

Every part runs once a round, `--repeat` rounds interleaved (a fresh book and store each
time); printed in one table with the ratio of the medians, `machine()` at start and end.

Run: .venv/bin/python bench/gap_replay.py [--levels N] [--minutes N] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

try:
    import cogmora  # noqa: F401
except ImportError:  # not installed in the venv: run from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import Row, Runs, add_repeat, on_machine, rounds

from cogmora.domain.book import TriggerBook
from cogmora.domain.crossing import position_reason
from cogmora.domain.enums import Market, Side, Source
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.gap import GapCandle, GapFill, walk
from cogmora.domain.ids import new_id
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import user_path
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.services.accounts import Accounts
from cogmora.services.clock import SystemClock
from cogmora.services.ledger import AccountBook
from cogmora.services.positions import book_open
from cogmora.services.prices import LivePrices
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

SYM = "BTC-USDT"
BASE = Decimal("60000")


def levels(n_positions: int, rng: random.Random) -> list[tuple[Decimal, Decimal]]:
    """(stop loss, take profit) pairs from 0.2% to 5% around the base, on a 0.1 tick."""
    out = []
    for _ in range(n_positions):
        sl = (BASE * (1 - Decimal(rng.uniform(0.002, 0.05)))).quantize(Decimal("0.1"))
        tp = (BASE * (1 + Decimal(rng.uniform(0.002, 0.05)))).quantize(Decimal("0.1"))
        out.append((sl, tp))
    return out


def candles(minutes: int, rng: random.Random, start_s: int) -> list[GapCandle]:
    out, price = [], float(BASE)
    for i in range(minutes):
        o = price
        path = [o]
        for _ in range(30):
            price *= 1 + rng.gauss(0, 0.0008)
            path.append(price)
        q = Decimal("0.1")
        out.append(GapCandle(start_s + 60 * i, Decimal(o).quantize(q),
                             Decimal(max(path)).quantize(q), Decimal(min(path)).quantize(q)))
    return out


def book_of(pairs: list[tuple[Decimal, Decimal]], ids: list[str]) -> TriggerBook:
    book = TriggerBook()
    book.load_positions((k, SYM, Side.LONG, sl, tp, None) for k, (sl, tp) in zip(ids, pairs,
                                                                               strict=True))
    return book


def naive(pairs: list[tuple[Decimal, Decimal]], ids: list[str], cs: list[GapCandle]) -> int:
    open_ = dict(zip(ids, pairs, strict=True))
    fired = 0
    for c in cs:
        for key, (sl, tp) in list(open_.items()):
            low = position_reason(Side.LONG, sl, tp, None, c.low)
            high = position_reason(Side.LONG, sl, tp, None, c.high)
            if low is not None or high is not None:
                del open_[key]
                fired += 1
    return fired


async def seed_store(path: Path, pairs: list[tuple[Decimal, Decimal]], ids: list[str]) -> None:
    store = SqliteStore(path)
    await store.start()
    await Accounts(store, SystemClock()).create_user("u", Decimal("1e12"))
    opened = datetime.now(UTC) - timedelta(hours=2)

    def write(tx: Tx) -> None:
        book = AccountBook.from_docs(tx.get_many([user_path("u")]))
        for key, (sl, tp) in zip(ids, pairs, strict=True):
            request = OpenRequest(SYM, Market.SPOT, Side.LONG, qty=Decimal("0.001"),
                                  stop_loss=sl, take_profit=tp, source=Source.API)
            book_open(tx, book, build_position(request, "u", key, BASE, FeeSchedule(), opened))
        for wpath, doc in book.writes():
            tx.set(wpath, doc)

    await store.transact(write)
    await store.close()


async def with_engine(
    pairs: list[tuple[Decimal, Decimal]], ids: list[str], cs: list[GapCandle]
) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gap.db"
        await seed_store(path, pairs, ids)
        store = SqliteStore(path)
        await store.start()
        engine = Engine(store, FeeSchedule(), SystemClock(), LivePrices(),
                        EngineMetrics(CollectorRegistry()))
        await engine.load()
        commits = asyncio.create_task(engine.run_commits())

        def fire(candle: GapCandle, fills: list[GapFill]) -> None:
            engine.on_recovered(Market.SPOT, fills, datetime.fromtimestamp(candle.end_s, UTC))

        began = time.perf_counter()
        fired = walk(engine.book, SYM, cs, engine.index.created, fire)
        walked = time.perf_counter() - began
        await asyncio.sleep(0)
        await engine.drained()
        committed = time.perf_counter() - began - walked
        commits.cancel()
        await asyncio.gather(commits, return_exceptions=True)
        await store.close()
        return walked, committed, fired


async def fetch_candles(minutes: int) -> float:
    async with KucoinSimulator(SimulatorConfig(tick_rate=0, mark_rate=0)) as sim:
        inst = sim.host(SYM).instruments[SYM]
        now_ms = int(time.time() * 1000)
        for i in range(minutes * 30):  # 30 trades a minute over the hour before
            inst.trade(BASE + i % 50, at_ms=now_ms - minutes * 60_000 + i * 2000)
        async with KucoinRest(sim.spot_url, Market.SPOT) as rest:
            end = datetime.now(UTC)
            began = time.perf_counter()
            got = await rest.candles(SYM, "1min", end - timedelta(minutes=minutes), end)
            took = time.perf_counter() - began
        assert len(got) >= minutes, len(got)
        return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=60)
    add_repeat(parser)
    args = parser.parse_args()
    with on_machine():
        replay(args)


def replay(args: argparse.Namespace) -> None:
    rng = random.Random(1)
    pairs = levels(args.levels // 2, rng)
    ids = [new_id() for _ in pairs]
    start_s = int(time.time()) // 60 * 60 - 60 * args.minutes
    cs = candles(args.minutes, rng, start_s)
    runs = Runs()
    fires = 0
    for _ in rounds(args.repeat):
        book = book_of(pairs, ids)
        began = time.perf_counter()
        fires = walk(book, SYM, cs, {}, lambda c, f: None)
        runs.add("walk", (time.perf_counter() - began) * 1e3)
        began = time.perf_counter()
        naive_fires = naive(pairs, ids, cs)
        runs.add("naive", (time.perf_counter() - began) * 1e3)
        assert naive_fires == fires, (naive_fires, fires)
        walked, committed, engine_fires = asyncio.run(with_engine(pairs, ids, cs))
        assert engine_fires == fires
        runs.add("enqueue", walked * 1e3)
        runs.add("commit", committed * 1e3)
        runs.add("fetch", asyncio.run(fetch_candles(args.minutes)) * 1e3)
    print(f"{args.levels:,} levels, {args.minutes} candles, {fires:,} positions crossed")
    ms = "{:,.2f}"
    print(
        runs.table(
            [
                Row("walk", "walk (book + fill rules), ms", "naive", ms, lower=True),
                Row("naive", "naive (every position x candle), ms", fmt=ms),
                Row("enqueue", "walk + Engine.on_recovered, ms", "naive", ms, lower=True),
                Row("commit", "commit of the closes (SQLite), ms", fmt=ms),
                Row("fetch", "candles fetched (simulator, loopback REST), ms", fmt=ms),
            ]
        )
    )


if __name__ == "__main__":
    main()
