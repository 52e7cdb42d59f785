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

Run: .venv/bin/python bench/e2e_latency.py [--samples 500] [--background 1000]
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

from _setup import bulk_positions, machine

from cogmora.cli.compose import System, build_system
from cogmora.cli.worker import start_worker
from cogmora.domain.enums import CloseReason, Market, PositionStatus
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


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--background", type=float, default=1000.0, help="ticks/s in total")
    parser.add_argument("--positions", type=int, default=10_000, help="resting levels")
    parser.add_argument("--firehose", type=int, default=300_000)
    args = parser.parse_args()
    walk_symbols = [s for s in DEFAULT_SPOT if s != "LAT-USDT"]
    per_symbol = args.background / len(walk_symbols)
    driver, urls = await start_driver(per_symbol)
    print(f"machine: {machine()}")
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
            store, args.samples, symbol="LAT-USDT", entry=Decimal("10"), stop_loss=None, users=100
        )
        levels = {}

        def set_levels(tx: Tx) -> None:
            rows = tx.get_many([p for p in ladder_paths])
            for i, (p, doc) in enumerate(zip(ladder_paths, rows, strict=True)):
                assert doc is not None
                level = Decimal("5") - Decimal(i) / 100
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

        worker = await start_worker(system, on_committed=on_committed)
        system.supervisor.start("close-handler-free", lambda: asyncio.sleep(3600))
        await driver.send(cmd="wait", symbols=[*walk_symbols, "LAT-USDT"])
        await asyncio.sleep(2)  # let the background load settle in
        order = sorted(levels, key=lambda k: -levels[k])
        sent: dict[str, int] = {}
        t_bg0 = spot_ticks(system)
        t0 = time.perf_counter()
        for pid in order:
            price = levels[pid] - Decimal("0.001")
            reply = await driver.send(cmd="cross", symbol="LAT-USDT", price=str(price), reset="10")
            sent[pid] = reply["sent_ns"]
            await asyncio.sleep(0.01)
        await asyncio.sleep(1)
        elapsed = time.perf_counter() - t0
        t_bg1 = spot_ticks(system)
        lat = [(committed[p] - sent[p]) / 1e6 for p in order if p in committed]
        print(
            f"background load measured: {(t_bg1 - t_bg0) / elapsed:,.0f} ticks/s evaluated "
            f"({args.positions:,} resting levels on {len(walk_symbols)} symbols)"
        )
        print(
            f"tick sent -> closing committed, {len(lat)}/{len(order)} samples: "
            f"p50 {pct(lat, 0.5):.3f} ms, p99 {pct(lat, 0.99):.3f} ms, "
            f"max {max(lat):.3f} ms, mean {statistics.mean(lat):.3f} ms (target p99 <= 2 ms)"
        )

        # Firehose: frames/s the worker absorbs.
        before = spot_ticks(system)
        t0 = time.perf_counter()
        reply = await driver.send(cmd="firehose", n=args.firehose)
        target = before + reply["sent"]
        while (spot_ticks(system)) < target * 0.999:
            await asyncio.sleep(0.01)
            if time.perf_counter() - t0 > 120:
                break
        absorbed = (spot_ticks(system)) - before
        secs = time.perf_counter() - t0
        print(
            f"firehose: simulator sent {reply['sent']:,} frames in {reply['seconds']:.2f} s; "
            f"worker absorbed {absorbed:,.0f} in {secs:.2f} s = {absorbed / secs:,.0f} frames/s "
            f"(target >= 100,000; sender and worker share 2 cores)"
        )

        # Naive: per tick, the seed's indexed query, then evaluate every returned position.
        query = (
            q.Query("openPositions")
            .where("symbol", "==", "BTC-USDT")
            .where("details.status", "==", "open")
        )
        n = 2000
        t0 = time.perf_counter()
        for _ in range(n):
            rows = await store.read(lambda tx: tx.query(query))
            price = Decimal("1")
            for p_, d in rows:
                pos = Position.from_doc(p_.rsplit("/", 1)[1], d)
                sl = pos.details.stop_loss
                if sl is not None and price <= sl and pos.status is PositionStatus.OPEN:
                    _ = CloseReason.STOP_LOSS
        naive = n / (time.perf_counter() - t0)
        print(
            f"naive (one indexed query per tick, {per} positions on the symbol): "
            f"{naive:,.0f} ticks/s; worker / naive = {absorbed / secs / naive:,.0f}x"
        )
        await system.supervisor.stop()
        await system.aclose()
        await store.close()
    assert driver.proc.stdin
    driver.proc.stdin.write(b'{"cmd": "quit"}\n')
    await driver.proc.stdin.drain()
    await driver.proc.wait()
    _ = worker, Market


if __name__ == "__main__":
    asyncio.run(main())
