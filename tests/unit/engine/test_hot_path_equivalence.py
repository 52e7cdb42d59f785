"""The worker's spot path with the float prefilter against the same path with every frame
decoded: gap replay, price filter and `Engine.on_ticks` end in the same state."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from cogmora.domain.enums import Market, Side, TriggerOp
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Trigger, TriggerAction, TriggerCondition
from cogmora.domain.takeprofits import leg_key
from cogmora.domain.ticks import Tick
from cogmora.domain.trailing import TrailingStop
from cogmora.engine.engine import Engine
from cogmora.engine.gap_replay import GapReplay
from cogmora.engine.metrics import EngineMetrics
from cogmora.engine.prefilter import HotPath
from cogmora.engine.price_filter import PriceFilter, PriceFilterMetrics
from cogmora.feeds.kucoin.decode import FrameDecoder, MalformedFrame
from cogmora.services.clock import ManualClock
from cogmora.services.prices import LivePrices
from cogmora.services.symbols import SymbolCatalog, SymbolSpec
from cogmora.store.sqlite import SqliteStore

D = Decimal
NOW = datetime(2024, 5, 1, tzinfo=UTC)
STEP = D("0.00000001")  # the book's unit
# AAA: tick 0.125 (places 3); BBB: tick 1e-10 (finer than the 8 places a price may have);
# CCC: no levels; DDD: not in the catalog (no tick, no REST price).
TICKS = {"AAA-USDT": D("0.125"), "BBB-USDT": D("0.0000000001"), "CCC-USDT": D("0.01")}
SYMBOLS = [*TICKS, "DDD-USDT"]
WITH_LEVELS = SYMBOLS[:2] + SYMBOLS[3:]

GRID = st.integers(1, 48).map(lambda n: D(n) / 8)
LEVELS = st.one_of(GRID, st.decimals(min_value=D("0.00000001"), max_value=6, places=8))
NUDGES = st.sampled_from(
    [D(0), D(0), STEP, -STEP, D("0.125"), D("-0.125"), D("0.01"), STEP / 10, -STEP / 10]
)
NUMBER_TEXTS = st.one_of(
    st.tuples(GRID, NUDGES).map(lambda t: format(t[0] + t[1], "f")),
    st.decimals(min_value=D("0.00000001"), max_value=7, places=10).map(lambda d: format(d, "f")),
    st.decimals(min_value=D("0.001"), max_value=7, places=3).map(lambda d: format(d, "f")),
)
PRICE_TEXTS = st.one_of(
    NUMBER_TEXTS,
    NUMBER_TEXTS.map(lambda t: t + "00" if "." in t else t + ".000"),  # trailing zeros
    NUMBER_TEXTS.map(lambda t: format(D(t).scaleb(2), "f") + "e-2"),  # an exponent
    st.tuples(st.integers(1, 10**7), st.integers(1, 9)).map(lambda t: f"{t[0]}e-{t[1]}"),
    st.sampled_from(
        [
            "1e2", "5e-1", "2.5E0", "+3", " 4 ", "1_0", "4.", ".5", "0.125", "3.0000000000001",
            "0", "-1", "-0.125", "inf", "-inf", "NaN", "sNaN", "1e400", "1e-400", "1e17",
            "60", "0.06", "99999999999999999", "x", "", "0x10",
            # around the filter's pivots (10, 100) and its length limits
            "9.125", "9.1255", "10.125", "10.1255", "99.875", "100.125", "100.1255",
            "158.125", "15.875", ".95", ".0951", "0.95000001", "5e-9", "1.25e1", "0.5125e1",
        ]
    ),
)
RATES = st.sampled_from([D("0.01"), D("0.05"), D("0.2"), D("0.5")])
TRAILING = st.one_of(
    st.none(), st.builds(TrailingStop, RATES, st.one_of(st.none(), GRID))
)
POSITIONS = st.lists(
    st.tuples(
        st.sampled_from(WITH_LEVELS),
        st.sampled_from([Side.LONG, Side.SHORT]),
        st.one_of(st.none(), LEVELS),  # stop loss
        st.one_of(st.none(), LEVELS),  # take profit
        st.one_of(st.none(), LEVELS),  # liquidation
        TRAILING,
        st.lists(LEVELS, max_size=3),  # a ladder's legs
    ),
    max_size=10,
)
TRIGGERS = st.lists(
    st.tuples(
        st.sampled_from(WITH_LEVELS),
        st.sampled_from(list(TriggerOp)),
        LEVELS,
        st.one_of(st.none(), LEVELS),  # its position's stop loss
    ),
    max_size=4,
)
FRAME = st.tuples(st.sampled_from(SYMBOLS), PRICE_TEXTS)
# A step: a burst of frames, or the gap replay holding / releasing a symbol, or a catalog
# reload with new REST prices.
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("burst"), st.lists(FRAME, min_size=1, max_size=12)),
        st.tuples(st.just("hold"), st.sampled_from(SYMBOLS)),
        st.tuples(st.just("release"), st.sampled_from(SYMBOLS)),
        st.tuples(st.just("reload"), st.sampled_from([D(3), D("0.3"), D(50)])),
    ),
    min_size=1,
    max_size=12,
)
RAW = st.sampled_from([b"not json", b'{"id":"1","type":"pong"}', b'{"type":"message"}'])


def frame(symbol: str, price: str) -> bytes:
    return (
        b'{"type":"message","topic":"/market/ticker:%s","subject":"trade.ticker",'
        b'"data":{"sequence":"1","price":"%s","size":"0.1","time":1714564800000}}'
        % (symbol.encode(), price.encode())
    )


def catalog(rest: Decimal) -> dict[str, SymbolSpec]:
    return {s: SymbolSpec(tick, D("0.001"), rest) for s, tick in TICKS.items()}


@dataclass
class World:
    """One worker's spot chain: gap replay -> price filter -> engine, on its own book."""

    engine: Engine
    gaps: GapReplay
    plausible: PriceFilter
    catalog: SymbolCatalog
    registry: CollectorRegistry
    malformed: int = 0


def world(
    directory: Path,
    positions: list[Any],
    triggers: list[Any],
) -> World:
    registry = CollectorRegistry()
    clock = ManualClock(NOW)
    metrics = EngineMetrics(registry)
    engine = Engine(
        SqliteStore(directory / "unused.db"),  # never started: nothing is committed
        FeeSchedule(),
        clock,
        LivePrices(),
        metrics,
    )
    book, index = engine.book, engine.index
    for i, (symbol, side, sl, tp, liq, trailing, legs) in enumerate(positions):
        book.set_position(f"p{i}", symbol, side, sl, tp, liq, trailing, None)
        if f"p{i}" in book:
            index.owners[f"p{i}"] = "u"
        for j, price in enumerate(legs):
            book.set_position(leg_key(f"p{i}", j), symbol, side, None, price, None)
            index.owners[leg_key(f"p{i}", j)] = "u"
    for i, (symbol, op, price, stop) in enumerate(triggers):
        index.put_trigger(
            Trigger(
                f"t{i}",
                "u",
                symbol,
                Market.SPOT,
                TriggerCondition(op, price),
                TriggerAction(Side.LONG, qty=D("1"), stop_loss=stop),
                NOW,
            )
        )
    symbols = SymbolCatalog()
    symbols.load(Market.SPOT, catalog(D(3)))
    plausible = PriceFilter(symbols, engine.on_ticks, PriceFilterMetrics(registry))
    gaps = GapReplay(engine, plausible, {}, lambda s: Market.SPOT, metrics)
    return World(engine, gaps, plausible, symbols, registry)


def outcome(w: World) -> dict[str, Any]:
    """Everything a later observer could see of what the ticks did, predicted position ids
    renamed by order of appearance (each engine draws its own)."""
    engine = w.engine
    pending = engine._pending
    names: dict[str, str] = {}
    for pid in [*pending.predicted, *(h.position_id for h in pending.triggers)]:
        names.setdefault(pid, f"predicted{len(names)}")

    def name(key: str) -> str:
        return names.get(key, key)

    book = engine.book
    keys = sorted({name(k) for k in engine.index.owners} | set(names.values()))
    reverse = {v: k for k, v in names.items()}
    live = engine._live
    return {
        "positions": [
            (name(h.position_id), h.reason, str(h.price), h.level, h.trailing, h.trailing_peak)
            for h in pending.positions
        ],
        "triggers": [
            (h.trigger_id, str(h.price), name(h.position_id), h.op, h.level)
            for h in pending.triggers
        ],
        "hits": [name(h.key) for h in pending.hits],
        "predicted": [name(p) for p in pending.predicted],
        "book": {
            k: (book.levels_for(reverse.get(k, k)), book.trailing_state(reverse.get(k, k)))
            for k in keys
        },
        "levels": book.levels_count(),
        "moved": sorted(
            (name(key), str(m.peak), str(m.stop))
            for m in book.take_moved_trailing()
            for key in m.keys
        ),
        "live": {s: (q.price, str(q.price), q.at) if (q := live.get(s)) else None for s in SYMBOLS},
        "references": {s: str(w.plausible.last_accepted(s)) for s in SYMBOLS},
        "dropped": sorted(
            (s.name, s.labels.get("symbol"), s.labels.get("reason"), s.value)
            for metric in w.registry.collect()
            if metric.name in ("cogmora_prices_dropped", "cogmora_price_band_reanchored")
            for s in metric.samples
            if s.name.endswith("_total")
        ),
        "ticks": w.registry.get_sample_value("cogmora_engine_ticks_total", {"market": "spot"}),
        "held": w.gaps.held,
        "malformed": w.malformed,
    }


def hot_path(w: World, native: bool) -> HotPath:
    """The worker's wiring (`cli/worker.py`), with the C or the Python quiet loop."""
    path = w.engine.hot_path(w.gaps.on_ticks, w.plausible.regions, lambda: w.gaps.held)
    path.native = native
    return path


def run(w: World, steps: list[Any], hot: bool, native: bool = False) -> None:
    decode = FrameDecoder(Market.SPOT).decode
    path = hot_path(w, native)
    for kind, arg in steps:
        if kind == "hold":
            w.gaps.seed(arg, NOW)
        elif kind == "release":
            w.gaps.dropped([arg])
        elif kind == "reload":
            w.catalog.load(Market.SPOT, catalog(arg))
        elif hot:
            path.on_frames(arg)
            w.malformed = path.malformed
        else:
            ticks: list[Tick] = []
            for raw in arg:
                try:
                    tick = decode(raw, 0)
                except MalformedFrame:
                    w.malformed += 1
                    continue
                if tick is not None:
                    ticks.append(tick)
            if ticks:  # the feed hands over no empty burst
                w.gaps.on_ticks(ticks)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POSITIONS, TRIGGERS, STEPS, st.data())
def test_the_prefiltered_worker_path_ends_where_decoding_every_frame_ends(
    native: bool,
    positions: list[Any],
    triggers: list[Any],
    steps: list[Any],
    data: st.DataObject,
) -> None:
    """Crossings (with their trailing peaks and predicted positions), the book's levels and
    peaks, live prices, band references, drops per symbol and reason, evaluated-tick and
    malformed counts and held symbols are the same, for prices at, one unit, one tick and a
    tenth of a unit around levels and trailing activations, fine ticks, trailing zeros,
    exponents, and prices the decoder or the filter refuses."""
    raw_steps = [
        (kind, [frame(s, p) for s, p in arg]) if kind == "burst" else (kind, arg)
        for kind, arg in steps
    ]
    if raw_steps and raw_steps[0][0] == "burst" and data.draw(st.booleans()):
        raw_steps[0][1].insert(0, data.draw(RAW))  # a control or malformed frame too
    with tempfile.TemporaryDirectory() as tmp:
        exact = world(Path(tmp), positions, triggers)
        run(exact, raw_steps, hot=False)
        fast = world(Path(tmp), positions, triggers)
        run(fast, raw_steps, hot=True, native=native)
        assert outcome(fast) == outcome(exact)


def test_a_held_symbol_is_never_quiet_and_its_ticks_wait_in_order(native: bool) -> None:
    """While the gap replay holds a symbol, its frames become Ticks and wait; released,
    they reach the filter and the engine in order and the live price is the last."""
    with tempfile.TemporaryDirectory() as tmp:
        w = world(Path(tmp), [], [])
        path = hot_path(w, native)
        path.on_frames([frame("AAA-USDT", "3")])  # the filter's first tick of AAA
        w.gaps.seed("AAA-USDT", NOW)
        path.on_frames([frame("AAA-USDT", "3.125"), frame("AAA-USDT", "3.25")])
        quote = w.engine._live.get("AAA-USDT")
        assert quote is not None and quote.price == D("3")
        assert path.exact == 3
        w.gaps.dropped(["AAA-USDT"])
        quote = w.engine._live.get("AAA-USDT")
        assert quote is not None and quote.price == D("3.25")
        path.on_frames([frame("AAA-USDT", "3.375")])
        assert path.exact == 3  # quiet again


def test_a_quiet_price_is_the_band_reference_for_the_next_exact_one(native: bool) -> None:
    """The band is judged against the last quiet price, not the last exact one: 2.5 then
    30 is a tenfold-plus jump and is dropped although 30 is within ten times of 3."""
    with tempfile.TemporaryDirectory() as tmp:
        w = world(Path(tmp), [], [])
        path = hot_path(w, native)
        path.on_frames([frame("AAA-USDT", "3"), frame("AAA-USDT", "2.5")])
        path.on_frames([frame("AAA-USDT", "30")])
        assert w.plausible.dropped == 1
        assert w.plausible.last_accepted("AAA-USDT") == D("2.5")
        quote = w.engine._live.get("AAA-USDT")
        assert quote is not None and quote.price == D("2.5")
