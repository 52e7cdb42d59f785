"""The per-symbol trigger book: which resting levels a tick crosses, in O(log n + k).

The worker holds every open position's SL / TP / liquidation level and every active
trigger's level here and asks, for each tick, which of them the price reaches (SPEC
section 5; the rules themselves are in `crossing`). Almost every tick crosses nothing, so
that answer must be a dict lookup and two comparisons; a tick that does cross must cost
O(log n + k) whatever rests on the symbol, including a storm of 100,000 positions at one
level.

How, and why:

- Each symbol has four *ladders*: levels that fire at or below the price (long SL, short
  TP, `below` triggers), levels that fire at or above it (long TP, short SL, `above`
  triggers), and the liquidation levels of each direction apart, so a mark tick looks at
  those only. A key is in a ladder at most once.
- A ladder is a sorted Python list of distinct levels stored so that the levels a tick
  crosses are always a *suffix*: at-or-below levels as `+L` ascending, at-or-above levels
  as `-L` ascending. A cross is one bisect and one `del vals[i:]`, never a prefix delete.
- Levels are integers in units of 1e-8 (exact for stored 8-place decimals, three times
  smaller than a Decimal and faster to compare). A tick price with more places is rounded
  toward the side that keeps each comparison exact: `p <= L` iff `ceil(p*1e8) <= L`, and
  `p >= L` iff `floor(p*1e8) >= L`. The same int object is shared by the key's record,
  the ladder list and the bucket dict, so a level costs one int.
- The keys at one level share a bucket: the key itself (a str, the common case, no
  container) or an insertion-ordered dict of keys when several share the level.
- Adding a key at a new level is a bisect and a list insert, whose memmove is nothing at
  the typical 1,000 levels a symbol and ~25 us at 100,000 distinct levels on one symbol;
  a bulk load instead appends and sorts each ladder once.
- Removing a key deletes it from its buckets in O(1) and leaves its level in the list as
  a tombstone; tombstones at the top are popped at once (the top is always live, which
  keeps the fast path exact) and the list is compacted when they outnumber live levels,
  so removal is amortized O(1) and a storm is drained in O(k).
- Per symbol the edges are kept as Decimals (highest at-or-below level, lowest at-or-above
  level), so the no-hit path compares the tick's Decimal without converting it.

Trailing stops (SPEC 5.2) live beside the ladders in `trail_book`, per symbol, side and
callback rate, so a tick costs O(distinct rates) whatever their number; their edges are
folded into the symbol's, and a tick that only moves a peak takes an O(1) path (`nudge`).
A trailing stop is a level of its key: a position with only a trailing stop is in the
book and keeps its symbol followed.

Symbol notifications: the book calls `on_symbols_changed(gained, lost)` at most once per
operation, after the book is consistent, with the symbols that gained their first level
and those that lost their last, so the engine can batch feed (un)subscriptions. An upsert
that moves levels within one symbol notifies nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from cogmora.domain.crossing import Direction, Reason, direction, trigger_direction
from cogmora.domain.enums import Side, TriggerOp
from cogmora.domain.ladder import EXACT, NEG_INF, PLACES, POS_INF, Ladder
from cogmora.domain.ticks import PriceKind
from cogmora.domain.trail_book import SymbolTrails, Trails, TrailState, TrailWrite
from cogmora.domain.trailing import TrailingStop
from cogmora.errors import ValidationError

__all__ = [
    "Hit",
    "LoadError",
    "PositionLevels",
    "Reason",
    "SymbolEdges",
    "SymbolsChanged",
    "TriggerBook",
    "TriggerLevel",
]

_MARK = PriceKind.MARK

# Ladders of a symbol; even ones fire at or below the price and store +L, odd ones -L.
_LOW, _HIGH, _LOW_LIQ, _HIGH_LIQ = 0, 1, 2, 3
_LIQUIDATION_LADDERS = (_LOW_LIQ, _HIGH_LIQ)
_ALL_LADDERS = (_LOW_LIQ, _HIGH_LIQ, _LOW, _HIGH)  # liquidation first: it is the worst reason

# What a record is: two sides of a position or two ops of a trigger.
_LONG, _SHORT, _ABOVE, _BELOW = 0, 1, 2, 3
_SIDE_CODES = {Side.LONG: _LONG, Side.SHORT: _SHORT}
_OP_CODES = {TriggerOp.ABOVE: _ABOVE, TriggerOp.BELOW: _BELOW}

# (symbol, code, level a, level b, level c): positions hold (SL, TP, liquidation), triggers
# (price, None, None); each level is stored signed as in its ladder.
_Record = tuple[str, int, int | None, int | None, int | None]


def _ladder(direction_: Direction, liquidation: bool = False) -> int:
    return (_LOW if direction_ is Direction.AT_OR_BELOW else _HIGH) + (2 if liquidation else 0)


def _layouts() -> tuple[tuple[int | None, int | None, int | None], ...]:
    """For each record code, the ladder of each of its three levels (from the crossing rules)."""
    rows: list[tuple[int | None, int | None, int | None]] = []
    for side in (Side.LONG, Side.SHORT):
        rows.append(
            (
                _ladder(direction(side, Reason.STOP_LOSS)),
                _ladder(direction(side, Reason.TAKE_PROFIT)),
                _ladder(direction(side, Reason.LIQUIDATION), liquidation=True),
            )
        )
    for op in (TriggerOp.ABOVE, TriggerOp.BELOW):
        rows.append((_ladder(trigger_direction(op)), None, None))
    return tuple(rows)


_LAYOUT = _layouts()
# The same with 4 for "no ladder": an index into `_take_found`'s five thresholds.
_LADDER_OF = tuple(tuple(4 if i is None else i for i in row) for row in _LAYOUT)
_SLOT_REASONS = (Reason.STOP_LOSS, Reason.TAKE_PROFIT, Reason.LIQUIDATION)


def _reasons() -> tuple[tuple[Reason, ...], ...]:
    """`_REASONS[ladder][code]`: why a key of that code sitting in that ladder fires."""
    table = [[Reason.TRIGGER] * 4 for _ in range(4)]
    for code, layout in enumerate(_LAYOUT):
        for slot, ladder in enumerate(layout):
            if ladder is not None and code in (_LONG, _SHORT):
                table[ladder][code] = _SLOT_REASONS[slot]
    return tuple(tuple(row) for row in table)


_REASONS = _reasons()
# Which of a record's three levels a reason names (a trigger's price is its first).
_REASON_SLOTS = {
    Reason.STOP_LOSS: 0,
    Reason.TAKE_PROFIT: 1,
    Reason.LIQUIDATION: 2,
    Reason.TRIGGER: 0,
}


def _scaled(value: Decimal, name: str) -> int:
    """`value * 10**8` as an int; a level with more than 8 places cannot be held exactly."""
    if not value.is_finite():
        raise ValidationError(name, f"{name} must be a finite number")
    scaled = value.scaleb(PLACES, EXACT)
    whole = int(scaled)
    if whole != scaled:
        raise ValidationError(name, f"{name} must have at most {PLACES} decimal places")
    return whole


def _signed(value: Decimal | None, ladder: int | None, name: str) -> int | None:
    if value is None or ladder is None:
        return None
    whole = _scaled(value, name)
    return -whole if ladder & 1 else whole


@functools.lru_cache(maxsize=4096)
def _level(scaled: int) -> Decimal:
    """A stored level from its scaled int; cached, as a storm's hits share a handful."""
    return Decimal(scaled).scaleb(-PLACES, EXACT)


def _unsigned(value: int | None, ladder: int | None) -> Decimal | None:
    if value is None or ladder is None:
        return None
    return Decimal(-value if ladder & 1 else value).scaleb(-PLACES, EXACT)


@dataclass(slots=True, unsafe_hash=True)
class Hit:
    """An entry a tick crossed and removed; `reason` is the worst of the levels it crossed.

    Read-only by convention, not frozen: a storm makes 100,000 in one tick's call, and a
    frozen dataclass's `__init__` (one `object.__setattr__` a field) costs 3x a plain one
    (1.7 vs 0.5 us here). Equal and hashed by key and reason, as it was frozen."""

    key: str
    reason: Reason
    _record: _Record | None = field(default=None, compare=False, repr=False)
    _trail: TrailState | None = field(default=None, compare=False, repr=False)

    def trailing(self) -> TrailState | None:
        """The key's trailing stop as the book held it when it left (None: it had none)."""
        return self._trail

    def level(self) -> Decimal | None:
        """The level of `reason` as the book held it: the one whose crossing this is."""
        if self.reason is Reason.TRAILING_STOP:
            return None if self._trail is None else self._trail.stop_price()
        record = self._record
        if record is None:
            return None
        slot = _REASON_SLOTS[self.reason]
        value = record[2] if slot == 0 else record[3] if slot == 1 else record[4]
        ladder = _LAYOUT[record[1]][slot]
        if value is None or ladder is None:
            return None
        return _level(-value if ladder & 1 else value)

    def levels(self) -> PositionLevels | TriggerLevel | None:
        """The levels the key held when it was crossed: what its write expects to find stored."""
        return None if self._record is None else _levels(self._record)


@dataclass(frozen=True, slots=True)
class PositionLevels:
    symbol: str
    side: Side
    stop_loss: Decimal | None
    take_profit: Decimal | None
    liquidation: Decimal | None


@dataclass(frozen=True, slots=True)
class TriggerLevel:
    symbol: str
    op: TriggerOp
    price: Decimal


class _Symbol:
    """One symbol's ladders and edges. The trade edges are also kept as floats (`flo`,
    `fhi`) for a prefilter on a price that has no Decimal yet: both
    conversions round correctly, hence monotonically, so `flo < float(p) < fhi` implies
    `lo < p < hi`; a float tie or anything else goes to the exact Decimal path. The low
    float edges are never below 0 (no valid price is), so the same test also says the
    price is positive and finite. The edges include the trailing stops' (`trail`), so a
    price that would move a peak or fire a trailing stop is never prefiltered away."""

    __slots__ = (
        "announced",
        "count",
        "fhi",
        "flo",
        "hi",
        "hi_lad",
        "hi_liq",
        "ladders",
        "lo",
        "lo_lad",
        "lo_liq",
        "name",
        "trail",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0  # live levels
        self.announced = False  # the engine was told this symbol has levels
        self.ladders = (Ladder(1), Ladder(-1), Ladder(1), Ladder(-1))
        self.lo = self.lo_liq = NEG_INF  # a price above lo crosses no at-or-below level
        self.hi = self.hi_liq = POS_INF  # a price below hi crosses no at-or-above level
        self.flo = 0.0
        self.fhi = float("inf")
        self.trail: SymbolTrails | None = None  # its trailing stops (`trail_book`)
        self.lo_lad, self.hi_lad = self.lo, self.hi  # the edges without the trailing stops

    def refresh(self) -> None:
        low, high, low_liq, high_liq = self.ladders
        self.lo_liq = low_liq.edge
        self.hi_liq = high_liq.edge
        self.lo = max(low.edge, self.lo_liq)
        self.hi = min(high.edge, self.hi_liq)
        self.lo_lad, self.hi_lad = self.lo, self.hi
        self.retrail()

    def retrail(self) -> None:
        """The edges again after the trailing stops moved theirs (a peak moved)."""
        trail = self.trail
        if trail is not None:  # a price between its edges moves no trailing stop
            self.lo = max(self.lo_lad, trail.lo)
            self.hi = min(self.hi_lad, trail.hi)
        self.flo, self.fhi = max(float(self.lo), 0.0), float(self.hi)


SymbolEdges = _Symbol  # what `TriggerBook.edges` maps each symbol to (read-only outside)


SymbolsChanged = Callable[[frozenset[str], frozenset[str]], None]
LoadError = Callable[[str, ValidationError], None]
_Row = tuple[Any, ...]


class TriggerBook:
    """Resting levels of open positions and active triggers, keyed by globally unique id."""

    def __init__(self, on_symbols_changed: SymbolsChanged | None = None) -> None:
        self._symbols: dict[str, _Symbol] = {}
        self._keys: dict[str, _Record] = {}
        self._levels = 0
        self._on_symbols_changed = on_symbols_changed
        self._trail = Trails()

    # ------------------------------------------------------------------ ticks

    def cross(self, symbol: str, price: Decimal, kind: PriceKind = PriceKind.TRADE) -> list[Hit]:
        """Remove and return every entry `price` reaches; mark prices reach liquidations only.

        Liquidations come first in the list; the rest of the order is deterministic but
        not part of the contract.
        """
        sym = self._symbols.get(symbol)
        if sym is None:
            return []
        if kind is _MARK:
            if sym.lo_liq < price < sym.hi_liq:
                return []
        elif sym.lo < price < sym.hi:
            return []
        elif (
            sym.trail is not None
            and sym.lo_lad < price < sym.hi_lad
            and self._trail.nudge(sym.trail, price)
        ):  # only a trailing peak moved (a new high): O(1), nothing crossed
            sym.retrail()
            return []
        return self._cross(sym, price, kind)

    def cross_range(
        self,
        symbol: str,
        low: Decimal,
        high: Decimal,
        keep: Callable[[str], bool] | None = None,
        open_: Decimal | None = None,
    ) -> list[Hit]:
        """Remove and return every entry a span of trades from `low` to `high` reaches.

        The gap replay's question for one candle: at-or-below levels (a long's SL and
        liquidation, a short's TP, `below` triggers) are reached at the low, at-or-above
        levels at the high; each key's reason is the worst of the levels it reached. A key
        for which `keep(key)` is true (created after the candle) stays in the book.
        """
        sym = self._symbols.get(symbol)
        if sym is None or (sym.lo < low and high < sym.hi):
            return []
        low_q = _ceil_scaled(low)
        high_q = -_floor_scaled(high)
        keys = self._keys
        found = self._take_worst(sym, _ALL_LADDERS, low_q, high_q)
        fired = None
        if sym.trail is not None:  # the open, then the worse order of the high and low
            fired = self._trail_fired(sym, self._trail.span(sym.trail, open_, low, high), found)
        hits = []
        for key, reason in found.items():
            record = keys.pop(key)
            self._unplace(key, record)
            if keep is not None and keep(key):
                keys[key] = record
                self._place(key, record, None)
                if fired and key in fired:  # not held aside by the caller: put it back
                    self._put_trail(key, record[0], replace(fired[key], at_open=False))
                continue
            trail = fired.get(key) if fired else None
            hits.append(Hit(key, reason, record, trail or self._take_trail(key)))
        sym.refresh()
        self._settle((sym.name,))
        return hits

    def level_of(self, hit: Hit) -> Decimal | None:
        """The level of `hit`'s key that its reason names (a trigger's price)."""
        record = hit._record
        if record is None:
            return None
        _, code, a, b, c = record
        if hit.reason in (Reason.STOP_LOSS, Reason.TRIGGER):
            return _unsigned(a, _LAYOUT[code][0])
        if hit.reason is Reason.TAKE_PROFIT:
            return _unsigned(b, _LAYOUT[code][1])
        return _unsigned(c, _LAYOUT[code][2])

    def edges(self) -> Mapping[str, SymbolEdges]:
        """The live map of symbols with levels to their edges (exact and float), for a
        prefilter in front of `cross`; read it, never write it."""
        return self._symbols

    def would_cross(self, symbol: str, price: Decimal, kind: PriceKind = PriceKind.TRADE) -> bool:
        sym = self._symbols.get(symbol)
        if sym is None:
            return False
        if kind is _MARK:
            return not sym.lo_liq < price < sym.hi_liq
        return not sym.lo < price < sym.hi

    def _take_worst(
        self, sym: _Symbol, ladders: tuple[int, ...], low_q: int, high_q: int
    ) -> dict[str, Reason]:
        """Take out of `sym`'s ladders every key reached from `low_q` (at-or-below
        ladders) or `high_q` (at-or-above ones, signed), each with the worst reason it
        reached: one tick (`low_q` its ceiling, `high_q` minus its floor) or a candle's
        span. The keys stay in `self._keys` for the caller to unplace."""
        keys = self._keys
        found: dict[str, Reason] = {}
        for index in ladders:
            ladder = sym.ladders[index]
            q = low_q if ladder.sign > 0 else high_q
            if not ladder.vals or ladder.vals[-1] < q:
                continue
            reasons = _REASONS[index]
            for bucket in ladder.take(q):
                for key in (bucket,) if type(bucket) is str else bucket:
                    reason = reasons[keys[key][1]]
                    previous = found.get(key)
                    if previous is None or reason < previous:
                        found[key] = reason
        return found

    def _cross(self, sym: _Symbol, price: Decimal, kind: PriceKind) -> list[Hit]:
        scaled = price.scaleb(PLACES, EXACT)
        floor = ceil = int(scaled)  # int() truncates toward zero
        if floor != scaled:
            if scaled > 0:
                ceil += 1
            else:
                floor -= 1
        ladders = _LIQUIDATION_LADDERS if kind is _MARK else _ALL_LADDERS
        found = self._take_worst(sym, ladders, ceil, -floor)
        fired = None
        if sym.trail is not None and kind is not _MARK:
            fired = self._trail_fired(sym, self._trail.trade(sym.trail, price), found)
        hits = self._take_found(sym, ladders, ceil, -floor, found, fired)
        sym.refresh()
        self._settle((sym.name,))
        return hits

    def _take_found(
        self,
        sym: _Symbol,
        ladders: tuple[int, ...],
        low_q: int,
        high_q: int,
        found: dict[str, Reason],
        fired: dict[str, TrailState] | None,
    ) -> list[Hit]:
        """The Hits of what one tick took, each key's other levels taken out too.

        `_unplace` per key, inlined, for a storm's 100,000 keys: a level in a ladder the
        tick took from at or past its threshold is gone already (the take removed its
        whole bucket), every other one is discarded; the counts move once, and the edges
        are refreshed once by the caller. A symbol without trailing stops skips their
        lookup per key."""
        never = float("inf")
        qs = [never, never, never, never, never]
        for index in ladders:
            qs[index] = low_q if sym.ladders[index].sign > 0 else high_q
        by_ladder = sym.ladders
        layout = _LADDER_OF
        pop = self._keys.pop
        trails = self._trail.symbols.get(sym.name) is not None
        take_trail = self._take_trail
        hits: list[Hit] = []
        append = hits.append
        removed = 0
        for key, reason in found.items():
            record = pop(key)
            lay = layout[record[1]]
            # A record's level is None where its layout has no ladder (`_signed`).
            v = record[2]
            if v is not None:
                removed += 1
                if v < qs[lay[0]]:
                    by_ladder[lay[0]].discard(v, key)
            v = record[3]
            if v is not None:
                removed += 1
                if v < qs[lay[1]]:
                    by_ladder[lay[1]].discard(v, key)
            v = record[4]
            if v is not None:
                removed += 1
                if v < qs[lay[2]]:
                    by_ladder[lay[2]].discard(v, key)
            trail = fired.get(key) if fired else None
            if trail is None and trails:
                trail = take_trail(key)
            append(Hit(key, reason, record, trail))
        sym.count -= removed
        self._levels -= removed
        return hits

    # ------------------------------------------------------------------ entries

    def set_position(
        self,
        key: str,
        symbol: str,
        side: Side,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
        liquidation: Decimal | None,
        trailing: TrailingStop | None = None,
        trailing_peak: Decimal | None = None,
    ) -> None:
        """Upsert: the key's previous levels go; a position with no level leaves the book.

        A trailing stop's peak is `trailing_peak` (None: not activated yet); an upsert with
        the same trailing parameters keeps the peak the book has tracked since (the
        stored one is at most a second old), unless the stored one is further."""
        record = _position_record(symbol, side, stop_loss, take_profit, liquidation)
        if trailing is None and key not in self._trail:
            self._upsert(key, record)
            return
        self._upsert_trailing(key, record, side, trailing, trailing_peak)

    def set_trigger(self, key: str, symbol: str, op: TriggerOp, price: Decimal) -> None:
        """Upsert a trigger's level."""
        self._upsert(key, _trigger_record(symbol, op, price))

    def remove(self, key: str) -> bool:
        record = self._keys.pop(key, None)
        if record is None:
            return False
        self._unplace(key, record)
        self._take_trail(key)
        self._settle((record[0],))
        return True

    def restore(self, hit: Hit) -> bool:
        """Put back what `hit` removed (its write lost a race), unless the key was set since."""
        record = hit._record
        if record is None or hit.key in self._keys:
            return False
        self._keys[hit.key] = record
        self._place(hit.key, record, None)
        if hit._trail is not None:
            self._put_trail(hit.key, record[0], replace(hit._trail, at_open=False))
        self._settle((record[0],))
        return True

    def load_positions(
        self,
        rows: Iterable[tuple[Any, ...]],
        on_error: LoadError | None = None,
    ) -> int:
        """Upsert many positions (key, symbol, side, SL, TP, liq[, trailing, peak]),
        sorting each ladder once.

        A row with a level the book cannot hold is passed to `on_error(key, error)` and
        skipped; without `on_error` its ValidationError is raised, with the rows before
        it loaded. Returns the number of rows upserted.
        """
        return self._load(rows, _position_row, on_error)

    def load_triggers(
        self,
        rows: Iterable[tuple[str, str, TriggerOp, Decimal]],
        on_error: LoadError | None = None,
    ) -> int:
        """Upsert many triggers (key, symbol, op, price), sorting each ladder once."""
        return self._load(rows, _trigger_row, on_error)

    # ------------------------------------------------------------------ inspection

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def absent(self, keys: Iterable[str]) -> list[str]:
        """Those of `keys` not in the book (after a storm's commit: 100,000 of them)."""
        held = self._keys
        return [key for key in keys if key not in held]

    def levels_count(self) -> int:
        return self._levels

    def symbols(self) -> set[str]:
        return set(self._symbols)

    def levels_for(self, key: str) -> PositionLevels | TriggerLevel | None:
        record = self._keys.get(key)
        return None if record is None else _levels(record)

    def keys_of(self, symbol: str) -> set[str]:
        """The keys resting on `symbol`, in O(its keys): what a reload of the symbol
        compares with the store."""
        sym = self._symbols.get(symbol)
        keys: set[str] = set()
        if sym is None:
            return keys
        for ladder in sym.ladders:
            for bucket in ladder.buckets.values():
                if type(bucket) is str:
                    keys.add(bucket)
                else:
                    keys.update(bucket)
        return keys

    # ------------------------------------------------------------------ internals

    def _upsert(self, key: str, record: _Record) -> None:
        touched = [record[0]]
        old = self._keys.pop(key, None)
        if old is not None:
            self._unplace(key, old)
            touched.append(old[0])
        if record[2] is not None or record[3] is not None or record[4] is not None:
            self._keys[key] = record
            self._place(key, record, None)
        self._settle(touched)

    def _load(
        self,
        rows: Iterable[_Row],
        convert: Callable[[_Row], _Record],
        on_error: LoadError | None,
    ) -> int:
        dirty: set[Ladder] = set()
        touched: set[str] = set()
        loaded = 0
        try:
            for row in rows:
                key = row[0]
                try:
                    record = convert(row)
                except ValidationError as error:
                    if on_error is None:
                        raise
                    on_error(key, error)
                    continue
                trail = _row_trail(row)
                old = self._keys.pop(key, None)
                if old is not None:
                    self._unplace(key, old)
                    self._take_trail(key)
                    touched.add(old[0])
                if (
                    record[2] is not None
                    or record[3] is not None
                    or record[4] is not None
                    or trail is not None
                ):
                    self._keys[key] = record
                    self._place(key, record, dirty)
                    if trail is not None:
                        self._put_trail(key, record[0], trail)
                    touched.add(record[0])
                loaded += 1
        finally:
            for ladder in dirty:
                ladder.rebuild()
            for name in touched:
                sym = self._symbols.get(name)
                if sym is not None:
                    sym.refresh()
            self._settle(touched)
        return loaded

    def _place(self, key: str, record: _Record, dirty: set[Ladder] | None) -> None:
        """Put the record's levels in their ladders; `dirty` defers sorting to a bulk load."""
        sym = self._symbols.get(record[0])
        if sym is None:
            sym = self._symbols[record[0]] = _Symbol(record[0])
        ladders = sym.ladders
        moved = False
        placed = 0
        for index, v in zip(_LAYOUT[record[1]], record[2:], strict=True):
            if v is None or index is None:
                continue
            ladder = ladders[index]
            if dirty is not None and not ladder.dirty:
                ladder.dirty = True
                dirty.add(ladder)
            moved |= ladder.add(v, key)
            placed += 1
        if moved:
            sym.refresh()
        sym.count += placed
        self._levels += placed

    def _unplace(self, key: str, record: _Record) -> None:
        """Take the record's levels out of their ladders (those a cross took are gone already)."""
        sym = self._symbols[record[0]]
        ladders = sym.ladders
        moved = False
        removed = 0
        for index, v in zip(_LAYOUT[record[1]], record[2:], strict=True):
            if v is None or index is None:
                continue
            moved |= ladders[index].discard(v, key)
            removed += 1
        if moved:
            sym.refresh()
        sym.count -= removed
        self._levels -= removed

    def _settle(self, names: Iterable[str]) -> None:
        """Drop emptied symbols and tell the engine which symbols came and went."""
        gained: list[str] = []
        lost: list[str] = []
        for name in names:
            sym = self._symbols.get(name)
            if sym is None:
                continue
            if sym.count == 0:
                del self._symbols[name]
                if sym.announced:
                    lost.append(name)
            elif not sym.announced:
                sym.announced = True
                gained.append(name)
        if (gained or lost) and self._on_symbols_changed is not None:
            self._on_symbols_changed(frozenset(gained), frozenset(lost))

    # ------------------------------------------------------------------ trailing stops

    def trailing_state(self, key: str) -> TrailState | None:
        return self._trail.state(key)

    def trailing_keys(self, symbol: str) -> list[str]:
        """The keys of `symbol` with a trailing stop (the gap replay's, not a tick's)."""
        return self._trail.keys_of(symbol)

    def take_moved_trailing(self, limit: int | None = None) -> list[TrailWrite]:
        """The trailing stops whose peak moved since the last call, to store (batched);
        with `limit`, a slice of the round `start_trailing_round` queued (`trail_moves`)."""
        return self._trail.take_moved(limit)

    def start_trailing_round(self) -> int:
        return self._trail.start_round()

    def trailing_moved_left(self) -> int:
        return self._trail.moved_left()

    def mark_trailing_moved(self, keys: list[str]) -> None:
        self._trail.touch(keys)

    def hold_trailing(self, key: str) -> TrailState | None:
        """Take a key's trailing stop aside, leaving the rest of it in the book (a gap's
        candles from before the key existed must not move its peak); `release_trailing`
        puts it back."""
        found = self._trail.pop(key)
        if found is None:
            return None
        sym = self._symbols.get(found[0])
        if sym is not None:
            sym.trail = self._trail.symbols.get(found[0])
            sym.refresh()
        return found[1]

    def release_trailing(self, key: str, state: TrailState) -> None:
        record = self._keys.get(key)
        if record is None or key in self._trail:
            return
        sym = self._symbols[record[0]]
        sym.trail = self._trail.add(key, record[0], state)
        sym.refresh()

    def _upsert_trailing(
        self,
        key: str,
        record: _Record,
        side: Side,
        trailing: TrailingStop | None,
        peak: Decimal | None,
    ) -> None:
        state = None if trailing is None else _trail_state(side, trailing, peak)
        held = self._trail.state(key)
        if state is not None and held is not None and held.spec == state.spec and held.side is side:
            if self._keys.get(key) == record and (
                state.peak is None or (held.peak is not None and held.peak >= state.peak)
            ):
                if state.peak is None or held.peak != state.peak:
                    self._trail.touch([key])  # the store lags: write the book's peak
                return  # the feed echoing what the book holds (its own peak write, say)
            if held.peak is not None and (state.peak is None or held.peak > state.peak):
                state = held
        touched = [record[0]]
        old = self._keys.pop(key, None)
        if old is not None:
            self._unplace(key, old)
            touched.append(old[0])
        self._take_trail(key)
        if state is not None or any(v is not None for v in record[2:]):
            self._keys[key] = record
            self._place(key, record, None)
            if state is not None:
                self._put_trail(key, record[0], state)
        self._settle(touched)

    def _put_trail(self, key: str, symbol: str, state: TrailState) -> None:
        sym = self._symbols[symbol]
        sym.trail = self._trail.add(key, symbol, state)
        sym.count += 1
        self._levels += 1
        sym.refresh()

    def _take_trail(self, key: str) -> TrailState | None:
        found = self._trail.pop(key)
        if found is None:
            return None
        symbol, state = found
        sym = self._symbols.get(symbol)
        if sym is not None:
            sym.count -= 1
            self._levels -= 1
            sym.trail = self._trail.symbols.get(symbol)
            sym.refresh()
        return state

    def _trail_fired(
        self, sym: _Symbol, fired: list[tuple[str, TrailState]], found: dict[str, Reason]
    ) -> dict[str, TrailState]:
        """Fold what the trailing stops fired into `found` (the worst reason per key)."""
        sym.trail = self._trail.symbols.get(sym.name)
        if not fired:
            return {}
        sym.count -= len(fired)
        self._levels -= len(fired)
        states = {}
        trailing = Reason.TRAILING_STOP
        for key, state in fired:
            states[key] = state
            previous = found.get(key)
            if previous is None or trailing < previous:
                found[key] = trailing
        return states


def _levels(record: _Record) -> PositionLevels | TriggerLevel:
    symbol, code, a, b, c = record
    la, lb, lc = _LAYOUT[code]
    if code in (_ABOVE, _BELOW):
        price = _unsigned(a, la)
        assert price is not None
        op = TriggerOp.ABOVE if code == _ABOVE else TriggerOp.BELOW
        return TriggerLevel(symbol, op, price)
    side = Side.LONG if code == _LONG else Side.SHORT
    return PositionLevels(symbol, side, _unsigned(a, la), _unsigned(b, lb), _unsigned(c, lc))
def _ceil_scaled(price: Decimal) -> int:
    """ceil(price * 1e8): `price <= L` iff this <= L for a scaled level L."""
    scaled = price.scaleb(PLACES, EXACT)
    whole = int(scaled)
    return whole + 1 if whole != scaled and scaled > 0 else whole


def _floor_scaled(price: Decimal) -> int:
    scaled = price.scaleb(PLACES, EXACT)
    whole = int(scaled)
    return whole - 1 if whole != scaled and scaled < 0 else whole


def _position_record(
    symbol: str,
    side: Side,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    liquidation: Decimal | None,
) -> _Record:
    code = _SIDE_CODES[side]
    sl_ladder, tp_ladder, liq_ladder = _LAYOUT[code]
    return (
        symbol,
        code,
        _signed(stop_loss, sl_ladder, "stopLoss"),
        _signed(take_profit, tp_ladder, "takeProfit"),
        _signed(liquidation, liq_ladder, "liquidationPrice"),
    )


def _trigger_record(symbol: str, op: TriggerOp, price: Decimal) -> _Record:
    code = _OP_CODES[op]
    return (symbol, code, _signed(price, _LAYOUT[code][0], "price"), None, None)


def _trail_state(side: Side, trailing: TrailingStop, peak: Decimal | None) -> TrailState:
    if peak is None:
        return TrailState(side, trailing, None)
    whole = _scaled(peak, "trailingPeak")
    return TrailState(side, trailing, whole if side is Side.LONG else -whole)


def _row_trail(row: _Row) -> TrailState | None:
    if len(row) < 7 or row[6] is None:
        return None
    return _trail_state(row[2], row[6], row[7] if len(row) > 7 else None)


def _position_row(row: _Row) -> _Record:
    return _position_record(row[1], row[2], row[3], row[4], row[5])


def _trigger_row(row: _Row) -> _Record:
    return _trigger_record(row[1], row[2], row[3])
