"""Ticker frames per second with 1,000,000 resting levels of which 100,000 are trailing stops.

Target (issue 9): within 1.5x of the same run with static levels only.

Run: .venv/bin/python bench/engine_trailing.py [--frames N] [--repeat N] [--naive-frames N]
     [--seed-frames N]

Both books hold 1,000,000 levels over 1,000 symbols and see the same pre-generated spot
ticker frames (bench/engine_core.py's random walk, 0.01% steps):

- static: bench/book_cost.py's synthetic mix of SL/TP/liquidation/trigger levels;
- trailing: the same mix with 100,000 of its levels replaced by 100,000 trailing stops on
  the same symbols (100 a symbol; longs and shorts; five callback rates from 0.5% to 5%;
  half active at once from the symbol's base price, half waiting for an activation price
  0.1% to 1% away), so the walk activates, moves and fires some of them;
- naive trailing: the static book plus, per tick, a loop over the symbol's trailing stops
  (`domain.trailing.moved` and `crossed` per position), on fewer frames: the way without
  the per-rate stacks;
- the seed's way, on `--seed-frames` frames: decode, then per frame the indexed
  `symbol == S and status == open` query over a SQLite file of every document of the
  trailing book (bench/_naive.py; the trailing stops as positions of their own) and a scan
  of each returned document, then the symbol's trailing stops looped as above (peaks kept
  in memory, never written: generous to it). The lead over it as the book grows richer.

Every way runs once a round, `--repeat` rounds interleaved; each book run loads a fresh
book (the same start for every run) and times `book.cross` over the decoded ticks (book
only) and decode+book. Printed: one table of min / median / max with the ratios of the
medians, `machine()` at start and end. After a trailing run it also times one
`take_moved_trailing()` (what the once-a-second writer takes) and reports how many keys
it returned.

`--loop-block` measures something else: how long the event loop is held while the
trailing writer stores one big move's peaks. A SQLite store holds `--positions` (56,000)
open positions with trailing stops over 560 symbols, loaded by a real `Engine`; each
round sends one tick per symbol a whole price step up (every peak moves), then runs
`engine.trailing.flush()` while a heartbeat task wakes every millisecond and a tick task
every 5 ms. Figures: the longest single loop callback (one step of a coroutine), the
heartbeat's worst lateness (the loop block as anything waiting on the loop sees it,
GIL waits for the store's writer thread and a loaded machine's CPU included), the feed's
worst lateness, the ticks fed meanwhile, the round's wall time. "before" is the same
measurement on the revision before chunking (`--before`, default 2f2f100, extracted
with `git archive` and run in its own process: its writer took the whole round at once
and wrote it in transactions of up to `max_writes_per_tx`, one on SQLite); "after" is
this checkout. The two sides alternate, `--cycles` times, `--repeat` rounds each.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

try:
    import cogmora  # noqa: F401
except ImportError:  # not installed in the venv: run from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _naive import PositionRow, build_database, evaluate
from _setup import Row, Runs, add_repeat, on_machine, rounds, write_positions, write_users
from _setup import spread as spread_of
from book_cost import SyntheticBook, synthetic_book
from engine_core import make_frames
from prometheus_client import CollectorRegistry

from cogmora.domain import trailing as tr
from cogmora.domain.book import Hit, TriggerBook
from cogmora.domain.enums import Market, Side, Source
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import Position
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.ticks import Tick
from cogmora.domain.trailing import TrailingStop
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.feeds.kucoin.decode import FrameDecoder
from cogmora.services.clock import SystemClock
from cogmora.services.prices import LivePrices
from cogmora.store.port import Store
from cogmora.store.sqlite import SqliteStore

RATES = [Decimal(r) for r in ("0.005", "0.01", "0.02", "0.03", "0.05")]
TrailRow = tuple[str, str, Side, None, None, None, TrailingStop, Decimal | None]


def trailing_rows(data: SyntheticBook, count: int, seed: int = 11) -> list[TrailRow]:
    rng = random.Random(seed)
    rows: list[TrailRow] = []
    for i in range(count):
        symbol = data.symbols[i % len(data.symbols)]
        base_u, tick_u = data.base_units[symbol], data.tick_units[symbol]
        side = Side.LONG if rng.random() < 0.5 else Side.SHORT
        rate = rng.choice(RATES)
        base = Decimal(base_u).scaleb(-8)
        if rng.random() < 0.5:
            rows.append((f"t{i}", symbol, side, None, None, None, TrailingStop(rate), base))
            continue
        away = rng.uniform(0.001, 0.01) * (1 if side is Side.LONG else -1)
        units = max(tick_u, int(base_u * (1 + away)) // tick_u * tick_u)
        spec = TrailingStop(rate, Decimal(units).scaleb(-8))
        rows.append((f"t{i}", symbol, side, None, None, None, spec, None))
    return rows


def without_levels(data: SyntheticBook, drop: int) -> SyntheticBook:
    """The same symbols and prices with `drop` fewer levels (positions taken off the end)."""
    positions = list(data.positions)
    dropped = 0
    while dropped < drop and positions:
        row = positions.pop()
        dropped += sum(v is not None for v in row[3:])
    return SyntheticBook(data.symbols, data.base_units, data.tick_units, positions, data.triggers)


def load(data: SyntheticBook, trails: list[TrailRow]) -> TriggerBook:
    gc.unfreeze()
    gc.collect()
    book = TriggerBook()
    book.load_positions(data.positions)
    book.load_triggers(data.triggers)
    if trails:
        book.load_positions(trails)
    gc.collect()
    gc.freeze()
    return book


# ---------------------------------------------------------------- --loop-block

BIG_SYMBOLS = 560


async def seed_trailing(store: Store, count: int, chunk: int = 4000) -> None:
    """`count` open long positions with trailing stops at entry 100, over 560 symbols."""
    fees = FeeSchedule()
    now = datetime.now(UTC)
    uids = [f"trail{i:04d}" for i in range(100)]
    await write_users(store, uids, Decimal("1000000000"))

    def position(i: int) -> Position:
        request = OpenRequest(
            f"S{i % BIG_SYMBOLS:03d}-USDT", Market.SPOT, Side.LONG, qty=Decimal("0.01"),
            source=Source.API, trailing_stop=TrailingStop(RATES[i % len(RATES)]),
        )
        return build_position(request, uids[i % 100], new_id(), Decimal(100), fees, now)

    await write_positions(store, (position(i) for i in range(count)), chunk)


class _Longest:
    """The longest single callback the loop ran (a coroutine step: the time between two
    awaits), found by timing `asyncio.Handle._run` while installed."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._run = asyncio.Handle._run

    def __enter__(self) -> _Longest:
        original, outer = self._run, self

        def timed(handle: asyncio.Handle) -> None:
            began = time.perf_counter()
            try:
                original(handle)
            finally:
                outer.worst = max(outer.worst, time.perf_counter() - began)

        asyncio.Handle._run = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.Handle._run = self._run  # type: ignore[method-assign]


Watched = tuple[float, float, float, int, float]


async def watched(flush: Callable[[], object]) -> Watched:
    """Run `flush` beside a 1 ms heartbeat and a 5 ms tick feed: (the longest callback,
    the heartbeat's worst lateness, the feed's worst lateness, ticks fed meanwhile, the
    flush's wall time). Lateness also counts waits for the GIL (the store's writer thread
    runs Python too) and for a CPU on a loaded machine; the longest callback is the loop
    held by one step of ours (preemption inside it included)."""
    worst = [0.0, 0.0]
    ticks = [0]
    stop = asyncio.Event()

    async def heartbeat() -> None:
        while not stop.is_set():
            due = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            worst[0] = max(worst[0], time.perf_counter() - due)

    async def feed() -> None:
        while not stop.is_set():
            due = time.perf_counter() + 0.005
            await asyncio.sleep(0.005)
            worst[1] = max(worst[1], time.perf_counter() - due)
            ticks[0] += 1

    tasks = [asyncio.create_task(heartbeat()), asyncio.create_task(feed())]
    await asyncio.sleep(0.05)
    with _Longest() as longest:
        await asyncio.sleep(0)  # the flush starts in a step of its own, timed
        began = time.perf_counter()
        await flush()  # type: ignore[misc]
        wall = time.perf_counter() - began
    stop.set()
    await asyncio.gather(*tasks)
    return longest.worst, worst[0], worst[1], ticks[0], wall


async def loop_block(positions: int, repeat: int) -> list[Watched]:
    """`repeat` big moves, each stored by this checkout's `engine.trailing.flush()`."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        await store.start()
        await seed_trailing(store, positions)
        engine = Engine(store, FeeSchedule(), SystemClock(), LivePrices(),
                        EngineMetrics(CollectorRegistry()))
        await engine.load()
        await engine.trailing.flush()
        symbols = [f"S{i:03d}-USDT" for i in range(BIG_SYMBOLS)]
        rows: list[Watched] = []
        for step in range(repeat):
            engine.on_ticks([Tick(s, Market.SPOT, Decimal(101 + step)) for s in symbols])
            written: list[int] = []

            async def flush(written: list[int] = written) -> None:
                written.append(await engine.trailing.flush())

            rows.append(await watched(flush))
            assert written[0] == positions, written[0]
        await store.close()
    return rows


def run_side(rev: str | None, positions: int, repeat: int, tmp: Path) -> list[Watched]:
    """This script's `--loop-block-json` in a fresh process, on this checkout's `src` or on
    `rev`'s (extracted with `git archive`): the code before chunking runs as it was."""
    root = Path(__file__).resolve().parents[1]
    src = root / "src"
    if rev is not None:
        dest = tmp / rev
        if not dest.exists():
            dest.mkdir()
            archive = subprocess.run(["git", "-C", str(root), "archive", rev, "src"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        src = dest / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{root / 'bench'}"}
    out = subprocess.run(
        [sys.executable, __file__, "--loop-block-json", "--positions", str(positions),
         "--repeat", str(repeat)],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    return [tuple(r) for r in json.loads(out.strip().splitlines()[-1])]


def compare(before: str, positions: int, repeat: int, cycles: int) -> None:
    results: dict[str, list[Watched]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(cycles):  # interleaved, so a change in the machine's load hits both
            results["before"] += run_side(before, positions, repeat, Path(tmp))
            results["after"] += run_side(None, positions, repeat, Path(tmp))
    print(f"{positions:,} trailing stops (560 symbols, 5 rates) moved by one tick a symbol; "
          f"SQLite; {cycles} x {repeat} rounds a side, each a fresh process per {repeat}")
    print(f"before = {before} (the whole round taken at once, one transaction of up to "
          f"max_writes_per_tx); after = this checkout (slices of 500, the loop yielded)")
    rows_of = [
        ("longest single callback (loop held by one step), ms", 0, 1e3, "{:,.1f}"),
        ("loop block: worst lateness of a 1 ms heartbeat, ms", 1, 1e3, "{:,.1f}"),
        ("worst lateness of a 5 ms tick feed, ms", 2, 1e3, "{:,.1f}"),
        ("ticks fed during the round", 3, 1, "{:,.0f}"),
        ("round wall time, s", 4, 1, "{:,.2f}"),
    ]
    for name, rows in results.items():
        print(f"{name}:")
        for label, i, scale, fmt in rows_of:
            print(f"  {label:<52} {spread_of([r[i] * scale for r in rows], fmt)}")
    for label, i, _, _ in rows_of[:2]:
        b = statistics.median(r[i] for r in results["before"])
        a = statistics.median(r[i] for r in results["after"])
        print(f"median {label.split(',')[0]}: before / after = {b / a:,.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, default=1_000_000)
    parser.add_argument("--trailing", type=int, default=100_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--naive-frames", type=int, default=20_000)
    parser.add_argument("--seed-frames", type=int, default=1_000)
    add_repeat(parser, default=3)
    parser.add_argument("--loop-block", action="store_true",
                        help="measure the loop block of storing one big move's peaks instead")
    parser.add_argument("--loop-block-json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--positions", type=int, default=56_000)
    parser.add_argument("--before", default="2f2f100",
                        help="the revision to compare with (before chunking)")
    parser.add_argument("--cycles", type=int, default=2)
    args = parser.parse_args()
    if args.loop_block_json:
        print(json.dumps(asyncio.run(loop_block(args.positions, args.repeat))))
        return
    if args.loop_block:
        with on_machine():
            compare(args.before, args.positions, args.repeat, args.cycles)
        return

    with on_machine():
        per_tick(args)


def per_tick(args: argparse.Namespace) -> None:
    data = synthetic_book(args.levels, args.symbols)
    trails = trailing_rows(data, args.trailing)
    mixed = without_levels(data, args.trailing)
    frames = make_frames(data, args.frames)
    decode = FrameDecoder(Market.SPOT).decode
    ticks = [t for t in (decode(raw, 0) for raw in frames) if t is not None]
    assert len(ticks) == len(frames)
    n = len(frames)
    print(f"decoder: FrameDecoder (msgspec); {n:,} frames over {args.symbols:,} symbols")

    def book_only(book: TriggerBook) -> tuple[float, int]:
        cross = book.cross
        hits = 0
        started = time.perf_counter()
        for tick in ticks:
            crossed = cross(tick.symbol, tick.price, tick.kind)
            if crossed:
                hits += len(crossed)
        return time.perf_counter() - started, hits

    def decode_and_book(book: TriggerBook) -> tuple[float, int]:
        cross = book.cross
        now = time.time_ns
        hits = 0
        started = time.perf_counter()
        for raw in frames:
            tick = decode(raw, now())
            if tick is not None:
                crossed = cross(tick.symbol, tick.price, tick.kind)
                if crossed:
                    hits += len(crossed)
        return time.perf_counter() - started, hits

    naive_frames = frames[:: max(1, n // args.naive_frames)][: args.naive_frames]
    naive_ticks = [t for t in (decode(raw, 0) for raw in naive_frames) if t is not None]
    seed_frames = frames[:: max(1, n // args.seed_frames)][: args.seed_frames]
    runs = Runs()
    hits: dict[str, int] = {}
    moved: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        # The seed's documents: every static position and trigger, and the trailing stops
        # as positions of their own (no fixed level: the scan decodes them, the loop trails).
        no_levels: list[PositionRow] = [(r[0], r[1], r[2], None, None, None) for r in trails]
        db = build_database(Path(tmp) / "seed.db", mixed.positions + no_levels, mixed.triggers)
        print(f"seed's database: {len(mixed.positions) + len(trails) + len(mixed.triggers):,}"
              f" documents, built in {time.perf_counter() - started:.1f} s (not measured)")
        for _ in rounds(args.repeat):
            for name, rows, extra in (("static", data, []), ("trailing", mixed, trails)):
                for mode, run in (("book", book_only), ("decode+book", decode_and_book)):
                    book = load(rows, extra)
                    if name == "trailing":
                        wanted = mixed.levels + len(trails)  # args.levels, give or take 2
                        assert book.levels_count() == wanted, (book.levels_count(), wanted)
                        book.take_moved_trailing()
                    elapsed, count = run(book)
                    runs.add(f"{name} {mode}", n / elapsed)
                    hits[f"{name} {mode}"] = count
                    if name == "trailing" and mode == "book":
                        started = time.perf_counter()
                        taken = sum(len(w.keys) for w in book.take_moved_trailing())
                        moved.append((taken, time.perf_counter() - started))
                    del book
            book = load(mixed, [])
            rate, hits["naive"] = naive_trailing(book, trails, naive_ticks)
            runs.add("naive", rate)
            del book
            rate, hits["seed"] = seed_way(db, trails, seed_frames, decode)
            runs.add("seed", rate)
        db.close()
    for key in ("static book", "trailing book", "static decode+book", "trailing decode+book"):
        print(f"{key}: {hits[key]:,} hits a run")
    print(f"naive trailing: {len(naive_ticks):,} frames, {hits['naive']:,} hits a run (fired "
          f"ones keep trailing); the seed's way: {len(seed_frames):,} frames, "
          f"{hits['seed']:,} hits a run")
    print(
        runs.table(
            [
                Row("static book", "static book only, frames/s"),
                Row("trailing book", "trailing book only, frames/s",
                    ("static book", "naive", "seed")),
                Row("static decode+book", "static decode+book, frames/s", "seed"),
                Row("trailing decode+book", "trailing decode+book, frames/s",
                    ("static decode+book", "seed")),
                Row("naive", "naive trailing (static book + a loop over the symbol's trailing"
                    " stops), ticks/s"),
                Row("seed", "the seed's way (decode, indexed query, scan, trailing loop),"
                    " frames/s"),
            ]
        )
    )
    for mode in ("book", "decode+book"):
        slow = runs.median(f"static {mode}") / runs.median(f"trailing {mode}")
        best = max(runs.values[f"static {mode}"]) / max(runs.values[f"trailing {mode}"])
        verdict = "OK" if slow <= 1.5 else "MISSED"
        print(f"{mode}: trailing takes {slow:.2f}x the static time (medians; best runs "
              f"{best:.2f}x); target <= 1.5x: {verdict}")
    keys, seconds = max(moved)
    print(f"take_moved_trailing after a run: {keys:,} keys in {seconds * 1e3:.1f} ms")


def naive_trailing(
    book: TriggerBook, trails: list[TrailRow], ticks: list[Tick]
) -> tuple[float, int]:
    """The static book, and every trailing stop of the tick's symbol looped: (ticks/s, hits)."""
    per_symbol = trailing_by_symbol(trails)
    cross: Callable[..., list[Hit]] = book.cross
    hits = 0
    started = time.perf_counter()
    for tick in ticks:
        hits += len(cross(tick.symbol, tick.price, tick.kind)) + trail_loop(per_symbol, tick)
    return len(ticks) / (time.perf_counter() - started), hits


def seed_way(
    db: sqlite3.Connection,
    trails: list[TrailRow],
    frames: list[bytes],
    decode: Callable[[bytes, int], Tick | None],
) -> tuple[float, int]:
    """Per frame the seed's indexed query and scan (bench/_naive.py), then the symbol's
    trailing stops looped (peaks kept in memory, never written back: generous to it)."""
    per_symbol = trailing_by_symbol(trails)
    hits = 0
    now = time.time_ns
    started = time.perf_counter()
    for raw in frames:
        tick = decode(raw, now())
        if tick is not None:
            hits += len(evaluate(db, tick.symbol, tick.price, tick.kind))
            hits += trail_loop(per_symbol, tick)
    return len(frames) / (time.perf_counter() - started), hits


Trail = list[object]  # [key, side, spec, peak]


def trailing_by_symbol(trails: list[TrailRow]) -> dict[str, list[Trail]]:
    per_symbol: dict[str, list[Trail]] = {}
    for row in trails:
        per_symbol.setdefault(row[1], []).append([row[0], row[2], row[6], row[7]])
    return per_symbol


def trail_loop(per_symbol: dict[str, list[Trail]], tick: Tick) -> int:
    """Every trailing stop of the tick's symbol: its peak moved, then checked (fired ones
    keep trailing, so every run sees the same work)."""
    fired = 0
    for entry in per_symbol.get(tick.symbol, ()):
        side, spec, peak = entry[1], entry[2], entry[3]
        assert isinstance(side, Side) and isinstance(spec, TrailingStop)
        peak = tr.moved(side, peak, spec, tick.price)  # type: ignore[arg-type]
        entry[3] = peak
        if tr.crossed(side, peak, spec.callback_rate, tick.price):
            fired += 1
    return fired


if __name__ == "__main__":
    main()
