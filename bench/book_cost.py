"""What 1,000,000 resting levels over 1,000 symbols cost the trigger book: bytes and load time.

Targets: <= 250 bytes per resting level (tracemalloc, everything the book keeps alive,
including the 20-character id strings), and a bulk load in <= 10 s.

Run: .venv/bin/python bench/book_cost.py [--levels N] [--symbols N] [--repeat 5]

Load time: the bulk load and the naive way (one `set_position` / `set_trigger` per key)
each run once a round, `--repeat` rounds interleaved, into a fresh book each time; printed
min / median / max and the ratio of the medians. Memory is measured once: the data is
seeded, so every run allocates the same objects (and tracemalloc slows a run several times).

`synthetic_book` is shared with bench/engine_core.py: per symbol a base price, and around
it a realistic mix of spot longs (SL + TP), futures longs and shorts (SL + TP +
liquidation) and triggers (one level), at 0.2% to 20% from the base, quantized to the
symbol's tick.
"""

from __future__ import annotations

import argparse
import gc
import random
import string
import sys
import time
import tracemalloc
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

try:
    import cogmora  # noqa: F401
except ImportError:  # not installed in the venv: run from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import Row, Runs, add_repeat, on_machine, rounds

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Side, TriggerOp

_ALPHABET = string.ascii_letters + string.digits
PositionRow = tuple[str, str, Side, Decimal | None, Decimal | None, Decimal | None]
TriggerRow = tuple[str, str, TriggerOp, Decimal]


@dataclass
class SyntheticBook:
    symbols: list[str]
    base_units: dict[str, int]  # base price * 10**8
    tick_units: dict[str, int]  # price increment * 10**8
    positions: list[PositionRow]
    triggers: list[TriggerRow]

    @property
    def levels(self) -> int:
        n = sum(sum(v is not None for v in row[3:]) for row in self.positions)
        return n + len(self.triggers)


def _units(value: int) -> Decimal:
    return Decimal(value).scaleb(-8)


def synthetic_book(levels: int, symbols: int, seed: int = 7) -> SyntheticBook:
    rng = random.Random(seed)
    names = [f"S{i:04d}-USDT" for i in range(symbols)]
    base_units: dict[str, int] = {}
    tick_units: dict[str, int] = {}
    positions: list[PositionRow] = []
    triggers: list[TriggerRow] = []
    per_symbol, extra = divmod(levels, symbols)

    def key() -> str:
        return "".join(rng.choices(_ALPHABET, k=20))

    for index, name in enumerate(names):
        base = 10 ** rng.uniform(-3, 5)  # 0.001 .. 100,000 USDT
        tick = 10 ** max(-8, int(f"{base:e}".split("e")[1]) - 5)  # ~6 significant digits
        tick_u = max(1, round(tick * 10**8))
        base_u = max(tick_u * 100, int(base * 10**8) // tick_u * tick_u)
        base_units[name], tick_units[name] = base_u, tick_u

        def level(
            lo: float, hi: float, sign: int, base_u: int = base_u, tick_u: int = tick_u
        ) -> Decimal:
            u = base_u * (1 + sign * rng.uniform(lo, hi))
            return _units(max(tick_u, int(u) // tick_u * tick_u))

        budget = per_symbol + (1 if index < extra else 0)
        while budget > 0:
            roll = rng.random()
            if roll < 0.4 and budget >= 2:  # spot long with SL and TP
                positions.append(
                    (key(), name, Side.LONG, level(0.002, 0.1, -1), level(0.002, 0.2, 1), None)
                )
                budget -= 2
            elif roll < 0.7 and budget >= 3:  # futures with SL, TP and liquidation
                side = Side.LONG if rng.random() < 0.6 else Side.SHORT
                s = -1 if side is Side.LONG else 1
                sl, liq = level(0.002, 0.04, s), level(0.05, 0.2, s)
                positions.append((key(), name, side, sl, level(0.002, 0.2, -s), liq))
                budget -= 3
            else:
                op = TriggerOp.ABOVE if rng.random() < 0.5 else TriggerOp.BELOW
                s = 1 if op is TriggerOp.ABOVE else -1
                triggers.append((key(), name, op, level(0.002, 0.2, s)))
                budget -= 1
    return SyntheticBook(names, base_units, tick_units, positions, triggers)


def load(book: TriggerBook, data: SyntheticBook) -> float:
    started = time.perf_counter()
    book.load_positions(data.positions)
    book.load_triggers(data.triggers)
    return time.perf_counter() - started


def one_by_one(data: SyntheticBook) -> float:
    book = TriggerBook()
    started = time.perf_counter()
    for row in data.positions:
        book.set_position(*row)
    for trow in data.triggers:
        book.set_trigger(*trow)
    return time.perf_counter() - started


def held_bytes(levels: int, symbols: int) -> tuple[int, int]:
    """(bytes the book keeps alive, bytes of the id strings alone): everything allocated
    while building the rows and loading them that is still alive once the rows are
    dropped, i.e. what the book holds, ids included."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    data = synthetic_book(levels, symbols)
    key_bytes = sum(sys.getsizeof(row[0]) for row in data.positions) + sum(
        sys.getsizeof(row[0]) for row in data.triggers
    )
    book = TriggerBook()
    load(book, data)
    del data
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del book
    return held, key_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    add_repeat(parser)
    args = parser.parse_args()
    with on_machine():
        measure(args)


def measure(args: argparse.Namespace) -> None:
    # Load time, without tracemalloc (it slows allocation down several times).
    data = synthetic_book(args.levels, args.symbols)
    keys = len(data.positions) + len(data.triggers)
    runs = Runs()
    for _ in rounds(args.repeat):
        book = TriggerBook()
        seconds = load(book, data)
        assert book.levels_count() == data.levels == args.levels, book.levels_count()
        del book
        gc.collect()
        runs.add("bulk", args.levels / seconds)
        runs.add("bulk s", seconds)
        runs.add("naive", args.levels / one_by_one(data))
        gc.collect()
    del data
    held, key_bytes = held_bytes(args.levels, args.symbols)

    per_level = held / args.levels
    print(
        f"python {sys.version.split()[0]}; {args.levels:,} levels, {keys:,} keys, "
        f"{args.symbols:,} symbols"
    )
    print(
        f"memory (one run): {held / 2**20:,.1f} MiB held = {per_level:,.0f} B/level "
        f"(ids alone {key_bytes / args.levels:,.0f} B/level; target <= 250): "
        f"{'OK' if per_level <= 250 else 'MISSED'}"
    )
    print(
        runs.table(
            [
                Row("bulk", "bulk load, levels/s", "naive"),
                Row("bulk s", "bulk load, s (target <= 10 s)", fmt="{:,.2f}"),
                Row("naive", "naive: one set_position / set_trigger per key, levels/s"),
            ]
        )
    )
    print(f"bulk load at the median: {'OK' if runs.median('bulk s') <= 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
