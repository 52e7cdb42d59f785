"""The book's trailing stops against a naive loop over every position on every tick."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cogmora.domain import trailing as tr
from cogmora.domain.book import Hit, Reason, TriggerBook
from cogmora.domain.enums import Side
from cogmora.domain.ticks import PriceKind
from cogmora.domain.trailing import TrailingStop

D = Decimal

KEYS = st.sampled_from([f"k{i}" for i in range(10)])
SYMBOLS = st.sampled_from(["A", "B"])
RATES = st.sampled_from([D("0.01"), D("0.1"), D("0.25"), D("0.5"), D("0.03333333")])
GRID = st.integers(40, 160).map(lambda n: D(n) / 4)  # shared values make ties common
PRICES = st.one_of(GRID, st.decimals(min_value=5, max_value=45, places=8))
SIDES = st.sampled_from([Side.LONG, Side.SHORT])


@dataclass(frozen=True)
class Naive:
    symbol: str
    side: Side
    spec: TrailingStop
    peak: Decimal | None
    stop_loss: Decimal | None

    def after(self, price: Decimal) -> tuple[Naive, Reason | None]:
        """SPEC 5.2 written out longhand for one trade."""
        peak = tr.moved(self.side, self.peak, self.spec, price)
        moved = replace(self, peak=peak)
        long = self.side is Side.LONG
        sl = self.stop_loss
        if sl is not None and (price <= sl if long else price >= sl):
            return moved, Reason.STOP_LOSS
        if tr.crossed(self.side, peak, self.spec.callback_rate, price):
            return moved, Reason.TRAILING_STOP
        return moved, None


class TrailingAgainstNaive(RuleBasedStateMachine):
    """Any sequence of upserts, removals, restores and trades fires what the naive loop fires,
    with the same peaks."""

    def __init__(self) -> None:
        super().__init__()
        self.book = TriggerBook()
        self.naive: dict[str, Naive] = {}
        self.taken: list[tuple[Hit, Naive]] = []

    @rule(
        key=KEYS,
        symbol=SYMBOLS,
        side=SIDES,
        rate=RATES,
        activation=st.one_of(st.none(), GRID),
        peak=st.one_of(st.none(), GRID),
        stop_loss=st.one_of(st.none(), GRID),
    )
    def upsert(
        self,
        key: str,
        symbol: str,
        side: Side,
        rate: Decimal,
        activation: Decimal | None,
        peak: Decimal | None,
        stop_loss: Decimal | None,
    ) -> None:
        spec = TrailingStop(rate, activation)
        self.book.set_position(key, symbol, side, stop_loss, None, None, spec, peak)
        old = self.naive.get(key)
        if old is not None and old.spec == spec and old.side is side and old.peak is not None:
            # the book keeps the peak it tracked when the parameters are unchanged
            long = side is Side.LONG
            if peak is None or (old.peak >= peak if long else old.peak <= peak):
                peak = old.peak
        self.naive[key] = Naive(symbol, side, spec, peak, stop_loss)

    @rule(key=KEYS)
    def remove(self, key: str) -> None:
        assert self.book.remove(key) == (self.naive.pop(key, None) is not None)

    @precondition(lambda self: bool(self.taken))
    @rule(index=st.integers(0, 100))
    def restore(self, index: int) -> None:
        hit, entry = self.taken.pop(index % len(self.taken))
        restored = self.book.restore(hit)
        assert restored == (hit.key not in self.naive)
        if restored:
            self.naive[hit.key] = entry

    @rule(symbol=SYMBOLS, price=PRICES)
    def trade(self, symbol: str, price: Decimal) -> None:
        hits = {h.key: h for h in self.book.cross(symbol, price, PriceKind.TRADE)}
        expected: dict[str, Reason] = {}
        for key, entry in list(self.naive.items()):
            if entry.symbol != symbol:
                continue
            moved, reason = entry.after(price)
            self.naive[key] = moved
            if reason is not None:
                expected[key] = reason
        assert {k: h.reason for k, h in hits.items()} == expected
        for key in expected:
            entry = self.naive.pop(key)
            self.taken.append((hits[key], entry))
            state = hits[key].trailing()
            assert state is not None and state.peak_price() == entry.peak

    @rule(symbol=SYMBOLS, open_=PRICES, a=PRICES, b=PRICES)
    def candle(self, symbol: str, open_: Decimal, a: Decimal, b: Decimal) -> None:
        """A gap's candle: the open first, then the high before the low for a long (the
        low before the high for a short), as the naive loop walks it."""
        low, high = min(a, b, open_), max(a, b, open_)
        hits = {h.key: h for h in self.book.cross_range(symbol, low, high, open_=open_)}
        expected: dict[str, tuple[Reason, bool]] = {}
        for key, entry in list(self.naive.items()):
            if entry.symbol != symbol:
                continue
            long = entry.side is Side.LONG
            sl = entry.stop_loss
            rate = entry.spec.callback_rate
            peak = tr.moved(entry.side, entry.peak, entry.spec, open_)
            at_open = tr.crossed(entry.side, peak, rate, open_)
            if not at_open:
                peak = tr.moved(entry.side, peak, entry.spec, high if long else low)
            self.naive[key] = replace(entry, peak=peak)
            trailed = at_open or tr.crossed(entry.side, peak, rate, low if long else high)
            if sl is not None and (low <= sl if long else high >= sl):
                expected[key] = (Reason.STOP_LOSS, at_open)
            elif trailed:
                expected[key] = (Reason.TRAILING_STOP, at_open)
        got = {}
        for key, hit in hits.items():
            state = hit.trailing()
            assert state is not None
            got[key] = (hit.reason, state.at_open)
        assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in expected.items()}
        for key, (reason, at_open) in expected.items():
            if reason is Reason.TRAILING_STOP:
                assert got[key][1] == at_open, key
            entry = self.naive.pop(key)
            self.taken.append((hits[key], entry))

    @rule(symbol=SYMBOLS, price=PRICES)
    def mark(self, symbol: str, price: Decimal) -> None:
        """A mark price moves no peak and fires no trailing stop."""
        assert all(
            h.reason is not Reason.TRAILING_STOP
            for h in self.book.cross(symbol, price, PriceKind.MARK)
        )

    @invariant()
    def same_peaks(self) -> None:
        for key, entry in self.naive.items():
            state = self.book.trailing_state(key)
            assert state is not None
            assert state.peak_price() == entry.peak, key
        assert len(self.book) == len(self.naive)


TrailingAgainstNaive.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_trailing_stops_agree_with_a_naive_loop = TrailingAgainstNaive.TestCase


def test_a_long_trails_its_peak_and_fires_at_the_callback() -> None:
    """Stop = peak * (1 - rate); a price at the stop fires, one just above does not."""
    book = TriggerBook()
    book.set_position("p", "S", Side.LONG, None, None, None, TrailingStop(D("0.1")), D("100"))
    assert book.cross("S", D("120")) == []
    assert book.cross("S", D("108.00000001")) == []
    state = book.trailing_state("p")
    assert state is not None and (state.peak_price(), state.stop_price()) == (D(120), D(108))
    [hit] = book.cross("S", D("108"))
    assert hit.reason is Reason.TRAILING_STOP and hit.level() == D("108")
    assert "p" not in book


def test_a_short_activates_at_its_price_then_trails_the_trough() -> None:
    """A short waits for its activation price, then fires at trough * (1 + rate)."""
    book = TriggerBook()
    spec = TrailingStop(D("0.5"), D("50"))
    book.set_position("p", "S", Side.SHORT, None, None, None, spec, None)
    assert book.cross("S", D("200")) == []  # not active: no stop yet
    assert book.cross("S", D("40")) == []
    assert book.cross("S", D("59.99999999")) == []
    [hit] = book.cross("S", D("60"))
    assert hit.reason is Reason.TRAILING_STOP


def test_a_price_off_the_grid_is_judged_exactly() -> None:
    """A price with more than 8 places compares exactly against the rational stop."""
    book = TriggerBook()
    book.set_position("p", "S", Side.LONG, None, None, None, TrailingStop(D("0.1")), D("1"))
    assert book.cross("S", D("0.900000000001")) == []
    assert [h.key for h in book.cross("S", D("0.9"))] == ["p"]


def test_many_positions_at_one_rate_fire_by_group() -> None:
    """Positions that activated at different peaks fire oldest (highest peak) first."""
    book = TriggerBook()
    spec = TrailingStop(D("0.1"))
    book.set_position("old", "S", Side.LONG, None, None, None, spec, D("100"))
    assert book.cross("S", D("95")) == []
    book.set_position("new", "S", Side.LONG, None, None, None, spec, D("95"))
    assert [h.key for h in book.cross("S", D("90"))] == ["old"]
    assert [h.key for h in book.cross("S", D("85.5"))] == ["new"]
    assert len(book) == 0 and book.symbols() == set()


def test_the_stop_loss_outranks_the_trailing_stop_when_both_cross() -> None:
    """One tick through both levels closes once, for the stop loss (SPEC 5.2)."""
    book = TriggerBook()
    book.set_position("p", "S", Side.LONG, D("90"), None, None, TrailingStop(D("0.05")), D("100"))
    [hit] = book.cross("S", D("80"))
    assert hit.reason is Reason.STOP_LOSS
    assert hit.trailing() is not None  # a restore would bring the trailing stop back too


def test_moved_peaks_are_reported_once() -> None:
    """`take_moved_trailing` lists a moved key once, and nothing when nothing moved since."""
    book = TriggerBook()
    spec = TrailingStop(D("0.1"))
    book.set_position("a", "S", Side.LONG, None, None, None, spec, D("100"))
    book.set_position("b", "S", Side.LONG, None, None, None, spec, D("100"))
    book.cross("S", D("101"))
    book.cross("S", D("102"))
    writes = sorted(book.take_moved_trailing(), key=lambda w: w.key)
    assert [(w.key, w.peak, w.stop) for w in writes] == [
        ("a", D(102), D("91.8")),
        ("b", D(102), D("91.8")),
    ]
    assert book.take_moved_trailing() == []


def test_a_trailing_only_position_keeps_its_symbol_followed() -> None:
    """A spot position with only a trailing stop is a level: its symbol is announced."""
    seen: list[tuple[frozenset[str], frozenset[str]]] = []
    book = TriggerBook(lambda gained, lost: seen.append((gained, lost)))
    book.set_position("p", "S", Side.LONG, None, None, None, TrailingStop(D("0.1")), D("10"))
    assert seen == [(frozenset({"S"}), frozenset())]
    book.cross("S", D("9"))
    assert seen[-1] == (frozenset(), frozenset({"S"}))
