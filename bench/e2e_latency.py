"""End to end over a loopback websocket: tick sent by the exchange -> `closing` committed.

The simulator runs in its own process (bench/_sim_driver.py) and publishes a random walk
on ~20 spot symbols at a total of about 1,000 ticks/s of background load; the worker
(KuCoin feed -> engine -> SQLite) runs here, with `--positions` resting levels. Each
measured tick crosses exactly one stop loss; latency = the worker's commit time minus the
time the driver took just before writing the frame (one machine, one clock).

Then the firehose: frames per second the worker absorbs (decoded and evaluated against
the book), the simulator sending as fast as it can.

The naive way for comparison is the seed's: per tick, one indexed
`symbol == S and details.status == open` query, then the CAS transaction for what crossed.

Every part runs once a round, `--repeat` rounds interleaved on the same worker (each
round's samples cross a ladder of stops of their own); printed in one table, min / median
/ max of the rounds' figures and the ratio of the medians, `machine()` at start and end.

Run: .venv/bin/python bench/e2e_latency.py [--samples 500] [--background 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _setup import Row, Runs, add_repeat, bulk_positions, on_machine, percentile, rounds

from cogmora.cli.compose import System, build_system
from cogmora.cli.worker import start_worker
from cogmora.domain.enums import CloseReason, PositionStatus
from cogmora.domain.models import Position
from cogmora.services.crossings import BurstOutcome
from cogmora.settings import Settings
from cogmora.simulator import DEFAULT_SPOT
from cogmora.store import queries as q
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore


class Driver:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def send(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        return json.loads(await self.proc.stdout.readline())  # type: ignore[no-any-return]


async def start_driver(tick_rate: float) -> tuple[Driver, dict[str, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("_sim_driver.py")),
        str(tick_rate),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout
    urls = json.loads(await proc.stdout.readline())
    return Driver(proc), urls


def spot_ticks(system: System) -> float:
    value = system.registry.get_sample_value("cogmora_engine_ticks_total", {"market": "spot"})
    return value or 0.0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=500, help="crossing ticks a round")
    parser.add_argument("--background", type=float, default=1000.0, help="ticks/s in total")
    parser.add_argument("--positions", type=int, default=10_000, help="resting levels")
    parser.add_argument("--firehose", type=int, default=300_000, help="frames a round")
    parser.add_argument("--naive-ticks", type=int, default=2000, help="ticks a round")
    add_repeat(parser, default=3)
    args = parser.parse_args()
    with on_machine():
        await measure(args)


async def measure(args: argparse.Namespace) -> None:
    walk_symbols = [s for s in DEFAULT_SPOT if s != "LAT-USDT"]
    per_symbol = args.background / len(walk_symbols)
    driver, urls = await start_driver(per_symbol)
    total = args.samples * args.repeat
    # Distinct stops 5 down to ~1 on LAT-USDT: each crossing tick falls half a step below
    # its own stop, above the next one.
    step = Decimal("0.01") if total <= 400 else (Decimal(4) / total).quantize(Decimal("1e-6"))
    runs = Runs()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "e2e.db"
        store = SqliteStore(path)
        await store.start()
        # Resting levels far from the walk on every background symbol (so all are
        # subscribed and ticking), and the measured ladder on LAT-USDT.
        per = max(1, args.positions // len(walk_symbols))
        for symbol in walk_symbols:
            await bulk_positions(
                store,
                per,
                symbol=symbol,
                entry=Decimal(DEFAULT_SPOT[symbol]),
                stop_loss=Decimal(DEFAULT_SPOT[symbol]) / 2,
                users=100,
            )
        await bulk_positions(
            store, total, symbol="LAT-USDT", entry=Decimal("10"), stop_loss=None, users=100
        )
        levels: dict[str, Decimal] = {}

        def set_levels(tx: Tx) -> None:
            rows = tx.get_many(list(ladder_paths))
            for i, (p, doc) in enumerate(zip(ladder_paths, rows, strict=True)):
                assert doc is not None
                level = Decimal("5") - i * step
                doc["details"]["stopLoss"] = f"{level:.8f}"
                levels[p.rsplit("/", 1)[1]] = level
                tx.set(p, doc)

        def paths(tx: Tx) -> list[str]:
            rows = tx.query(
                q.Query("openPositions")
                .where("symbol", "==", "LAT-USDT")
                .where("details.status", "==", "open")
            )
            return [p for p, _ in rows]

        ladder_paths = await store.read(paths)
        await store.transact(set_levels)
        settings = Settings(
            kucoin_spot_url=urls["spot_url"], kucoin_futures_url=urls["futures_url"]
        )
        system = build_system(settings, store)
        committed: dict[str, int] = {}

        def on_committed(outcome: BurstOutcome, _: object) -> None:
            now = time.time_ns()
            for hit in outcome.closing:
                committed[hit.position_id] = now

        await start_worker(system, on_committed=on_committed)
        system.supervisor.start("close-handler-free", lambda: asyncio.sleep(3600))
        await driver.send(cmd="wait", symbols=[*walk_symbols, "LAT-USDT"])
        await asyncio.sleep(2)  # let the background load settle in
        order = sorted(levels, key=lambda k: -levels[k])
        for r in rounds(args.repeat):
            mine = order[(r - 1) * args.samples : r * args.samples]
            sent: dict[str, int] = {}
            t_bg0 = spot_ticks(system)
            t0 = time.perf_counter()
            for pid in mine:
                price = levels[pid] - step / 2
                reply = await driver.send(
                    cmd="cross", symbol="LAT-USDT", price=str(price), reset="10"
                )
                sent[pid] = reply["sent_ns"]
                await asyncio.sleep(0.01)
            await asyncio.sleep(1)
            elapsed = time.perf_counter() - t0
            runs.add("background", (spot_ticks(system) - t_bg0) / elapsed)
            lat = [(committed[p] - sent[p]) / 1e6 for p in mine if p in committed]
            runs.add("seen", len(lat))
            runs.add("p50", percentile(lat, 0.5))
            runs.add("p99", percentile(lat, 0.99))
            runs.add("max", max(lat))
            runs.add("mean", statistics.mean(lat))
            runs.add("firehose", await firehose(driver, system, args.firehose))
            runs.add("naive", await naive(store, args.naive_ticks))
        ms = "{:,.3f}"
        print(
            f"{args.positions:,} resting levels on {len(walk_symbols)} symbols ({per:,} a symbol),"
            f" background {args.background:,.0f} ticks/s asked; {args.samples} crossing ticks,"
            f" {args.firehose:,} firehose frames and {args.naive_ticks:,} naive ticks a round"
        )
        print(
            runs.table(
                [
                    Row("p50", "tick sent -> closing committed, p50, ms", fmt=ms),
                    Row("p99", "  p99, ms (target <= 2 ms)", fmt=ms),
                    Row("max", "  max, ms", fmt=ms),
                    Row("mean", "  mean, ms", fmt=ms),
                    Row("seen", f"  samples committed (of {args.samples})"),
                    Row("background", "background ticks/s evaluated meanwhile"),
                    Row("firehose", "firehose: frames/s the worker absorbed (target >= 100,000;"
                        " sender and worker share 2 cores)", "naive"),
                    Row("naive", "naive: one indexed query per tick and a scan, ticks/s"),
                ]
            )
        )
        await system.supervisor.stop()
        await system.aclose()
        await store.close()
    assert driver.proc.stdin
    driver.proc.stdin.write(b'{"cmd": "quit"}\n')
    await driver.proc.stdin.drain()
    await driver.proc.wait()


async def firehose(driver: Driver, system: System, n: int) -> float:
    """Frames per second the worker absorbs (decoded and evaluated against the book) while
    the simulator sends `n` as fast as it can."""
    before = spot_ticks(system)
    t0 = time.perf_counter()
    reply = await driver.send(cmd="firehose", n=n)
    target = before + reply["sent"]
    while spot_ticks(system) < target * 0.999:
        await asyncio.sleep(0.01)
        if time.perf_counter() - t0 > 120:
            break
    return (spot_ticks(system) - before) / (time.perf_counter() - t0)


async def naive(store: SqliteStore, n: int) -> float:
    """Ticks/s the seed's way: per tick the indexed open-positions query of one background
    symbol, every returned position decoded and checked."""
    query = (
        q.Query("openPositions")
        .where("symbol", "==", "BTC-USDT")
        .where("details.status", "==", "open")
    )
    price = Decimal("1")
    t0 = time.perf_counter()
    for _ in range(n):
        rows = await store.read(lambda tx: tx.query(query))
        for p_, d in rows:
            pos = Position.from_doc(p_.rsplit("/", 1)[1], d)
            sl = pos.details.stop_loss
            if sl is not None and price <= sl and pos.status is PositionStatus.OPEN:
                _ = CloseReason.STOP_LOSS
    return n / (time.perf_counter() - t0)


if __name__ == "__main__":
    asyncio.run(main())
