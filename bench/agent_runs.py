"""Agent runs per minute for 10,000 users with the builtin provider, on SQLite.

Each run is the scheduler's real path: claim (compare-and-set on nextRunAt) -> context
from the store (user, open positions, active triggers, watchlist, today's history) and
`Positions.account` for equity -> candles -> builtin provider -> risk guard -> the
positions service (ledger, idempotency key) -> decision document and reschedule, one
transaction. Users are set up in bulk first (not measured).

Every user's agent trades three symbols. Slot 1: BTC-USDT trends up (the agent opens a
spot long), XBTUSDTM trends down (a 2x futures short), ETH-USDT is flat (hold): two opens
per run. Slot 2, fifteen minutes later: the agent holds what it has (reads, no opens).

Candles: `--candles memory` (default) serves a prepared in-memory set; `--candles
simulator` fetches them from the KuCoin simulator over loopback REST through the jobs'
candle cache (one fetch per symbol and closed bucket, shared by every user). The same
trends are scripted into the simulator's past first (`script_trends`: each candle's open,
high, low and close as trades at its start), so both sources make the agents decide the
same and the check below holds for both; unscripted, the simulator's candles before its
start are a seeded random walk, which trades whatever it happens to show. Prices for the
fills are live quotes, as the worker's feed would provide them.

The naive way, for the ratio: the same scheduler with concurrency 1 (one slot claimed
and run at a time), on fewer users (`--naive`). Every way runs once a round on a fresh
database, `--repeat` rounds interleaved; printed min / median / max and the ratio of the
medians. The default is 2,000 users (10,000 took ~1.5 min a round here at load ~7); the
rate per run does not depend on the count but for the claims' batches.

Run: .venv/bin/python bench/agent_runs.py [--users 2000] [--naive 500] [--concurrency 64]
     [--candles memory|simulator] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _setup import Row, Runs, add_repeat, machine, rounds

from cogmora.cli.compose import build_system
from cogmora.cli.jobs import JobsOptions, build_jobs
from cogmora.domain.agent import AgentConfig
from cogmora.domain.models import PriceQuote, User
from cogmora.domain.paths import agent_config_path, user_path
from cogmora.jobs.agent.context import Candle
from cogmora.jobs.market import WIDTH
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store import queries as q
from cogmora.store.port import Doc, Tx
from cogmora.store.sqlite import SqliteStore
from cogmora.testing import ManualClock

D = Decimal
SLOT = datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
PRICES = {"BTC-USDT": D("67000"), "ETH-USDT": D("3500"), "XBTUSDTM": D("67000")}
TRENDS = {"BTC-USDT": D("0.003"), "ETH-USDT": D(0), "XBTUSDTM": D("-0.003")}
SLOTS = (("slot 1", SLOT), ("slot 2", SLOT + timedelta(minutes=15)))


def series(symbol: str, now: datetime, n: int = 100) -> tuple[Candle, ...]:
    width = timedelta(minutes=WIDTH["15min"])
    seconds = int(width.total_seconds())
    end = datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, tz=UTC)
    step, last = TRENDS[symbol], PRICES[symbol]
    out = []
    for i in range(n):
        wobble = D("0.0005") if i % 2 else D("-0.0005")
        close = (last * (1 - step * (n - 1 - i) + (wobble if step == 0 else 0))).quantize(D("0.1"))
        out.append(
            Candle(
                end - width * (n - i), close, close * D("1.001"), close * D("0.999"), close, D(5)
            )
        )
    return tuple(out)


class MemoryCandles:
    def __init__(self) -> None:
        self.cache: dict[tuple[str, datetime], tuple[Candle, ...]] = {}

    async def candles(
        self, symbol: str, interval: str, now: datetime, count: int
    ) -> tuple[Candle, ...]:
        key = (symbol, now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0))
        got = self.cache.get(key)
        if got is None:
            got = self.cache[key] = series(symbol, now)
        return got[-count:]


async def script_trends(sim: KucoinSimulator) -> int:
    """Trade `series` into the simulator's past, candle by candle (open, high, low, close
    a millisecond apart at the candle's start): the series of the last slot, which holds
    the earlier slots' closed candles too. Returns the trades scripted."""
    now = SLOTS[-1][1] + timedelta(seconds=1)
    scripted = 0
    for symbol in PRICES:
        for candle in series(symbol, now, n=101):
            at_ms = int(candle.start.timestamp()) * 1000
            for i, price in enumerate((candle.open, candle.high, candle.low, candle.close)):
                await sim.set_price(symbol, price, at_ms=at_ms + i)
                scripted += 1
    return scripted


async def setup(store: SqliteStore, users: int) -> None:
    config = AgentConfig(enabled=True, schedule="every 15m", symbols=tuple(PRICES))
    doc = config.rescheduled(SLOT - timedelta(minutes=1)).to_doc()
    uids = [f"agent{i:05d}" for i in range(users)]
    for start in range(0, users, 2000):
        chunk = uids[start : start + 2000]

        def write(tx: Tx, chunk: list[str] = chunk) -> None:
            for uid in chunk:
                tx.set(user_path(uid), User(uid, D(100000), SLOT - timedelta(days=1)).to_doc())
                tx.set(agent_config_path(uid), doc)

        await store.transact(write)


async def run_once(
    users: int, concurrency: int, sim: KucoinSimulator | None
) -> tuple[dict[str, float], list[str], int]:
    """(runs/s of each slot, problems found, candle requests): slot 1 then slot 2 for
    `users` users on a fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "agents.db")
        await store.start()
        await setup(store, users)
        clock = ManualClock(SLOT + timedelta(seconds=1))
        settings = Settings(
            kucoin_spot_url=sim.spot_url if sim else "http://127.0.0.1:9",
            kucoin_futures_url=sim.futures_url if sim else "http://127.0.0.1:9",
        )
        catalog = SymbolCatalog(["BTC-USDT", "ETH-USDT"], ["XBTUSDTM"])
        system = build_system(settings, store, catalog=catalog, clock=clock)
        candles = MemoryCandles() if sim is None else None
        jobs = build_jobs(system, JobsOptions(concurrency=concurrency), candles=candles)
        rates = {}
        for label, slot in SLOTS:
            clock.at = slot + timedelta(seconds=1)
            for symbol, price in PRICES.items():
                system.live.put(PriceQuote(symbol, price, clock.at))
            t0 = time.perf_counter()
            ran = await jobs.agents.run_due()
            rates[label] = ran / (time.perf_counter() - t0)
            if ran != users:
                print(f"CHECK FAILED: {label} ran {ran} of {users}")
        stats = jobs.agents.stats
        rows = await store.read(lambda tx: tx.query(q.positions_with_status("open")))
        problems = check_opens(rows, users)
        if stats.failed:
            problems.append(f"{stats.failed} decisions failed; last error: {stats.last_error}")
        calls = jobs.market.candle_calls
        await system.aclose()
        await store.close()
    return rates, problems, calls


async def main(args: argparse.Namespace) -> None:
    sim = None
    if args.candles == "simulator":
        sim = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=1, rest_weight_limit=10**9))
        await sim.start()
        await script_trends(sim)
    print(f"machine at start: {machine()}")
    runs = Runs()
    problems: list[str] = []
    calls = 0
    try:
        for _ in rounds(args.repeat):
            for way, users, concurrency in (
                ("", args.users, args.concurrency),
                ("naive ", args.naive, 1),
            ):
                rates, found, made = await run_once(users, concurrency, sim)
                for label, rate in rates.items():
                    runs.add(way + label, rate * 60)
                problems += found
                calls += made
    finally:
        if sim is not None:
            await sim.stop()
    print(
        f"{args.users:,} users (naive: {args.naive:,}), 3 symbols each, concurrency "
        f"{args.concurrency}, candles: {args.candles}"
    )
    print(
        runs.table(
            [
                Row("slot 1", "slot 1 (2 opens per run), runs/min", "naive slot 1"),
                Row("slot 2", "slot 2 (holds), runs/min", "naive slot 2"),
                Row("naive slot 1", "naive, concurrency 1: slot 1, runs/min"),
                Row("naive slot 2", "naive, concurrency 1: slot 2, runs/min"),
            ]
        )
    )
    print(
        "checked every round: slot 1 opened exactly a BTC-USDT spot long and an XBTUSDTM "
        f"futures short per user, slot 2 nothing; problems: {len(problems)}"
    )
    if sim is not None:
        print(f"candle requests to the simulator, all rounds: {calls}")
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    print(f"machine at end: {machine()}")
    if problems:
        raise SystemExit(1)


def check_opens(rows: list[tuple[str, Doc]], users: int) -> list[str]:
    """What the figures claim, checked: slot 1 opened exactly a BTC-USDT spot long and an
    XBTUSDTM futures short per user (ETH-USDT flat: nothing), slot 2 opened nothing more."""
    expected = {("BTC-USDT", "spot", "long"), ("XBTUSDTM", "futures", "short")}
    by_user: dict[str, list[tuple[str, str, str]]] = {}
    for _, doc in rows:
        by_user.setdefault(doc["uid"], []).append((doc["symbol"], doc["market"], doc["side"]))
    problems = []
    if len(by_user) != users:
        problems.append(f"{len(by_user)} users hold positions, expected {users}")
    wrong = [uid for uid, held in by_user.items() if sorted(held) != sorted(expected)]
    if wrong:
        problems.append(
            f"{len(wrong)} users hold other than {sorted(expected)}, e.g. {wrong[0]}: "
            f"{sorted(by_user[wrong[0]])}"
        )
    return problems


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--naive", type=int, default=500, help="users for the naive way")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--candles", choices=("memory", "simulator"), default="memory")
    add_repeat(parser)
    asyncio.run(main(parser.parse_args()))
