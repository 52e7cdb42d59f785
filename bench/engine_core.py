"""KuCoin ticker frames per second, decoded and evaluated by `Engine.on_ticks`, with
1,000,000 resting levels over 1,000 symbols, one core.

Targets: >= 1,000,000 frames/s decode + engine on one core, and >= 1,000x the naive way.

Run: .venv/bin/python bench/engine_core.py [--frames N] [--naive-frames N] [--repeat N]

The book holds 1,000,000 levels over 1,000 symbols (bench/book_cost.py's synthetic mix);
the frames are pre-generated spot `/market/ticker` frames whose prices random-walk around
each symbol's base (0.01% steps, a few frames cross something). Every mode runs `--repeat`
times, the modes interleaved, over the same frames; the book is restored after each run,
so every run sees the same levels. Printed: min / median / max of the rate.

- msgspec parse only: the frame into the lean struct (`LeanFrame`), no Tick: the floor of
  any msgspec decoder;
- decode only: `FrameDecoder(Market.SPOT).decode(raw, time.time_ns())` per frame;
- book only: `book.cross(symbol, price, kind)` on the pre-decoded ticks;
- decode + Engine.on_ticks, bursts of 16: every frame a Tick, each burst (a list, as the
  feed hands them over) into the real `Engine.on_ticks` (live prices, book, the crossing
  records; the commit loop is not running, so nothing is written);
- the same with the price plausibility filter in front (`engine.price_filter`);
- HotPath.on_frames -> Engine.on_ticks, bursts of 16: `engine/prefilter.HotPath`, the float
  prefilter against the book's float edges alone (no price filter behind it);
- the worker's spot chain, every frame a Tick: decode -> gap replay (`GapReplay.on_ticks`,
  nothing held) -> price filter -> `Engine.on_ticks`, as the worker ran before issue 11;
- the worker's spot chain, prefiltered (what `cli/worker.py` wires now): `HotPath` against
  the book's float edges and the price filter's float regions, a Tick only for a frame
  near a level or a band edge, into the same gap replay -> filter -> `Engine.on_ticks`;
  its quiet test in C where `cogmora.engine._quiet` is built (printed at start: which loop
  the HotPath modes measure), reading the raw frames in C (`HotPath.on_raw`), and the
  same chain with the Python loop for the ratio, and with C judging frames msgspec has
  parsed into `LeanFrame` first (`HotPath.on_parsed`, the C loop before the raw reader);
- naive, the seed's: decode, then `symbol == S and status == open` (indexed) and a scan of
  every returned document (bench/_naive.py);
- `--breakdown`: instead of the above, where a quiet frame's CPU time goes, step by step;
- naive, indexed level: decode, then one indexed range query on the level itself (the
  levels table `(symbol, below, level)`): only the crossed rows come back, the best a
  database can do per tick.
The naive ways run on `--naive-frames` frames spread over the run, because they are slow.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import cogmora  # noqa: F401
except ImportError:  # not installed in the venv: run from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import msgspec
from _naive import build_database, build_level_index, evaluate, evaluate_levels
from _setup import machine, median, spread
from book_cost import SyntheticBook, load, synthetic_book
from prometheus_client import CollectorRegistry

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market
from cogmora.domain.fees import FeeSchedule
from cogmora.engine.engine import Crossings, Engine
from cogmora.engine.gap_replay import GapReplay
from cogmora.engine.metrics import EngineMetrics
from cogmora.engine.prefilter import NATIVE, HotPath
from cogmora.engine.price_filter import PriceFilter
from cogmora.feeds.kucoin.decode import FrameDecoder
from cogmora.feeds.kucoin.schemas import LeanFrame
from cogmora.services.clock import SystemClock
from cogmora.services.prices import LivePrices
from cogmora.services.symbols import SymbolCatalog, SymbolSpec
from cogmora.store.sqlite import SqliteStore

BURST = 16  # frames per list handed to the engine (the feed hands one list per socket read)

FRAME = (
    b'{"type":"message","topic":"/market/ticker:%s","subject":"trade.ticker",'
    b'"data":{"sequence":"%d","price":"%s","size":"%s","bestAsk":"%s","bestAskSize":"%s",'
    b'"bestBid":"%s","bestBidSize":"%s","time":%d}}'
)


def _text(units: int) -> bytes:
    whole, frac = divmod(units, 10**8)
    return f"{whole}.{frac:08d}".rstrip("0").rstrip(".").encode()


def make_frames(data: SyntheticBook, count: int, seed: int = 3) -> list[bytes]:
    """Ticker frames for random symbols whose prices walk in 0.01% steps from their base."""
    rng = random.Random(seed)
    price = dict(data.base_units)
    names = [s.encode() for s in data.symbols]
    frames = []
    ms = 1_714_564_800_000
    for sequence in range(count):
        index = rng.randrange(len(names))
        symbol = data.symbols[index]
        tick = data.tick_units[symbol]
        step = round(price[symbol] * rng.gauss(0, 0.0001) / tick) * tick
        price[symbol] = max(tick, price[symbol] + step)
        p = price[symbol]
        frames.append(
            FRAME
            % (
                names[index],
                1_545_896_668_986 + sequence,
                _text(p),
                b"0.011",
                _text(p + tick),
                b"0.188",
                _text(max(tick, p - tick)),
                b"0.294",
                ms + sequence // 10,
            )
        )
    return frames


def rates(n: int, seconds: list[float]) -> str:
    per_s = [n / t for t in seconds]
    return f"{spread(per_s, '{:,.0f}')} frames/s, median {median(seconds) / n * 1e9:,.0f} ns/frame"


def breakdown(frames: list[bytes], book: TriggerBook, repeat: int) -> None:
    """Where a quiet frame's time goes: each step adds one piece of `HotPath.on_frames`'s
    loop, timed on CPU time (`process_time`, so other processes' load counts less)."""
    lean = msgspec.json.Decoder(LeanFrame).decode
    names = {f"/market/ticker:{s}": s for s in book.symbols()}
    edges = book.edges()

    def parse() -> None:
        for raw in frames:
            lean(raw)

    def symbol() -> None:
        get = names.get
        for raw in frames:
            frame = lean(raw)
            get(frame.topic)

    def to_float() -> None:
        get = names.get
        for raw in frames:
            frame = lean(raw)
            get(frame.topic)
            float(frame.data.price)  # type: ignore[union-attr]

    def compare() -> None:
        get, edge = names.get, edges.get
        for raw in frames:
            frame = lean(raw)
            sym = edge(get(frame.topic))  # type: ignore[arg-type]
            price = float(frame.data.price)  # type: ignore[union-attr]
            if sym is not None and sym.flo < price < sym.fhi:
                continue

    def hot() -> None:
        on_frames = HotPath(book, lambda ticks: None, LivePrices(), SystemClock().now).on_frames
        for i in range(0, len(frames), BURST):
            on_frames(frames[i : i + BURST])

    steps = [
        ("lean parse", parse),
        ("+ topic -> symbol", symbol),
        ("+ float(price)", to_float),
        ("+ edges lookup and compare", compare),
        (f"HotPath.on_frames, bursts of {BURST}, no sink work", hot),
    ]
    cpu: dict[str, list[float]] = {name: [] for name, _ in steps}
    for _ in range(repeat):
        for name, run in steps:
            started = time.process_time()
            run()
            cpu[name].append(time.process_time() - started)
    print("breakdown of a quiet frame (CPU time, min / median / max ns per frame):")
    for name, measured in cpu.items():
        print(f"  {name}: {spread([t / len(frames) * 1e9 for t in measured], '{:,.0f}')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--naive-frames", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--breakdown", action="store_true", help="only the quiet-frame profile")
    args = parser.parse_args()

    print(f"machine at start: {machine()}")
    print(
        "HotPath quiet loop: "
        + ("C (cogmora.engine._quiet)" if NATIVE else "Python (cogmora.engine._quiet not built)")
    )
    data = synthetic_book(args.levels, args.symbols)
    tmp = tempfile.TemporaryDirectory()
    engine = Engine(
        SqliteStore(Path(tmp.name) / "unused.db"),  # never started: nothing is committed
        FeeSchedule(),
        SystemClock(),
        LivePrices(),
        EngineMetrics(CollectorRegistry()),
    )
    book = engine.book
    seconds = load(book, data)
    owners = engine.index.owners  # what the engine's index knows after a load
    for row in data.positions:
        owners[row[0]] = "bench"
    for trow in data.triggers:
        owners[trow[0]] = "bench"
    print(
        f"book: {book.levels_count():,} levels, {len(book):,} keys, "
        f"{len(book.symbols()):,} symbols, bulk-loaded in {seconds:.2f} s"
    )
    frames = make_frames(data, args.frames)
    decode = FrameDecoder(Market.SPOT).decode
    ticks = [t for t in (decode(raw, 0) for raw in frames) if t is not None]
    assert len(ticks) == len(frames)
    bursts = [frames[i : i + BURST] for i in range(0, len(frames), BURST)]
    gc.collect()
    gc.freeze()  # what a worker does after loading: long-lived objects out of the collector's way
    if args.breakdown:
        breakdown(frames, book, args.repeat)
        print(f"machine at end: {machine()}")
        return

    def put_back() -> int:
        """Undo what the runs took: the engine's queued crossings go back into the book."""
        pending = engine._pending
        for hit in pending.hits:
            book.restore(hit)
        engine._pending = Crossings()
        engine.index.inflight.clear()
        return len(pending.hits)

    parse = msgspec.json.Decoder(LeanFrame).decode

    def parse_only() -> float:
        started = time.perf_counter()
        for raw in frames:
            parse(raw)
        return time.perf_counter() - started

    def decode_only() -> float:
        now = time.time_ns
        started = time.perf_counter()
        for raw in frames:
            decode(raw, now())
        return time.perf_counter() - started

    crossed: dict[str, int] = {}

    def book_only() -> float:
        cross = book.cross
        taken = []
        started = time.perf_counter()
        for tick in ticks:
            hits = cross(tick.symbol, tick.price, tick.kind)
            if hits:
                taken += hits
        elapsed = time.perf_counter() - started
        for hit in taken:
            book.restore(hit)
        crossed["book only"] = len(taken)
        return elapsed

    catalog = SymbolCatalog()
    catalog.load(
        Market.SPOT,
        {
            sym: SymbolSpec(
                tick=Decimal(data.tick_units[sym]).scaleb(-8),
                last_price=Decimal(data.base_units[sym]).scaleb(-8),
            )
            for sym in data.symbols
        },
    )

    def decoded_bursts(name: str, filtered: bool) -> Callable[[], float]:
        def run() -> float:
            now = time.time_ns
            plausible = PriceFilter(catalog, engine.on_ticks)
            sink = plausible if filtered else engine.on_ticks
            started = time.perf_counter()
            for burst in bursts:
                received = now()
                out = []
                for raw in burst:
                    tick = decode(raw, received)
                    if tick is not None:
                        out.append(tick)
                sink(out)
            elapsed = time.perf_counter() - started
            crossed[name] = put_back()
            assert plausible.dropped == 0
            return elapsed

        return run

    def hot_path() -> float:
        now = time.time_ns
        on_frames = engine.hot_path().on_frames
        started = time.perf_counter()
        for burst in bursts:
            on_frames(burst, now())
        elapsed = time.perf_counter() - started
        crossed["hot path"] = put_back()
        return elapsed

    def worker_chain(
        name: str, prefiltered: bool, native: bool = NATIVE, parsed: bool = False
    ) -> Callable[[], float]:
        def run() -> float:
            now = time.time_ns
            plausible = PriceFilter(catalog, engine.on_ticks)
            gaps = GapReplay(engine, plausible, {}, lambda s: Market.SPOT, engine.metrics)
            hot = engine.hot_path(gaps.on_ticks, plausible.regions, lambda: gaps.held)
            hot.native = native
            started = time.perf_counter()
            if parsed:
                lean, on_parsed = msgspec.json.Decoder(LeanFrame).decode, hot.on_parsed
                for burst in bursts:
                    received = now()
                    on_parsed([lean(raw) for raw in burst], [received] * len(burst))
            elif prefiltered:
                on_frames = hot.on_frames
                for burst in bursts:
                    on_frames(burst, now())
            else:
                on_ticks = gaps.on_ticks
                for burst in bursts:
                    received = now()
                    out = []
                    for raw in burst:
                        tick = decode(raw, received)
                        if tick is not None:
                            out.append(tick)
                    on_ticks(out)
            elapsed = time.perf_counter() - started
            crossed[name] = put_back()
            assert plausible.dropped == 0
            if prefiltered:
                exact_share[name] = hot.exact / len(frames)
            return elapsed

        return run

    exact_share: dict[str, float] = {}
    chain_exact = (
        f"worker chain, every frame a Tick (decode -> gaps -> filter -> on_ticks), "
        f"bursts of {BURST}"
    )
    chain_hot = (
        f"worker chain, prefiltered (HotPath -> gaps -> filter -> on_ticks), bursts of {BURST}"
    )
    loop = "C loop" if NATIVE else "Python loop"
    chain_hot = f"{chain_hot}, {loop}"
    chain_python = chain_hot.replace(", C loop", ", Python loop")
    modes: dict[str, Callable[[], float]] = {
        "msgspec parse only (LeanFrame, no Tick)": parse_only,
        "decode only (FrameDecoder)": decode_only,
        "book only (book.cross on decoded ticks)": book_only,
        f"decode + Engine.on_ticks, bursts of {BURST}": decoded_bursts("exact", False),
        f"decode + price filter + Engine.on_ticks, bursts of {BURST}": decoded_bursts(
            "filtered", True
        ),
        f"HotPath.on_frames -> Engine.on_ticks, bursts of {BURST}": hot_path,
        chain_exact: worker_chain("worker exact", False),
        chain_hot: worker_chain("worker prefiltered", True),
    }
    chain_parsed = chain_hot.replace(", C loop", ", C loop over LeanFrames parsed first")
    if NATIVE:
        modes[chain_python] = worker_chain("worker prefiltered, Python loop", True, False)
        modes[chain_parsed] = worker_chain("worker prefiltered, parsed", True, True, True)
    times: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.repeat):
        for name, run in modes.items():
            times[name].append(run())
    n = len(frames)
    print(
        f"frames: {n:,} spot ticker frames over {args.symbols:,} symbols; hits per pass: "
        + ", ".join(f"{k} {v:,}" for k, v in crossed.items())
    )
    assert len(set(crossed.values())) == 1, crossed  # every path crossed the same levels
    for name, measured in times.items():
        print(f"{name}: {rates(n, measured)}")
    hot = n / median(times[f"HotPath.on_frames -> Engine.on_ticks, bursts of {BURST}"])
    exact = n / median(times[f"decode + Engine.on_ticks, bursts of {BURST}"])
    print(
        f"HotPath vs every frame a Tick (medians): {hot / exact:.2f}x; "
        f"target >= 1,000,000 frames/s: {'OK' if hot >= 1_000_000 else 'MISSED'} "
        f"({hot:,.0f})"
    )
    worker_hot = n / median(times[chain_hot])
    worker_exact = n / median(times[chain_exact])
    print(
        f"worker chain prefiltered vs every frame a Tick (medians): "
        f"{worker_hot / worker_exact:.2f}x ({worker_hot:,.0f} vs {worker_exact:,.0f} frames/s); "
        f"frames that became Ticks: {exact_share['worker prefiltered']:.2%}; "
        f"target >= 1,000,000 frames/s: {'OK' if worker_hot >= 1_000_000 else 'MISSED'}"
    )
    parse_rate = n / median(times["msgspec parse only (LeanFrame, no Tick)"])
    line = f"worker chain prefiltered ({loop}): {parse_rate / worker_hot:.2f}x the parse's time"
    if NATIVE:
        python_rate = n / median(times[chain_python])
        parsed_rate = n / median(times[chain_parsed])
        line += (
            f"; C loop vs Python loop (medians): {worker_hot / python_rate:.2f}x "
            f"({python_rate:,.0f} frames/s with the Python loop, "
            f"{parse_rate / python_rate:.2f}x the parse's time); raw frames read in C vs "
            f"LeanFrames parsed first: {worker_hot / parsed_rate:.2f}x ({parsed_rate:,.0f})"
        )
    print(line)

    naive_frames = frames[:: max(1, n // args.naive_frames)][: args.naive_frames]
    naive: dict[str, list[float]] = {"seed": [], "level": []}
    with tempfile.TemporaryDirectory() as tmp_naive:
        started = time.perf_counter()
        db = build_database(Path(tmp_naive) / "naive.db", data.positions, data.triggers)
        levels_db = build_level_index(Path(tmp_naive) / "levels.db", data.positions, data.triggers)
        built = time.perf_counter() - started
        matches = {"seed": 0, "level": 0}
        now = time.time_ns
        for _ in range(args.repeat):
            started = time.perf_counter()
            found = 0
            for raw in naive_frames:
                tick = decode(raw, now())
                if tick is not None:
                    found += len(evaluate(db, tick.symbol, tick.price, tick.kind))
            naive["seed"].append(time.perf_counter() - started)
            matches["seed"] = found
            started = time.perf_counter()
            found = 0
            for raw in naive_frames:
                tick = decode(raw, now())
                if tick is not None:
                    found += len(evaluate_levels(levels_db, tick.symbol, tick.price))
            naive["level"].append(time.perf_counter() - started)
            matches["level"] = found
        db.close()
        levels_db.close()
    m = len(naive_frames)
    print(
        f"naive databases: {len(data.positions) + len(data.triggers):,} documents and "
        f"{book.levels_count():,} level rows, built in {built:.1f} s; {m:,} frames each; "
        f"matches: seed {matches['seed']:,}, indexed level {matches['level']:,}"
    )
    for key, label in (("seed", "the seed's query + scan"), ("level", "indexed level query")):
        rate = m / median(naive[key])
        print(
            f"naive, {label}: {rates(m, naive[key])}; HotPath / this: {hot / rate:,.0f}x, "
            f"decode + Engine.on_ticks / this: {exact / rate:,.0f}x, "
            f"worker chain prefiltered / this: {worker_hot / rate:,.0f}x, "
            f"worker chain every frame a Tick / this: {worker_exact / rate:,.0f}x"
        )
    print(f"machine at end: {machine()}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
