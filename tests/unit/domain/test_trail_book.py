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
from cogmora.domain.trail_state import TrailWrite
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
        # What the writer has stored per key (the upsert's peak is the stored one); keys
        # put back by `restore` are left out (the book trails from the hit's peak).
        self.stored: dict[str, Decimal | None] = {}

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
        known, stored = key in self.stored, self.stored.get(key)
        old = self.naive.get(key)
        if old is not None and old.spec == spec and old.side is side and old.peak is not None:
            # the book keeps the peak it tracked when the parameters are unchanged (the
            # feed echoing a commit older than the writer's own; the store keeps the
            # writer's peak, its compare-and-set expects the parameters only)
            long = side is Side.LONG
            if peak is None or (old.peak >= peak if long else old.peak <= peak):
                peak = old.peak
            else:
                known, stored = True, peak
        else:  # new parameters: the document the feed brought is the store's
            known, stored = True, peak
        self.naive[key] = Naive(symbol, side, spec, peak, stop_loss)
        if known:
            self.stored[key] = stored

    @rule(key=KEYS, stop_loss=st.one_of(st.none(), GRID))
    def patch(self, key: str, stop_loss: Decimal | None) -> None:
        """A PATCH of the stop loss alone: the document it writes carries the peak it read
        from the store, however far the book's peak has moved since the last write."""
        entry = self.naive.get(key)
        if entry is None or key not in self.stored:
            return
        stored = self.stored[key]
        self.book.set_position(
            key, entry.symbol, entry.side, stop_loss, None, None, entry.spec, stored
        )
        self.naive[key] = replace(entry, stop_loss=stop_loss)

    @rule(key=KEYS)
    def remove(self, key: str) -> None:
        assert self.book.remove(key) == (self.naive.pop(key, None) is not None)
        self.stored.pop(key, None)

    @precondition(lambda self: bool(self.taken))
    @rule(index=st.integers(0, 100))
    def restore(self, index: int) -> None:
        hit, entry = self.taken.pop(index % len(self.taken))
        restored = self.book.restore(hit)
        assert restored == (hit.key not in self.naive)
        if restored:
            self.naive[hit.key] = entry
            self.stored.pop(hit.key, None)

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

    def _store(self, writes: list[TrailWrite]) -> None:
        for write in writes:
            for key in write.keys:
                assert key in self.naive, key  # only keys the book holds
                self.stored[key] = write.peak
                assert write.peak == self.naive[key].peak, key  # the book's peak now

    @rule()
    def start_round(self) -> None:
        self.book.start_trailing_round()

    @rule(limit=st.integers(1, 4))
    def write_slice(self, limit: int) -> None:
        """The writer's slice: at most `limit` keys, none twice in a round."""
        writes = self.book.take_moved_trailing(limit)
        keys = [k for w in writes for k in w.keys]
        assert len(keys) <= limit and len(set(keys)) == len(keys)
        self._store(writes)

    @rule()
    def drain(self) -> None:
        """Finish the round, then one more: every active key's stored peak is the book's."""
        for _ in range(2):
            self.book.start_trailing_round()
            while self.book.trailing_moved_left():
                self._store(self.book.take_moved_trailing(3))
        for key, entry in self.naive.items():
            if key in self.stored and entry.peak is not None:
                assert self.stored[key] == entry.peak, key

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


def _flat(writes: list[TrailWrite]) -> list[tuple[str, Decimal, Decimal]]:
    return sorted((k, w.peak, w.stop) for w in writes for k in w.keys)


def _longs(book: TriggerBook, count: int, symbol: str = "S") -> None:
    spec = TrailingStop(D("0.1"))
    for i in range(count):
        book.set_position(f"k{i:04d}", symbol, Side.LONG, None, None, None, spec, D("100"))


def test_moved_peaks_are_reported_once() -> None:
    """`take_moved_trailing` lists a moved key once, and nothing when nothing moved since."""
    book = TriggerBook()
    spec = TrailingStop(D("0.1"))
    book.set_position("a", "S", Side.LONG, None, None, None, spec, D("100"))
    book.set_position("b", "S", Side.LONG, None, None, None, spec, D("100"))
    book.cross("S", D("101"))
    book.cross("S", D("102"))
    writes = book.take_moved_trailing()
    assert _flat(writes) == [("a", D(102), D("91.8")), ("b", D(102), D("91.8"))]
    assert len(writes) == 1  # one group, one set of values: one compare-and-set
    assert book.take_moved_trailing() == []


def test_a_round_is_handed_out_in_slices_of_at_most_the_limit() -> None:
    book = TriggerBook()
    _longs(book, 1000)
    book.cross("S", D("101"))
    assert book.start_trailing_round() == 1000
    seen: list[str] = []
    while book.trailing_moved_left():
        keys = [k for w in book.take_moved_trailing(64) for k in w.keys]
        assert 0 < len(keys) <= 64
        seen += keys
    assert sorted(seen) == [f"k{i:04d}" for i in range(1000)]
    assert book.take_moved_trailing(64) == []  # nothing until the next round starts


def test_a_later_slice_stores_the_peak_the_book_holds_by_then() -> None:
    book = TriggerBook()
    _longs(book, 10)
    book.cross("S", D("101"))
    book.start_trailing_round()
    first = _flat(book.take_moved_trailing(4))
    book.cross("S", D("105"))  # between two slices of the same round
    rest = _flat(book.take_moved_trailing(100))
    assert {p for _, p, _ in first} == {D(101)} and {p for _, p, _ in rest} == {D(105)}
    # The move reached every key: the next round writes the four written at 101 again.
    book.start_trailing_round()
    again = _flat(book.take_moved_trailing(100))
    assert sorted(k for k, _, _ in again) == sorted(k for k, _, _ in first + rest)
    assert {p for _, p, _ in again} == {D(105)}


def test_a_stop_fires_on_its_tick_while_a_round_is_being_written() -> None:
    """Firing never waits for the write-out; a key fired between slices is not written."""
    book = TriggerBook()
    _longs(book, 100)
    book.cross("S", D("110"))
    book.start_trailing_round()
    written = _flat(book.take_moved_trailing(10))
    hits = book.cross("S", D("99"))  # 110 * 0.9 = 99: every stop crosses on this tick
    assert len(hits) == 100 and {h.reason for h in hits} == {Reason.TRAILING_STOP}
    assert all(h.trailing() is not None and h.trailing().peak_price() == D(110) for h in hits)
    assert len(written) == 10
    while book.trailing_moved_left():
        assert book.take_moved_trailing(10) == []


def test_a_key_queued_twice_in_a_round_is_handed_out_once() -> None:
    book = TriggerBook()
    _longs(book, 3)
    book.cross("S", D("101"))
    book.mark_trailing_moved(["k0000", "k0001"])  # also moved on their own (a lagging store)
    assert book.start_trailing_round() == 5
    keys = [k for w in book.take_moved_trailing(1) for k in w.keys]
    while book.trailing_moved_left():
        keys += [k for w in book.take_moved_trailing(1) for k in w.keys]
    assert sorted(keys) == ["k0000", "k0001", "k0002"]


def test_a_round_cut_short_is_finished_by_the_next() -> None:
    book = TriggerBook()
    _longs(book, 10)
    book.cross("S", D("101"))
    book.start_trailing_round()
    first = [k for w in book.take_moved_trailing(3) for k in w.keys]
    book.cross("S", D("102"))
    book.start_trailing_round()  # 7 left from the first round, 10 moved again
    rest = [k for w in book.take_moved_trailing(100) for k in w.keys]
    assert sorted(rest) == [f"k{i:04d}" for i in range(10)]
    assert len(first) == 3


def test_a_trailing_only_position_keeps_its_symbol_followed() -> None:
    """A spot position with only a trailing stop is a level: its symbol is announced."""
    seen: list[tuple[frozenset[str], frozenset[str]]] = []
    book = TriggerBook(lambda gained, lost: seen.append((gained, lost)))
    book.set_position("p", "S", Side.LONG, None, None, None, TrailingStop(D("0.1")), D("10"))
    assert seen == [(frozenset({"S"}), frozenset())]
    book.cross("S", D("9"))
    assert seen[-1] == (frozenset(), frozenset({"S"}))
