"""KuCoin ticker frames per second, decoded and evaluated, with 1,000,000 resting levels.

Targets: >= 1,000,000 frames/s decode+book on one core, and >= 1,000x the naive way.

Run: .venv/bin/python bench/engine_core.py [--frames N] [--naive-frames N] [--local-decoder]

The book holds 1,000,000 levels over 1,000 symbols (bench/book_cost.py's synthetic mix);
the frames are pre-generated spot `/market/ticker` frames whose prices random-walk around
each symbol's base (0.01% steps, a few frames cross something). Each mode runs over the
same frames and the book is restored between runs (`TriggerBook.restore`), so every mode
sees the same levels:

- msgspec parse only: the frame into a two-field struct, no Tick (the floor of decoding);
- decode only: `FrameDecoder(Market.SPOT).decode(raw, time.time_ns())` per frame;
- book only: `book.cross(symbol, price, kind)` on the pre-decoded ticks;
- decode+book: both, as the worker's hot loop does;
- bursts of 16: decode+book as the feed hands frames over (a list per socket read), and
  decode+filter+book, the same with the worker's price plausibility filter
  (`cogmora.engine.price_filter.PriceFilter`, SPEC 5.1) in front of the book: their
  difference is what the filter costs per frame; "price filter only" runs the filter on
  the pre-decoded ticks, one tick per call (its worst case) and in bursts of 16;
- naive: decode, then the seed's indexed query and a scan of its documents (bench/_naive.py),
  for a fixed number of frames spread over the run, because it is slow.

The decoder is the project's `cogmora.feeds.kucoin.decode.FrameDecoder`; `--local-decoder`
swaps in the small msgspec decoder below (what this benchmark used before that existed).
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

try:
    import cogmora  # noqa: F401
except ImportError:  # not installed in the venv: run from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import msgspec
from _naive import build_database, evaluate
from book_cost import SyntheticBook, load, synthetic_book

from cogmora.domain.book import Hit, TriggerBook
from cogmora.domain.enums import Market
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.engine.price_filter import PriceFilter
from cogmora.services.symbols import SymbolCatalog, SymbolSpec

Decode = Callable[[bytes, int], Tick | None]
BURST = 16  # frames per list handed to the engine (the feed hands one list per socket read)

FRAME = (
    b'{"type":"message","topic":"/market/ticker:%s","subject":"trade.ticker",'
    b'"data":{"sequence":"%d","price":"%s","size":"%s","bestAsk":"%s","bestAskSize":"%s",'
    b'"bestBid":"%s","bestBidSize":"%s","time":%d}}'
)


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in out.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor() or "unknown CPU",
    )
    cpus = len(__import__("os").sched_getaffinity(0))
    return f"{model}, {cpus} CPUs available, Python {platform.python_version()}"


class _Data(msgspec.Struct, gc=False):
    price: Decimal
    time: int = 0


class _Frame(msgspec.Struct, gc=False):
    type: str = ""
    topic: str = ""
    data: _Data | None = None


def local_decoder() -> Decode:
    """A minimal msgspec decoder of the spot ticker frame, for when FrameDecoder is absent."""
    decode = msgspec.json.Decoder(_Frame).decode
    spot, trade = Market.SPOT, PriceKind.TRADE

    def decode_frame(raw: bytes, received_ns: int) -> Tick | None:
        frame = decode(raw)
        if frame.type != "message" or frame.data is None:
            return None
        topic = frame.topic
        data = frame.data
        return Tick(
            topic[topic.find(":") + 1 :],
            spot,
            data.price,
            trade,
            data.time * 1_000_000,
            received_ns,
        )

    return decode_frame


def make_decoder(local: bool) -> tuple[str, Decode]:
    if not local:
        try:
            from cogmora.feeds.kucoin.decode import FrameDecoder
        except ImportError:
            pass
        else:
            return "cogmora.feeds.kucoin.decode.FrameDecoder", FrameDecoder(Market.SPOT).decode
    return "local msgspec decoder (bench/engine_core.py)", local_decoder()


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


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} frames/s ({seconds / count * 1e9:,.0f} ns/frame)"


def best_of(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--naive-frames", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the fast modes")
    parser.add_argument("--local-decoder", action="store_true")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    data = synthetic_book(args.levels, args.symbols)
    book = TriggerBook()
    seconds = load(book, data)
    print(
        f"book: {book.levels_count():,} levels, {len(book):,} keys, "
        f"{len(book.symbols()):,} symbols, bulk-loaded in {seconds:.2f} s"
    )
    frames = make_frames(data, args.frames)
    decoder_name, decode = make_decoder(args.local_decoder)
    decoded = [decode(raw, 0) for raw in frames]
    ticks = [t for t in decoded if t is not None]
    assert len(ticks) == len(frames)
    print(f"decoder: {decoder_name}")
    gc.collect()
    gc.freeze()  # what a worker does after loading: long-lived objects out of the collector's way

    taken: list[Hit] = []
    crossing_frames = hits_per_run = 0

    def put_back() -> None:
        for hit in taken:
            book.restore(hit)
        taken.clear()

    parse = msgspec.json.Decoder(_Frame).decode

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

    def book_only() -> float:
        nonlocal crossing_frames, hits_per_run
        cross = book.cross
        keep = taken.extend
        crossing_frames = 0
        started = time.perf_counter()
        for tick in ticks:
            hits = cross(tick.symbol, tick.price, tick.kind)
            if hits:
                keep(hits)
                crossing_frames += 1
        elapsed = time.perf_counter() - started
        hits_per_run = len(taken)
        put_back()
        return elapsed

    def decode_and_book() -> float:
        now = time.time_ns
        cross = book.cross
        keep = taken.extend
        started = time.perf_counter()
        for raw in frames:
            tick = decode(raw, now())
            if tick is not None:
                hits = cross(tick.symbol, tick.price, tick.kind)
                if hits:
                    keep(hits)
        elapsed = time.perf_counter() - started
        put_back()
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

    def bursts(filtered: bool) -> Callable[[], float]:
        def run() -> float:
            now = time.time_ns
            cross = book.cross
            keep = taken.extend

            def evaluate(burst: list[Tick]) -> None:
                for tick in burst:
                    hits = cross(tick.symbol, tick.price, tick.kind)
                    if hits:
                        keep(hits)

            plausible = PriceFilter(catalog, evaluate)
            sink = plausible if filtered else evaluate
            started = time.perf_counter()
            for i in range(0, len(frames), BURST):
                burst = []
                for raw in frames[i : i + BURST]:
                    tick = decode(raw, now())
                    if tick is not None:
                        burst.append(tick)
                sink(burst)
            elapsed = time.perf_counter() - started
            put_back()
            assert plausible.dropped == 0
            return elapsed

        return run

    def filter_only(size: int) -> Callable[[], float]:
        def run() -> float:
            passed: list[list[Tick]] = []
            plausible = PriceFilter(catalog, passed.append)
            chunks = [ticks[i : i + size] for i in range(0, len(ticks), size)]
            started = time.perf_counter()
            for chunk in chunks:
                plausible(chunk)
            elapsed = time.perf_counter() - started
            assert plausible.dropped == 0 and len(passed) == len(chunks)
            return elapsed

        return run

    n = len(frames)
    t_parse = best_of(args.repeat, parse_only)
    t_decode = best_of(args.repeat, decode_only)
    t_book = best_of(args.repeat, book_only)
    t_both = best_of(args.repeat, decode_and_book)
    t_bursts = best_of(args.repeat, bursts(False))
    t_filtered = best_of(args.repeat, bursts(True))
    t_filter_1 = best_of(args.repeat, filter_only(1))
    t_filter_16 = best_of(args.repeat, filter_only(BURST))
    print(
        f"frames: {n:,} spot ticker frames over {args.symbols:,} symbols; "
        f"{crossing_frames:,} of them cross something ({hits_per_run:,} hits per pass)"
    )
    print(f"msgspec parse only, no Tick (floor of any decoder): {rate(n, t_parse)}")
    print(f"decode only:  {rate(n, t_decode)}")
    print(f"book only:    {rate(n, t_book)}")
    print(f"price filter only, 1 tick per call:   {rate(n, t_filter_1)}")
    print(f"price filter only, {BURST} ticks per call: {rate(n, t_filter_16)}")
    ok = "OK" if n / t_both >= 1_000_000 else "MISSED"
    print(f"decode+book:  {rate(n, t_both)}  target >= 1,000,000 frames/s: {ok}")
    print(f"decode+book, bursts of {BURST}:        {rate(n, t_bursts)}")
    print(
        f"decode+filter+book, bursts of {BURST}: {rate(n, t_filtered)}  "
        f"(the plausibility filter adds {(t_filtered - t_bursts) / n * 1e9:,.0f} ns/frame, "
        f"{t_bursts / t_filtered:.2f}x the unfiltered rate)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        db = build_database(Path(tmp) / "naive.db", data.positions, data.triggers)
        built = time.perf_counter() - started
        # spread over the whole run, so the walk has had time to reach some levels
        naive_frames = frames[:: max(1, n // args.naive_frames)][: args.naive_frames]
        now = time.time_ns
        started = time.perf_counter()
        naive_hits = 0
        for raw in naive_frames:
            tick = decode(raw, now())
            if tick is not None:
                naive_hits += len(evaluate(db, tick.symbol, tick.price, tick.kind))
        t_naive = time.perf_counter() - started
        db.close()
    naive_rate = len(naive_frames) / t_naive
    print(
        f"naive:        {rate(len(naive_frames), t_naive)}  (SQLite WAL file, "
        f"{len(data.positions) + len(data.triggers):,} docs, built in {built:.1f} s; "
        f"{len(naive_frames):,} frames, {naive_hits:,} matches)"
    )
    ratio = (n / t_both) / naive_rate
    print(
        f"decode+book vs naive: {ratio:,.0f}x  "
        f"target >= 1,000x: {'OK' if ratio >= 1000 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
