"""The trailing stops of the trigger book: a tick costs O(distinct rates), not O(stops).

A long trailing stop's peak is the highest price since it activated, so positions that
activated at different times differ only by *when*: every one activated before a given
moment shares every high since. Per (symbol, side, callback rate) the stops are kept as a
stack of groups, oldest first, each group with the peak it has seen since its newest
member activated. Older groups have seen more, so peaks fall strictly from the oldest to
the newest group, and:

- a new price above the newest groups' peaks merges them into one group at that price
  (amortized O(1): every merge removes a group; the smaller dict moves into the larger,
  so a key moves at most log2(n) times in its life);
- the oldest group has the highest peak, hence the highest stop of its rate: a tick that
  does not cross it crosses none of the rate, and one that does fires whole groups from
  the oldest end;
- a stop waiting for its activation price rests in an ordinary ladder (`ladder.Ladder`),
  which the tick crosses like any level; crossing it pushes the key onto its rate's stack.

Shorts are the mirror, handled by the same code over *signed* prices (`+p` for a long,
`-p` for a short), in which a short's trough is also "the largest signed price seen". In
units of 1e-8 with the rate `r = N/D`, a group at signed peak `s` fires on a signed price
`q` when `q*D <= s*K`, `K = D-N` for a long (`p <= peak*(1-r)`) and `D+N` for a short
(`p >= trough*(1+r)`): integer maths, exact. A price off the 1e-8 grid (never one the
engine accepts) is compared exactly as a Decimal; its peak is rounded toward the last one.

Per symbol the book keeps two Decimal edges (`lo`, `hi`) between which a price changes
nothing here, which `book.TriggerBook` folds into its own no-hit test, so a tick on a
symbol whose trailing stops neither move nor fire still costs two comparisons.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from cogmora.domain.enums import Side
from cogmora.domain.ladder import EXACT, NEG_INF, PLACES, POS_INF, Ladder
from cogmora.domain.trailing import TrailingStop, stop_shown

_ANY_SHORT = 10**40  # a short's "activate at once" level: every price is at or below it


def _scaled_level(value: Decimal) -> int:
    return int(value.scaleb(PLACES, EXACT))


def _price(s: int, sign: int) -> Decimal:
    return Decimal(sign * s).scaleb(-PLACES, EXACT)


@dataclass(frozen=True, slots=True)
class TrailState:
    """One key's trailing stop as the book holds it: enough to put it back exactly.

    `peak` is signed and scaled (None: waiting for its activation price); `at_open` marks a
    stop a candle's open crossed (a gap fills it at the open, SPEC 5.1)."""

    side: Side
    spec: TrailingStop
    peak: int | None
    at_open: bool = False

    def peak_price(self) -> Decimal | None:
        if self.peak is None:
            return None
        return _price(self.peak, 1 if self.side is Side.LONG else -1)

    def stop_price(self) -> Decimal | None:
        peak = self.peak_price()
        return None if peak is None else stop_shown(self.side, peak, self.spec.callback_rate)


@dataclass(frozen=True, slots=True)
class TrailWrite:
    """A key whose peak moved since the last `take_moved`: what to store."""

    key: str
    spec: TrailingStop
    peak: Decimal
    stop: Decimal


class _Group:
    __slots__ = ("entries", "s")

    def __init__(self, s: int) -> None:
        self.s = s
        self.entries: dict[str, _Entry] = {}


class _Entry:
    __slots__ = ("group", "key", "level", "spec", "trail")

    def __init__(self, key: str, spec: TrailingStop, trail: _Trail) -> None:
        self.key = key
        self.spec = spec
        self.trail = trail
        self.group: _Group | None = None  # None: waiting in the activation ladder
        self.level = 0  # the signed activation level while waiting


class _Trail:
    """One (side, rate) of a symbol: groups in a deque, [0] the oldest (fires first)."""

    __slots__ = ("count", "d", "edges", "empty", "groups", "k", "keyed", "sign")

    def __init__(self, sign: int, rate: Decimal) -> None:
        n, d = rate.as_integer_ratio()
        self.count = 0  # keys of this rate, waiting or active
        self.sign = sign
        self.d = d
        self.k = d - n if sign > 0 else d + n
        self.groups: deque[_Group] = deque()
        self.empty = 0  # empty groups left inside the deque (ends are trimmed at once)
        self.keyed = (0, 0)  # (newest, oldest) peaks the cached edges were computed for
        self.edges = (NEG_INF, POS_INF)  # (move edge, fire edge), as prices

    def edges_now(self) -> tuple[Decimal, Decimal]:
        """The price past which the newest peak moves, and the one at or past which the
        oldest group fires; cached until either peak changes."""
        groups = self.groups
        keyed = (groups[-1].s, groups[0].s)
        if keyed != self.keyed:
            top = keyed[0] + 1  # signed: a price moves the peak iff floor(q) >= s + 1
            self.edges = (_price(top, self.sign), self.stop_edge())
            self.keyed = keyed
        return self.edges

    def fires(self, s: int, q: int | Decimal) -> bool:
        if type(q) is int:
            return q * self.d <= s * self.k
        return EXACT.multiply(q, self.d) <= s * self.k

    def stop_edge(self) -> Decimal:
        """A price at or past which the oldest group may fire, rounded away from it."""
        s = self.groups[0].s
        if self.sign > 0:  # long: fires at or below ceil(peak*K/D)
            return Decimal(-((-s * self.k) // self.d)).scaleb(-PLACES, EXACT)
        return Decimal((-s * self.k) // self.d).scaleb(-PLACES, EXACT)  # short: at or above

    def trim(self) -> None:
        groups = self.groups
        while groups and not groups[0].entries:
            groups.popleft()
            self.empty = max(0, self.empty - 1)
        while groups and not groups[-1].entries:
            groups.pop()
            self.empty = max(0, self.empty - 1)
        if self.empty > 8 and self.empty * 2 > len(groups):
            self.groups = deque(g for g in groups if g.entries)
            self.empty = 0

    def insert(self, entry: _Entry, s: int) -> _Group:
        """Put `entry` in the group at peak `s`, made where it belongs if there is none
        (a restore or a load: the live path only ever adds at the newest end)."""
        groups = self.groups
        lo, hi = 0, len(groups)
        while lo < hi:  # descending s: first index whose s <= the new one
            mid = (lo + hi) // 2
            if groups[mid].s > s:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(groups) and groups[lo].s == s:
            group = groups[lo]
        else:
            group = _Group(s)
            if lo == len(groups):
                groups.append(group)
            else:
                groups.insert(lo, group)
        group.entries[entry.key] = entry
        entry.group = group
        return group


class SymbolTrails:
    """The trailing stops of one symbol."""

    __slots__ = ("count", "hi", "lo", "pending", "trails")

    def __init__(self) -> None:
        self.count = 0
        self.trails: dict[tuple[int, Decimal], _Trail] = {}
        # Waiting for activation: a long's fire at or above its level, a short's at or below.
        self.pending = (Ladder(-1), Ladder(1))
        self.lo = NEG_INF
        self.hi = POS_INF

    def refresh(self) -> None:
        lo = self.pending[1].edge
        hi = self.pending[0].edge
        for trail in self.trails.values():
            if not trail.groups:
                continue
            top, edge = trail.edges_now()
            if trail.sign > 0:
                lo = max(lo, edge)
                hi = min(hi, top)
            else:
                hi = min(hi, edge)
                lo = max(lo, top)
        self.lo, self.hi = lo, hi


class Trails:
    """Every trailing stop of the book, by key and by symbol."""

    def __init__(self) -> None:
        self.symbols: dict[str, SymbolTrails] = {}
        self._entries: dict[str, tuple[str, _Entry]] = {}
        self._moved_groups: set[_Group] = set()
        self._moved: set[_Entry] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def state(self, key: str) -> TrailState | None:
        found = self._entries.get(key)
        if found is None:
            return None
        return _state(found[1])

    # ------------------------------------------------------------------ entries

    def add(self, key: str, symbol: str, state: TrailState) -> SymbolTrails:
        """Put a key in (it must not be in already); returns its symbol's trails."""
        sym = self.symbols.get(symbol)
        if sym is None:
            sym = self.symbols[symbol] = SymbolTrails()
        sign = 1 if state.side is Side.LONG else -1
        trail_key = (sign, state.spec.callback_rate)
        trail = sym.trails.get(trail_key)
        if trail is None:
            trail = sym.trails[trail_key] = _Trail(sign, state.spec.callback_rate)
        entry = _Entry(key, state.spec, trail)
        trail.count += 1
        if state.peak is None:
            activation = state.spec.activation_price
            if activation is None:
                entry.level = 0 if sign > 0 else _ANY_SHORT
            else:
                whole = _scaled_level(activation)
                entry.level = -whole if sign > 0 else whole
            sym.pending[0 if sign > 0 else 1].add(entry.level, key)
        else:
            trail.insert(entry, state.peak)
        self._entries[key] = (symbol, entry)
        sym.count += 1
        sym.refresh()
        return sym

    def pop(self, key: str) -> tuple[str, TrailState] | None:
        """Take a key out; returns its symbol and state (None if it had no trailing stop)."""
        found = self._entries.get(key)
        if found is None:
            return None
        symbol, entry = found
        state = _state(entry)
        sym = self.symbols[symbol]
        group = entry.group
        trail = entry.trail
        if group is None:
            sym.pending[0 if trail.sign > 0 else 1].discard(entry.level, key)
        else:
            group.entries.pop(key, None)
            if not group.entries:
                trail.empty += 1
                trail.trim()
        self._forget(key, symbol, entry)
        sym.refresh()
        return symbol, state

    def keys_of(self, symbol: str) -> list[str]:
        """The keys with a trailing stop on `symbol` (the gap replay's hold-out; not a tick's)."""
        return [k for k, (s, _) in self._entries.items() if s == symbol]

    # ------------------------------------------------------------------ prices

    def trade(self, sym: SymbolTrails, price: Decimal) -> list[tuple[str, TrailState]]:
        """One trade at `price`: activate, move the peaks, fire; returns what fired."""
        return self._step(sym, price, price, False)

    def span(
        self, sym: SymbolTrails, open_: Decimal | None, low: Decimal, high: Decimal
    ) -> list[tuple[str, TrailState]]:
        """A candle: its open first, then (the worse for the user, SPEC 5.1) the extreme
        that moves the peaks before the one that fires: a long sees the high, then the low."""
        fired = self._step(sym, open_, open_, True) if open_ is not None else []
        return fired + self._step(sym, high, low, False)

    def _step(
        self, sym: SymbolTrails, high: Decimal, low: Decimal, at_open: bool
    ) -> list[tuple[str, TrailState]]:
        """One move: activations at `high` (longs) / `low` (shorts), peaks moved to them,
        then stops judged at `low` (longs) / `high` (shorts). Integer work per rate."""
        fired: list[tuple[str, TrailState]] = []
        hs = high.scaleb(PLACES, EXACT)
        ls = hs if low is high else low.scaleb(PLACES, EXACT)
        h_floor, h_ceil = _floor_ceil(hs)
        l_floor, l_ceil = _floor_ceil(ls)
        # Signed prices that move (m) and fire (f) each side: a long's high and low, a
        # short's low and high, negated.
        m_long, m_short = h_floor, -l_ceil
        f_long: int | Decimal = l_floor if l_floor == l_ceil else ls
        f_short: int | Decimal = -h_floor if h_floor == h_ceil else -hs
        arrived: dict[_Trail, list[_Entry]] | None = None
        entries = self._entries
        for index, q in ((0, -h_floor), (1, l_ceil)):
            ladder = sym.pending[index]
            vals = ladder.vals
            if not vals or vals[-1] < q:
                continue
            if arrived is None:
                arrived = {}
            for bucket in ladder.take(q):
                for key in (bucket,) if type(bucket) is str else bucket:
                    entry = entries[key][1]
                    arrived.setdefault(entry.trail, []).append(entry)
        emptied = False
        for trail in sym.trails.values():
            groups = trail.groups
            if trail.sign > 0:
                m, f = m_long, f_long
            else:
                m, f = m_short, f_short
            if groups and groups[-1].s < m:
                self._merge(groups, m)
            new = arrived.get(trail) if arrived is not None else None
            if new:
                self._arrive(groups, m, new)
            if not groups:
                continue
            d, k = trail.d, trail.k
            first = groups[0].s
            if (f * d if type(f) is int else EXACT.multiply(f, d)) > first * k:
                continue
            side = Side.LONG if trail.sign > 0 else Side.SHORT
            while groups and trail.fires(groups[0].s, f):
                group = groups.popleft()
                for key, entry in group.entries.items():
                    fired.append((key, TrailState(side, entry.spec, group.s, at_open)))
                    emptied |= self._forget(key, None, entry, keep_trail=True)
                group.entries = {}
            trail.trim()
        if emptied:
            for trail_key in [t for t, trail in sym.trails.items() if trail.count == 0]:
                del sym.trails[trail_key]
        sym.refresh()
        return fired

    def _merge(self, groups: deque[_Group], m: int) -> None:
        """Every newest group whose peak a move to `m` passes becomes one group at `m`."""
        survivor = groups.pop()
        while groups and groups[-1].s <= m:
            other = groups.pop()
            if len(other.entries) > len(survivor.entries):
                survivor, other = other, survivor
            for entry in other.entries.values():
                entry.group = survivor
            survivor.entries.update(other.entries)
            other.entries = {}
        survivor.s = m
        groups.append(survivor)
        if survivor.entries:
            self._moved_groups.add(survivor)

    def _arrive(self, groups: deque[_Group], m: int, new: list[_Entry]) -> None:
        """Keys whose activation price `m` reached join the newest group (at `m`)."""
        if groups and groups[-1].s == m:
            top = groups[-1]
        else:
            top = _Group(m)
            groups.append(top)
        for entry in new:
            entry.group = top
            top.entries[entry.key] = entry
            self._moved.add(entry)

    def _forget(
        self, key: str, symbol: str | None, entry: _Entry, keep_trail: bool = False
    ) -> bool:
        """Drop the key's bookkeeping (its group or ladder slot is the caller's); True
        when its rate has no key left (dropped now, or by the caller if `keep_trail`)."""
        if symbol is None:
            symbol = self._entries[key][0]
        del self._entries[key]
        self._moved.discard(entry)
        trail = entry.trail
        trail.count -= 1
        sym = self.symbols[symbol]
        if trail.count == 0 and not keep_trail:
            sym.trails.pop((trail.sign, entry.spec.callback_rate), None)
        sym.count -= 1
        if sym.count == 0:
            del self.symbols[symbol]
        return trail.count == 0

    # ------------------------------------------------------------------ persistence

    def touch(self, keys: list[str]) -> None:
        """Mark active keys as moved (their last write failed, or the store lags the book)."""
        for key in keys:
            found = self._entries.get(key)
            if found is not None and found[1].group is not None:
                self._moved.add(found[1])

    def take_moved(self) -> list[TrailWrite]:
        """Every key whose peak moved (or that activated) since the last call, with the peak
        and stop to store; the engine writes them at most once a second."""
        entries: set[_Entry] = set(self._moved)
        for group in self._moved_groups:
            entries.update(group.entries.values())
        self._moved = set()
        self._moved_groups = set()
        out = []
        for entry in entries:
            found = self._entries.get(entry.key)
            if found is None or found[1] is not entry or entry.group is None:
                continue
            state = _state(entry)
            peak = state.peak_price()
            stop = state.stop_price()
            assert peak is not None and stop is not None
            out.append(TrailWrite(entry.key, entry.spec, peak, stop))
        return out


def _state(entry: _Entry) -> TrailState:
    side = Side.LONG if entry.trail.sign > 0 else Side.SHORT
    group = entry.group
    return TrailState(side, entry.spec, None if group is None else group.s)


def _floor_ceil(scaled: Decimal) -> tuple[int, int]:
    whole = int(scaled)  # toward zero
    if whole == scaled:
        return whole, whole
    return (whole, whole + 1) if scaled > 0 else (whole - 1, whole)


def iter_groups(trails: Trails, symbol: str) -> Iterator[tuple[Side, Decimal, list[int]]]:
    """(side, rate, peaks oldest first) of each rate on `symbol`: for tests and metrics."""
    sym = trails.symbols.get(symbol)
    if sym is None:
        return
    for (sign, rate), trail in sym.trails.items():
        side = Side.LONG if sign > 0 else Side.SHORT
        yield side, rate, [g.s for g in trail.groups if g.entries]
