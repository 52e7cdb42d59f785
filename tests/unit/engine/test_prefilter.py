"""The float-prefiltered hot path against the exact one: the same crossings, the same prices."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market, Side, TriggerOp
from cogmora.domain.ticks import Tick
from cogmora.engine.prefilter import NATIVE, HotPath, _quiet
from cogmora.engine.price_filter import PriceFilter
from cogmora.feeds.kucoin.decode import Decoded, FrameDecoder, MalformedFrame
from cogmora.feeds.kucoin.schemas import LeanData, LeanFrame
from cogmora.services.prices import LivePrices
from cogmora.services.symbols import SymbolCatalog, SymbolSpec

D = Decimal
NOW = datetime(2024, 5, 1, tzinfo=UTC)
STEP = D("0.00000001")  # the book's unit
SYMBOLS = ["AAA-USDT", "BBB-USDT", "CCC-USDT"]  # CCC never has levels

GRID = st.integers(1, 40).map(lambda n: D(n) / 8)
LEVELS = st.one_of(GRID, st.decimals(min_value=D("0.00000001"), max_value=6, places=8))
NUDGES = st.sampled_from([D(0), STEP, -STEP, D("0.01"), D("-0.01"), STEP / 10, -STEP / 10])
# Prices at a level and one unit, one tick and a tenth of a unit around it, and elsewhere.
PRICE_TEXTS = st.one_of(
    st.tuples(GRID, NUDGES).map(lambda t: format(t[0] + t[1], "f")),
    st.decimals(min_value=D("0.00000001"), max_value=7, places=10).map(lambda d: format(d, "f")),
    st.sampled_from(["1e2", "5.000000000000000000001", "4.9999999999999999999999", "0.125"]),
    st.sampled_from(["0", "-1", "-0.125", "inf", "NaN", "1e400", "1e-400", "x", ""]),
)
POSITIONS = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS[:2]),
        st.sampled_from([Side.LONG, Side.SHORT]),
        st.one_of(st.none(), LEVELS),
        st.one_of(st.none(), LEVELS),
    ),
    max_size=12,
)
TRIGGERS = st.lists(
    st.tuples(st.sampled_from(SYMBOLS[:2]), st.sampled_from(list(TriggerOp)), LEVELS),
    max_size=4,
)
FRAMES = st.lists(st.tuples(st.sampled_from(SYMBOLS), PRICE_TEXTS), min_size=1, max_size=30)


def frame(symbol: str, price: str) -> bytes:
    return (
        b'{"type":"message","topic":"/market/ticker:%s","subject":"trade.ticker",'
        b'"data":{"sequence":"1","price":"%s","size":"0.1","time":1714564800000}}'
        % (symbol.encode(), price.encode())
    )


def book_of(positions: list[tuple[str, Side, D | None, D | None]], triggers: list) -> TriggerBook:  # type: ignore[type-arg]
    book = TriggerBook()
    for i, (symbol, side, sl, tp) in enumerate(positions):
        book.set_position(f"p{i}", symbol, side, sl, tp, None)
    for i, (symbol, op, price) in enumerate(triggers):
        book.set_trigger(f"t{i}", symbol, op, price)
    return book


class Recorder:
    """A sink that evaluates ticks against a book as the engine does: cross, then keep."""

    def __init__(self, book: TriggerBook, native: bool = False) -> None:
        self.book = book
        self.native = native
        self.hits: list[tuple[str, str]] = []
        self.live = LivePrices()

    def hot(self) -> HotPath:
        hot = HotPath(self.book, self, self.live, lambda: NOW)
        hot.native = self.native
        return hot

    def prices(self) -> dict[str, Decimal | None]:
        return {s: (q.price if (q := self.live.get(s)) else None) for s in SYMBOLS}

    def __call__(self, ticks: list[Tick]) -> None:
        for tick in ticks:
            self.live.update(tick, NOW)
            self.hits += [(h.key, h.reason.name) for h in self.book.cross(tick.symbol, tick.price)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POSITIONS, TRIGGERS, FRAMES, st.integers(1, 8))
def test_prefiltered_bursts_cross_what_the_exact_path_crosses(
    native: bool,
    positions: list[tuple[str, Side, D | None, D | None]],
    triggers: list,  # type: ignore[type-arg]
    frames: list[tuple[str, str]],
    burst: int,
) -> None:
    """Every crossing, in order, and every symbol's last price match tick-by-tick exact
    evaluation, for prices at, one unit and one tick around the levels, and for prices
    the decoder refuses (zero, negative, not finite, not numbers)."""
    raws = [frame(s, p) for s, p in frames]
    exact = Recorder(book_of(positions, triggers))
    decode = FrameDecoder(Market.SPOT).decode
    for raw in raws:
        try:
            tick = decode(raw, 0)
        except MalformedFrame:
            continue
        assert tick is not None
        exact([tick])

    fast = Recorder(book_of(positions, triggers), native)
    hot = fast.hot()
    for i in range(0, len(raws), burst):
        hot.on_frames(raws[i : i + burst])

    assert fast.hits == exact.hits
    assert fast.prices() == exact.prices()


def test_a_level_the_sink_adds_mid_burst_is_crossed_by_the_next_frame(native: bool) -> None:
    """A predicted position's level put in the book by the sink is judged by the burst's
    very next frame, not by edges read before the burst."""
    book = TriggerBook()
    book.set_trigger("t", "AAA-USDT", TriggerOp.BELOW, D("100"))
    hits: list[str] = []

    def sink(ticks: list[Tick]) -> None:
        for tick in ticks:
            for hit in book.cross(tick.symbol, tick.price):
                hits.append(hit.key)
                if hit.key == "t":  # the fire opens a long whose stop loss is 99.5
                    book.set_position("p", "AAA-USDT", Side.LONG, D("99.5"), None, None)

    hot = HotPath(book, sink, LivePrices(), lambda: NOW)
    hot.native = native
    hot.on_frames([frame("AAA-USDT", "100"), frame("AAA-USDT", "99.4")])
    assert hits == ["t", "p"]


def test_quiet_frames_set_each_symbol_to_its_last_price_without_a_tick(native: bool) -> None:
    """Frames that cross nothing reach no sink, yet the live price is each symbol's last,
    an exact Decimal when read."""
    book = TriggerBook()
    book.set_position("p", "AAA-USDT", Side.LONG, D("90"), None, None)
    seen: list[tuple[str, Decimal]] = []
    live = LivePrices()
    hot = HotPath(
        book, lambda ticks: seen.extend((t.symbol, t.price) for t in ticks), live, lambda: NOW
    )
    hot.native = native
    hot.on_frames(
        [
            frame("AAA-USDT", "100"),
            frame("BBB-USDT", "7.10000000000000000001"),
            frame("AAA-USDT", "89"),  # crosses: handed over at once
            frame("AAA-USDT", "95"),
        ]
    )
    assert seen == [("AAA-USDT", D("89"))]
    aaa, bbb = live.get("AAA-USDT"), live.get("BBB-USDT")
    assert aaa is not None and aaa.price == D("95") and aaa.at == NOW
    assert bbb is not None and bbb.price == D("7.10000000000000000001")
    assert hot.exact == 1


def test_malformed_negative_and_control_frames_go_the_exact_way(native: bool) -> None:
    """A bad frame in a burst is counted and passed on, a negative or infinite price is
    never quiet, and the burst's other frames still run."""
    book = TriggerBook()
    book.set_position("p", "AAA-USDT", Side.LONG, D("90"), None, None)
    bad: list[Exception] = []
    control: list[bytes | str] = []
    live = LivePrices()
    hot = HotPath(
        book,
        lambda ticks: None,
        live,
        lambda: NOW,
        on_control=control.append,
        on_malformed=bad.append,
    )
    hot.native = native
    hot.on_frames(
        [
            frame("AAA-USDT", "abc"),
            frame("BBB-USDT", "-5"),
            frame("BBB-USDT", "1e400"),
            b"not json",
            b'{"id":"1","type":"pong"}',
            frame("AAA-USDT", "91"),
        ]
    )
    assert hot.malformed == 3 and len(bad) == 3  # 1e400 is a valid Decimal: a Tick
    assert control == [b'{"id":"1","type":"pong"}']
    assert live.get("BBB-USDT") is None
    quote = live.get("AAA-USDT")
    assert quote is not None and quote.price == D("91")


def test_a_symbol_whose_levels_went_and_came_back_is_judged_by_its_new_edges(native: bool) -> None:
    """The hot path keeps each topic's book edges between bursts; when the book drops a
    symbol's last level and later gives it new ones, the frame that crosses a new level
    still goes the exact way."""
    book = TriggerBook()
    book.set_position("p", "AAA-USDT", Side.LONG, D("90"), None, None)
    seen: list[Decimal] = []
    hot = HotPath(
        book, lambda ticks: seen.extend(t.price for t in ticks), LivePrices(), lambda: NOW
    )
    hot.native = native
    hot.on_frames([frame("AAA-USDT", "100")])  # quiet: the edges are cached
    assert book.remove("p")
    hot.on_frames([frame("AAA-USDT", "80")])  # no level: quiet
    book.set_position("q", "AAA-USDT", Side.LONG, D("95"), None, None)
    hot.on_frames([frame("AAA-USDT", "96"), frame("AAA-USDT", "94")])
    assert seen == [D("94")]


@pytest.mark.parametrize(
    ("text", "quiet"),
    [
        ("5.125", True),
        ("5.1251", False),  # one place more than the tick's 3
        ("10.125", True),  # above the pivot (10): one more character allowed
        ("10.1251", False),
        ("9.1251", False),
        (".125", False),  # no character before the point
        ("4.", True),
        ("5.1e0", True),
        ("0.51e1", False),  # 5.1 too, but longer than the limit
        ("5125e-3", False),  # a minus sign
        ("+5.125", False),
        ("9.99999999999999999999", False),
    ],
)
def test_a_price_is_quiet_only_when_its_text_is_surely_on_the_tick(
    native: bool, text: str, quiet: bool
) -> None:
    """The text's length stands in for its places (`PriceFilter`'s `limit` and `pivot`):
    a price is quiet only when the filter would take it unchanged; anything in doubt is
    decoded exactly."""
    symbols = SymbolCatalog()
    symbols.load(Market.SPOT, {"AAA-USDT": SymbolSpec(D("0.001"), D("0.001"), D("5"))})
    passed: list[Tick] = []
    plausible = PriceFilter(symbols, passed.extend)
    live = LivePrices()
    hot = HotPath(TriggerBook(), plausible, live, lambda: NOW, regions=plausible.regions)
    hot.native = native
    hot.on_frames([frame("AAA-USDT", "5")])  # the filter's first tick of AAA: exact
    hot.on_frames([frame("AAA-USDT", text)])
    assert (hot.exact == 1) is quiet
    quote = live.get("AAA-USDT")
    if quiet:
        assert quote is not None and quote.price == D(text)
        assert plausible.last_accepted("AAA-USDT") == D(text)


# ---- the C loop's edges: it calls a frame quiet only where the Python loop would ----------


def test_the_c_loop_is_built_in_ci() -> None:
    """CI (`CI` set, as .ci/run runs) installs with a compiler, so its hot path must be the
    C loop the worker runs; elsewhere this only says which loop is in use."""
    if os.environ.get("CI"):
        assert NATIVE, "cogmora.engine._quiet did not build: the Python loop would be measured"
    assert HotPath(TriggerBook(), lambda ticks: None, LivePrices(), lambda: NOW).native is NATIVE


def lean_burst(texts: list[tuple[str, str]]) -> list[LeanFrame | Decoded]:
    decode, encode = msgspec.json.Decoder(LeanFrame).decode, msgspec.json.encode
    return [
        decode(
            encode(
                {
                    "type": "message",
                    "topic": f"/market/ticker:{s}",
                    "subject": "trade.ticker",
                    "data": {"price": p, "time": 1714564800000},
                }
            )
        )
        for s, p in texts
    ]


class OddFrame:
    """Duck-typed like a LeanFrame but of another type: only Python may judge it."""

    __slots__ = ("data", "topic")

    def __init__(self, topic: str, data: LeanData) -> None:
        self.topic, self.data = topic, data


class Text(str):
    """A str subclass: float() and the text tests take it, C leaves it to Python."""


def run_both(burst: list[Any]) -> list[tuple[list[Decimal], dict[str, Any], int, int]]:
    """The same burst (after a warm-up that caches each topic) through both loops."""
    results = []
    for native in [True, False] if NATIVE else [False]:
        book = TriggerBook()
        book.set_position("p", "AAA-USDT", Side.LONG, D("90"), D("200"), None)
        ticks: list[Tick] = []
        live = LivePrices()
        hot = HotPath(book, ticks.extend, live, lambda: NOW)
        hot.native = native
        hot.on_parsed(lean_burst([("AAA-USDT", "100"), ("BBB-USDT", "7")]), [0, 0])
        hot.deferred = 0
        hot.on_parsed(burst, [1] * len(burst))
        prices = {s: (q.price if (q := live.get(s)) else None) for s in SYMBOLS}
        results.append(([t.price for t in ticks], prices, hot.exact, hot.deferred))
    return results


def test_frames_of_another_type_amid_quiet_ones_are_left_to_python_in_order() -> None:
    """A `Decoded` frame (the full decoder's, here a JSON number price) and a frame of a
    look-alike type between quiet frames: C hands each to the Python loop at its place,
    and both loops end with the same ticks, prices and counts."""
    decoded = HotPath(TriggerBook(), lambda ticks: None, LivePrices(), lambda: NOW).parse(
        b'{"type":"message","topic":"/market/ticker:AAA-USDT","subject":"trade.ticker",'
        b'"data":{"price":89,"time":1714564800000}}',
        1,
    )
    assert isinstance(decoded, Decoded)
    burst: list[Any] = [
        *lean_burst([("AAA-USDT", "101")]),
        decoded,  # 89: crosses the stop, exact
        *lean_burst([("AAA-USDT", "102")]),
        OddFrame("/market/ticker:AAA-USDT", LeanData(price="103")),  # Python calls it quiet
        *lean_burst([("BBB-USDT", "8"), ("AAA-USDT", "104")]),
    ]
    results = run_both(burst)
    for seen, prices, exact, _ in results:
        assert seen == [D("89")]
        assert prices["AAA-USDT"] == D("104") and prices["BBB-USDT"] == D("8")
        assert exact == 1  # the Decoded one
    if NATIVE:
        assert results[0][3] == 2  # C deferred exactly the two frames it does not know


@pytest.mark.parametrize(
    "text",
    ["1_01", " 101", "101 ", "1e2x", "\u0661\u0660\u0661", "101\x00", "nan", "inf", "1e400"],
)
def test_texts_c_cannot_read_as_float_does_are_left_to_python(text: str) -> None:
    """Underscores, spaces, trailing junk, non-ASCII digits (float() reads them), an
    embedded NUL, not-finite values: C defers each and the result is the Python loop's."""
    results = run_both(lean_burst([("AAA-USDT", "101"), ("AAA-USDT", text), ("BBB-USDT", "9")]))
    assert all(r[:3] == results[-1][:3] for r in results)
    if NATIVE:
        assert results[0][3] == 1


def test_a_price_of_a_str_subclass_is_judged_by_python() -> None:
    """A price text that is not exactly a str (only a hand-built frame has one) is left to
    Python, which calls it quiet as before."""
    odd = lean_burst([("AAA-USDT", "101")])[0]
    assert isinstance(odd, LeanFrame)
    odd.data.price = Text("105")
    results = run_both([odd, *lean_burst([("AAA-USDT", "106")])])
    for seen, prices, exact, _ in results:
        assert seen == [] and prices["AAA-USDT"] == D("106") and exact == 0
    if NATIVE:
        assert results[0][3] == 1


def test_edges_that_move_between_bursts_are_read_again_by_the_c_loop(native: bool) -> None:
    """The C loop reads a symbol's float edges on every frame: a level added next to the
    price between two bursts is crossed by the next frame that reaches it, and once
    crossed the edges widen again."""
    recorder = Recorder(book_of([("AAA-USDT", Side.LONG, D("90"), None)], []), native)
    hot = recorder.hot()
    hot.on_frames([frame("AAA-USDT", "100"), frame("AAA-USDT", "99")])
    recorder.book.set_position("q", "AAA-USDT", Side.LONG, D("98.5"), None, None)
    hot.on_frames([frame("AAA-USDT", "99.5"), frame("AAA-USDT", "98"), frame("AAA-USDT", "97")])
    recorder.book.set_position("r", "AAA-USDT", Side.SHORT, D("97.5"), None, None)
    hot.on_frames([frame("AAA-USDT", "97.25"), frame("AAA-USDT", "97.5")])
    assert recorder.hits == [("q", "STOP_LOSS"), ("r", "STOP_LOSS")]
    assert hot.exact == 2
    assert recorder.prices()["AAA-USDT"] == D("97.5")


def test_the_c_loop_judges_steady_quiet_frames_itself() -> None:
    """Past a topic's first frame, C leaves to Python only the frames that go the exact
    way: the speed-up is real, not every frame bounced back."""
    if not NATIVE:
        pytest.skip("cogmora.engine._quiet is not built")
    book = TriggerBook()
    book.set_position("p", "AAA-USDT", Side.LONG, D("90"), None, None)
    hot = HotPath(book, lambda ticks: None, LivePrices(), lambda: NOW)
    burst = lean_burst([("AAA-USDT", "100"), ("CCC-USDT", "3"), ("AAA-USDT", "89")] * 5)
    for _ in range(10):
        hot.on_parsed(burst, [0] * len(burst))
    assert hot.exact == 5 * 10  # every 89 (the sink crosses nothing)
    assert hot.deferred == hot.exact + 2  # and the first sighting of each topic


def test_many_bursts_through_the_c_loop_leak_no_reference() -> None:
    """The quiet stores replace one reference by another: after many bursts of the same
    frames the symbols, texts, regions, live-price slots and the time every burst's
    live-price entry holds have as many references as after the first."""
    if not NATIVE:
        pytest.skip("cogmora.engine._quiet is not built")
    symbols = SymbolCatalog()
    symbols.load(Market.SPOT, {"AAA-USDT": SymbolSpec(D("0.001"), D("0.001"), D("5"))})
    plausible = PriceFilter(symbols, lambda ticks: None)
    book = TriggerBook()
    book.set_position("p", "AAA-USDT", Side.LONG, D("1"), None, None)
    live = LivePrices()
    hot = HotPath(book, plausible, live, lambda: NOW, regions=plausible.regions)
    hot.on_frames([frame("AAA-USDT", "5")])  # the filter's first tick: exact
    burst = lean_burst([("AAA-USDT", "5.125"), ("AAA-USDT", "5.25")] * 8)
    held = [burst[0].topic, burst[0].data.price, burst[-1].data.price]  # type: ignore[union-attr]
    hot.on_parsed(burst, [0] * len(burst))
    entry = hot._cache[burst[0].topic]
    watched = [*held, *entry, entry, NOW]
    before = [sys.getrefcount(o) for o in watched]
    for _ in range(2_000):
        hot.on_parsed(burst, [0] * len(burst))
    after = [sys.getrefcount(o) for o in watched]  # (not in the assert: pytest keeps its parts)
    assert after == before
    assert hot.deferred == 2 and hot.exact == 1  # the first tick, the first quiet frame
    quote = live.get("AAA-USDT")
    assert quote is not None and quote.price == D("5.25")


DIGIT_TEXTS = st.one_of(
    st.from_regex(r"\A[0-9]{1,22}(\.[0-9]{0,24})?\Z"),
    st.decimals(min_value=D("0.00000001"), max_value=10**12, places=8).map(lambda d: f"{d:f}"),
    st.floats(min_value=1e-12, max_value=1e25).map(repr),
    st.sampled_from(["9007199254740992", "9007199254740993", "9007199254740992.5", "4."]),
)


@settings(max_examples=2_000, deadline=None)
@given(DIGIT_TEXTS)
def test_the_c_loop_reads_a_price_text_as_float_does(text: str) -> None:
    """C's conversion (a correctly rounded fast path for short digit texts, else
    PyOS_string_to_double) gives float()'s value bit for bit, or leaves the text to Python."""
    if not NATIVE:
        pytest.skip("cogmora.engine._quiet is not built")
    value = _quiet.to_float(text)
    assert value is None or (value == float(text) and repr(value) == repr(float(text)))
