"""The float-prefiltered hot path against the exact one: the same crossings, the same prices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market, Side, TriggerOp
from cogmora.domain.ticks import Tick
from cogmora.engine.prefilter import HotPath
from cogmora.engine.price_filter import PriceFilter
from cogmora.feeds.kucoin.decode import FrameDecoder, MalformedFrame
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

    def __init__(self, book: TriggerBook) -> None:
        self.book = book
        self.hits: list[tuple[str, str]] = []
        self.live = LivePrices()

    def hot(self) -> HotPath:
        return HotPath(self.book, self, self.live, lambda: NOW)

    def prices(self) -> dict[str, Decimal | None]:
        return {s: (q.price if (q := self.live.get(s)) else None) for s in SYMBOLS}

    def __call__(self, ticks: list[Tick]) -> None:
        for tick in ticks:
            self.live.update(tick, NOW)
            self.hits += [(h.key, h.reason.name) for h in self.book.cross(tick.symbol, tick.price)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POSITIONS, TRIGGERS, FRAMES, st.integers(1, 8))
def test_prefiltered_bursts_cross_what_the_exact_path_crosses(
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

    fast = Recorder(book_of(positions, triggers))
    hot = fast.hot()
    for i in range(0, len(raws), burst):
        hot.on_frames(raws[i : i + burst])

    assert fast.hits == exact.hits
    assert fast.prices() == exact.prices()


def test_a_level_the_sink_adds_mid_burst_is_crossed_by_the_next_frame() -> None:
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
    hot.on_frames([frame("AAA-USDT", "100"), frame("AAA-USDT", "99.4")])
    assert hits == ["t", "p"]


def test_quiet_frames_set_each_symbol_to_its_last_price_without_a_tick() -> None:
    """Frames that cross nothing reach no sink, yet the live price is each symbol's last,
    an exact Decimal when read."""
    book = TriggerBook()
    book.set_position("p", "AAA-USDT", Side.LONG, D("90"), None, None)
    seen: list[tuple[str, Decimal]] = []
    live = LivePrices()
    hot = HotPath(
        book, lambda ticks: seen.extend((t.symbol, t.price) for t in ticks), live, lambda: NOW
    )
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


def test_malformed_negative_and_control_frames_go_the_exact_way() -> None:
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


def test_a_symbol_whose_levels_went_and_came_back_is_judged_by_its_new_edges() -> None:
    """The hot path keeps each topic's book edges between bursts; when the book drops a
    symbol's last level and later gives it new ones, the frame that crosses a new level
    still goes the exact way."""
    book = TriggerBook()
    book.set_position("p", "AAA-USDT", Side.LONG, D("90"), None, None)
    seen: list[Decimal] = []
    hot = HotPath(
        book, lambda ticks: seen.extend(t.price for t in ticks), LivePrices(), lambda: NOW
    )
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
def test_a_price_is_quiet_only_when_its_text_is_surely_on_the_tick(text: str, quiet: bool) -> None:
    """The text's length stands in for its places (`PriceFilter`'s `limit` and `pivot`):
    a price is quiet only when the filter would take it unchanged; anything in doubt is
    decoded exactly."""
    symbols = SymbolCatalog()
    symbols.load(Market.SPOT, {"AAA-USDT": SymbolSpec(D("0.001"), D("0.001"), D("5"))})
    passed: list[Tick] = []
    plausible = PriceFilter(symbols, passed.extend)
    live = LivePrices()
    hot = HotPath(TriggerBook(), plausible, live, lambda: NOW, regions=plausible.regions)
    hot.on_frames([frame("AAA-USDT", "5")])  # the filter's first tick of AAA: exact
    hot.on_frames([frame("AAA-USDT", text)])
    assert (hot.exact == 1) is quiet
    quote = live.get("AAA-USDT")
    if quiet:
        assert quote is not None and quote.price == D(text)
        assert plausible.last_accepted("AAA-USDT") == D(text)
