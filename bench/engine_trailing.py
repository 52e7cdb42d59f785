"""Ticker frames per second with 1,000,000 resting levels of which 100,000 are trailing stops.

Target (issue 9): within 1.5x of the same run with static levels only.

Run: .venv/bin/python bench/engine_trailing.py [--frames N] [--repeat N] [--naive-frames N]

Both books hold 1,000,000 levels over 1,000 symbols and see the same pre-generated spot
ticker frames (bench/engine_core.py's random walk, 0.01% steps):

- static: bench/book_cost.py's synthetic mix of SL/TP/liquidation/trigger levels;
- trailing: the same mix with 100,000 of its levels replaced by 100,000 trailing stops on
  the same symbols (100 a symbol; longs and shorts; five callback rates from 0.5% to 5%;
  half active at once from the symbol's base price, half waiting for an activation price
  0.1% to 1% away), so the walk activates, moves and fires some of them;
- naive trailing: the static book plus, per tick, a loop over the symbol's trailing stops
  (`domain.trailing.moved` and `crossed` per position), on fewer frames: the way without
  the per-rate stacks, for the ratio.

Each repeat loads a fresh book (the same start for every run) and times `book.cross` over
the decoded ticks (book only) and decode+book; min/median/max over the repeats. After a
trailing run it also times one `take_moved_trailing()` (what the once-a-second writer
takes) and reports how many keys it returned.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

try:
    import cogmora  # noqa: F401
except ImportError:  # not installed in the venv: run from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from book_cost import SyntheticBook, synthetic_book
from engine_core import machine, make_decoder, make_frames

from cogmora.domain import trailing as tr
from cogmora.domain.book import Hit, TriggerBook
from cogmora.domain.enums import Side
from cogmora.domain.ticks import Tick
from cogmora.domain.trailing import TrailingStop

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


def spread(times: list[float], n: int) -> str:
    rates = sorted(n / t for t in times)
    return (
        f"min {rates[0]:>10,.0f}  median {statistics.median(rates):>10,.0f}  "
        f"max {rates[-1]:>10,.0f} frames/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, default=1_000_000)
    parser.add_argument("--trailing", type=int, default=100_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--naive-frames", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    data = synthetic_book(args.levels, args.symbols)
    trails = trailing_rows(data, args.trailing)
    mixed = without_levels(data, args.trailing)
    frames = make_frames(data, args.frames)
    decoder_name, decode = make_decoder(False)
    ticks = [t for t in (decode(raw, 0) for raw in frames) if t is not None]
    assert len(ticks) == len(frames)
    print(f"decoder: {decoder_name}; {len(frames):,} frames over {args.symbols:,} symbols")

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

    results: dict[str, list[float]] = {}
    hits: dict[str, int] = {}
    moved: list[tuple[int, float]] = []
    for _ in range(args.repeat):
        for name, rows, extra in (("static", data, []), ("trailing", mixed, trails)):
            for mode, run in (("book", book_only), ("decode+book", decode_and_book)):
                book = load(rows, extra)
                if name == "trailing":
                    assert book.levels_count() == args.levels, book.levels_count()
                    book.take_moved_trailing()
                elapsed, count = run(book)
                results.setdefault(f"{name} {mode}", []).append(elapsed)
                hits[f"{name} {mode}"] = count
                if name == "trailing" and mode == "book":
                    started = time.perf_counter()
                    taken = len(book.take_moved_trailing())
                    moved.append((taken, time.perf_counter() - started))
                del book
    n = len(frames)
    for key, times in results.items():
        print(f"{key:<22} {spread(times, n)}  ({hits[key]:,} hits a run)")
    for mode in ("book", "decode+book"):
        slow = min(results[f"trailing {mode}"]) / min(results[f"static {mode}"])
        verdict = "OK" if slow <= 1.5 else "MISSED"
        print(f"{mode}: trailing takes {slow:.2f}x the static time (best runs); "
              f"target <= 1.5x: {verdict}")
    keys, seconds = max(moved)
    print(f"take_moved_trailing after a run: {keys:,} keys in {seconds * 1e3:.1f} ms")

    # The naive way: the static book, and every trailing stop of the tick's symbol looped.
    naive_ticks = ticks[:: max(1, n // args.naive_frames)][: args.naive_frames]
    book = load(mixed, [])
    per_symbol: dict[str, list[list[object]]] = {}
    for row in trails:
        per_symbol.setdefault(row[1], []).append([row[0], row[2], row[6], row[7]])
    naive_hits = 0

    def naive(tick: Tick) -> int:
        fired = 0
        entries = per_symbol.get(tick.symbol, ())
        for entry in entries:
            side, spec, peak = entry[1], entry[2], entry[3]
            assert isinstance(side, Side) and isinstance(spec, TrailingStop)
            peak = tr.moved(side, peak, spec, tick.price)  # type: ignore[arg-type]
            entry[3] = peak
            if tr.crossed(side, peak, spec.callback_rate, tick.price):
                fired += 1
        return fired

    cross: Callable[..., list[Hit]] = book.cross
    started = time.perf_counter()
    for tick in naive_ticks:
        naive_hits += len(cross(tick.symbol, tick.price, tick.kind)) + naive(tick)
    t_naive = time.perf_counter() - started
    naive_rate = len(naive_ticks) / t_naive
    print(f"naive trailing book  {naive_rate:>10,.0f} frames/s "
          f"({len(naive_ticks):,} frames, {naive_hits:,} hits; fired ones keep trailing)")
    fast = n / min(results["trailing book"])
    print(f"trailing book vs naive trailing: {fast / naive_rate:,.1f}x")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
