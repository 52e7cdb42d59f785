"""The trigger book against a naive oracle: a plain dict of entries scanned on every tick."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cogmora.domain.book import Hit, PositionLevels, Reason, TriggerBook, TriggerLevel
from cogmora.domain.enums import Side, TriggerOp
from cogmora.domain.ticks import PriceKind

D = Decimal
STEP = D("0.00000001")

KEYS = st.sampled_from([f"k{i}" for i in range(12)])
SYMBOLS = st.sampled_from(["A", "B", "C"])
GRID = st.integers(1, 16).map(lambda n: D(n) / 4)  # shared values make ties and gaps common
LEVELS = st.one_of(GRID, st.decimals(min_value=-1, max_value=5, places=8))
OPTIONAL_LEVELS = st.one_of(st.none(), LEVELS)
PRICES = st.one_of(
    GRID,
    st.tuples(GRID, st.sampled_from([-STEP, STEP, -STEP / 2, STEP / 2, STEP / 3])).map(sum),
    st.tuples(GRID, st.sampled_from([-STEP / 2, STEP / 2])).map(sum),
    st.decimals(min_value=-1, max_value=6, places=12),
)
KINDS = st.sampled_from([PriceKind.TRADE, PriceKind.TRADE, PriceKind.MARK])


@dataclass(frozen=True)
class Entry:
    symbol: str
    side: Side | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    liquidation: Decimal | None = None
    op: TriggerOp | None = None
    price: Decimal | None = None

    def levels(self) -> int:
        return sum(
            v is not None for v in (self.stop_loss, self.take_profit, self.liquidation, self.price)
        )

    def reason(self, price: Decimal, kind: PriceKind) -> Reason | None:
        """SPEC section 5, written out longhand."""
        if self.op is not None:
            assert self.price is not None
            if kind is PriceKind.MARK:
                return None
            fires = price >= self.price if self.op is TriggerOp.ABOVE else price <= self.price
            return Reason.TRIGGER if fires else None
        long = self.side is Side.LONG
        liq, sl, tp = self.liquidation, self.stop_loss, self.take_profit
        if liq is not None and (price <= liq if long else price >= liq):
            return Reason.LIQUIDATION
        if kind is PriceKind.MARK:
            return None
        if sl is not None and (price <= sl if long else price >= sl):
            return Reason.STOP_LOSS
        if tp is not None and (price >= tp if long else price <= tp):
            return Reason.TAKE_PROFIT
        return None


class BookAgainstOracle(RuleBasedStateMachine):
    """Any sequence of upserts, loads, removals, restores and ticks hits what a full scan hits."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed: set[str] = set()
        self.book = TriggerBook(self.changed)
        self.oracle: dict[str, Entry] = {}
        self.taken: list[tuple[Hit, Entry]] = []

    def changed(self, gained: frozenset[str], lost: frozenset[str]) -> None:
        assert gained or lost
        assert not gained & self.subscribed and lost <= self.subscribed
        self.subscribed = (self.subscribed | gained) - lost

    def put(self, key: str, entry: Entry) -> None:
        if entry.levels():
            self.oracle[key] = entry
        else:
            self.oracle.pop(key, None)

    @rule(
        key=KEYS,
        symbol=SYMBOLS,
        side=st.sampled_from(Side),
        sl=OPTIONAL_LEVELS,
        tp=OPTIONAL_LEVELS,
        liq=OPTIONAL_LEVELS,
    )
    def set_position(
        self,
        key: str,
        symbol: str,
        side: Side,
        sl: Decimal | None,
        tp: Decimal | None,
        liq: Decimal | None,
    ) -> None:
        self.book.set_position(key, symbol, side, sl, tp, liq)
        self.put(key, Entry(symbol, side, sl, tp, liq))

    @rule(key=KEYS, symbol=SYMBOLS, op=st.sampled_from(TriggerOp), price=LEVELS)
    def set_trigger(self, key: str, symbol: str, op: TriggerOp, price: Decimal) -> None:
        self.book.set_trigger(key, symbol, op, price)
        self.put(key, Entry(symbol, op=op, price=price))

    @rule(
        rows=st.lists(
            st.tuples(
                KEYS,
                SYMBOLS,
                st.sampled_from(Side),
                OPTIONAL_LEVELS,
                OPTIONAL_LEVELS,
                OPTIONAL_LEVELS,
            ),
            max_size=8,
        ),
        triggers=st.lists(st.tuples(KEYS, SYMBOLS, st.sampled_from(TriggerOp), LEVELS), max_size=8),
    )
    def bulk_load(
        self,
        rows: list[tuple[str, str, Side, Decimal | None, Decimal | None, Decimal | None]],
        triggers: list[tuple[str, str, TriggerOp, Decimal]],
    ) -> None:
        assert self.book.load_positions(rows) == len(rows)
        assert self.book.load_triggers(triggers) == len(triggers)
        for key, symbol, side, sl, tp, liq in rows:
            self.put(key, Entry(symbol, side, sl, tp, liq))
        for key, symbol, op, price in triggers:
            self.put(key, Entry(symbol, op=op, price=price))

    @rule(key=KEYS)
    def remove(self, key: str) -> None:
        assert self.book.remove(key) == (self.oracle.pop(key, None) is not None)

    @rule(symbol=SYMBOLS, price=PRICES, kind=KINDS)
    def cross(self, symbol: str, price: Decimal, kind: PriceKind) -> None:
        expected = {}
        for key, entry in self.oracle.items():
            if entry.symbol == symbol and (reason := entry.reason(price, kind)) is not None:
                expected[key] = reason
        assert self.book.would_cross(symbol, price, kind) == bool(expected)
        hits = self.book.cross(symbol, price, kind)
        assert {h.key: h.reason for h in hits} == expected
        assert len(hits) == len(expected)
        reasons = [h.reason is Reason.LIQUIDATION for h in hits]
        assert reasons == sorted(reasons, reverse=True), "liquidations first"
        for hit in hits:
            self.taken.append((hit, self.oracle.pop(hit.key)))

    @precondition(lambda self: self.taken)
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        hit, entry = self.taken.pop(data.draw(st.integers(0, len(self.taken) - 1)))
        restorable = hit.key not in self.oracle
        assert self.book.restore(hit) == restorable
        if restorable:
            self.oracle[hit.key] = entry

    @invariant()
    def same_contents(self) -> None:
        assert len(self.book) == len(self.oracle)
        assert self.book.levels_count() == sum(e.levels() for e in self.oracle.values())
        assert self.book.symbols() == {e.symbol for e in self.oracle.values()} == self.subscribed
        for key, entry in self.oracle.items():
            if entry.op is not None:
                assert entry.price is not None
                assert self.book.levels_for(key) == TriggerLevel(
                    entry.symbol, entry.op, entry.price
                )
            else:
                assert entry.side is not None
                assert self.book.levels_for(key) == PositionLevels(
                    entry.symbol, entry.side, entry.stop_loss, entry.take_profit, entry.liquidation
                )


BookAgainstOracle.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_book_gives_the_same_hits_as_scanning_every_entry = BookAgainstOracle.TestCase
