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
from decimal import Decimal

from cogmora.domain.enums import Side
from cogmora.domain.ladder import EXACT, NEG_INF, PLACES, POS_INF, Ladder
from cogmora.domain.trail_moves import WriteQueue
from cogmora.domain.trail_state import TrailState, TrailWrite, scaled_level, signed_price
from cogmora.domain.trailing import TrailingStop

_ANY_SHORT = 10**40  # a short's "activate at once" level: every price is at or below it


__all__ = ["SymbolTrails", "TrailState", "TrailWrite", "Trails", "iter_groups"]


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

    __slots__ = ("count", "d", "empty", "groups", "k", "rate", "side")

    def __init__(self, side: _Side, rate: Decimal) -> None:
        n, d = rate.as_integer_ratio()
        self.side = side
        self.rate = rate
        self.count = 0  # keys of this rate, waiting or active
        self.d = d
        self.k = d - n if side.sign > 0 else d + n
        self.groups: deque[_Group] = deque()
        self.empty = 0  # empty groups left inside the deque (ends are trimmed at once)

    def fires(self, s: int, q: int | Decimal) -> bool:
        if type(q) is int:
            return q * self.d <= s * self.k
        return EXACT.multiply(q, self.d) <= s * self.k

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


def _fire_edge(sign: int, s: int, k: int, d: int) -> Decimal:
    """The price at or past which a group at signed peak `s` may fire, rounded away from
    the exact stop (a prefilter: the exact test is `_Trail.fires`)."""
    if sign > 0:  # long: fires at or below s*K/D; ceil
        return Decimal(-((-s * k) // d)).scaleb(-PLACES, EXACT)
    return Decimal((-s * k) // d).scaleb(-PLACES, EXACT)  # short: at or above (-s)*K/D; floor


class _Side:
    """The trailing stops of one side of a symbol, with a shared watermark.

    `w` is a lazily applied move: every active group's peak is really `max(group.s, w)`.
    A trade past `w` only raises `w` (O(1), whatever the number of rates); the groups are
    brought up to it (`settle`, the amortized merges) only when something needs their
    own peaks: an activation or insert (which may lower `w`), a fire, a write-out."""

    __slots__ = ("fire", "fire0", "fire_w", "move", "pending", "sign", "smallest", "trails", "w")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.trails: dict[Decimal, _Trail] = {}
        # Waiting for activation: a long's fire at or above its level, a short's at or below.
        self.pending = Ladder(-1) if sign > 0 else Ladder(1)
        self.w: int | None = None  # signed; None: no active group
        self.smallest: _Trail | None = None  # the smallest rate: the highest stop at `w`
        self.fire0 = NEG_INF if sign > 0 else POS_INF  # the groups' own highest stop
        self.fire_w = self.fire0  # the stop of a group at `w`
        self.move = POS_INF if sign > 0 else NEG_INF  # a price past this raises `w`
        self.fire = self.fire0  # the side's highest stop, rounded away (a prefilter)

    def settle(self, trail: _Trail, moved: set[_Group]) -> None:
        """Bring `trail`'s groups below `w` up to it (one merged group)."""
        w = self.w
        groups = trail.groups
        if w is None or not groups or groups[-1].s >= w:
            return
        survivor = groups.pop()
        while groups and groups[-1].s <= w:
            other = groups.pop()
            if len(other.entries) > len(survivor.entries):
                survivor, other = other, survivor
            for entry in other.entries.values():
                entry.group = survivor
            survivor.entries.update(other.entries)
            other.entries = {}
        survivor.s = w
        groups.append(survivor)
        if survivor.entries:
            moved.add(survivor)

    def settle_all(self, moved: set[_Group]) -> None:
        for trail in self.trails.values():
            self.settle(trail, moved)

    def lower(self, s: int) -> None:
        """After `settle_all`: a group at `s` joins, so `w` may not exceed it."""
        if self.w is None or s < self.w:
            self.w = s
            self.edges_w()

    def raise_to(self, q: int) -> None:
        self.w = q
        self.edges_w()

    def edges_w(self) -> None:
        w, sign = self.w, self.sign
        if w is None or self.smallest is None:
            self.fire_w = NEG_INF if sign > 0 else POS_INF
            self.move = POS_INF if sign > 0 else NEG_INF
        else:
            t = self.smallest
            self.fire_w = _fire_edge(sign, w, t.k, t.d)
            self.move = signed_price(w + 1, sign)
        self.fire = max(self.fire0, self.fire_w) if sign > 0 else min(self.fire0, self.fire_w)

    def edges_groups(self) -> None:
        """After a change to any trail's oldest group, or to the set of rates."""
        sign = self.sign
        fire = NEG_INF if sign > 0 else POS_INF
        smallest: _Trail | None = None
        active = False
        for trail in self.trails.values():
            groups = trail.groups
            if not groups:
                continue
            active = True
            if smallest is None or trail.rate < smallest.rate:
                smallest = trail
            edge = _fire_edge(sign, groups[0].s, trail.k, trail.d)
            fire = max(fire, edge) if sign > 0 else min(fire, edge)
        self.fire0 = fire
        self.smallest = smallest
        if not active:
            self.w = None
        self.edges_w()

    def fire_edge(self) -> Decimal:
        return self.fire


class SymbolTrails:
    """The trailing stops of one symbol: its long side and its short side."""

    __slots__ = ("count", "hi", "keys", "lo", "long", "short")

    def __init__(self) -> None:
        self.count = 0
        self.keys: set[str] = set()
        self.long = _Side(1)
        self.short = _Side(-1)
        self.lo = NEG_INF
        self.hi = POS_INF

    def side(self, sign: int) -> _Side:
        return self.long if sign > 0 else self.short

    def refresh(self) -> None:
        long, short = self.long, self.short
        self.lo = max(short.pending.edge, long.fire, short.move)
        self.hi = min(long.pending.edge, long.move, short.fire)


class Trails:
    """Every trailing stop of the book, by key and by symbol."""

    def __init__(self) -> None:
        self.symbols: dict[str, SymbolTrails] = {}
        self._entries: dict[str, tuple[str, _Entry]] = {}
        # Moved since the current write-out round started (see `trail_moves`): keys that
        # activated or were touched, groups whose shared peak moved, sides whose `w` rose
        # since their last settle (every active group of theirs moved).
        self._moved_groups: set[_Group] = set()
        self._moved: set[str] = set()
        self._raised: set[_Side] = set()
        self._round = WriteQueue()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def state(self, key: str) -> TrailState | None:
        found = self._entries.get(key)
        if found is None:
            return None
        return self._owed_state(found[1])

    def _owed_state(self, entry: _Entry) -> TrailState:
        """The entry's state, `owed` when its peak may not be stored yet: it moved since
        the current round's start (its key, its group, or its side's watermark past its
        group), or a round is still being handed out (it may be queued in it, and a key
        out of the book when its turn comes is skipped; an extra write is harmless)."""
        group = entry.group
        if group is None:
            return _state(entry)
        side = entry.trail.side
        owed = (
            bool(self._round)
            or entry.key in self._moved
            or group in self._moved_groups
            or (side in self._raised and side.w is not None and group.s < side.w)
        )
        return _state(entry, owed)

    # ------------------------------------------------------------------ entries

    def add(self, key: str, symbol: str, state: TrailState) -> SymbolTrails:
        """Put a key in (it must not be in already); returns its symbol's trails. An `owed`
        state is queued for the writer: the store may not have its peak."""
        sym = self.symbols.get(symbol)
        if sym is None:
            sym = self.symbols[symbol] = SymbolTrails()
        sign = 1 if state.side is Side.LONG else -1
        side = sym.side(sign)
        rate = state.spec.callback_rate
        trail = side.trails.get(rate)
        if trail is None:
            trail = side.trails[rate] = _Trail(side, rate)
        entry = _Entry(key, state.spec, trail)
        trail.count += 1
        if state.peak is None:
            activation = state.spec.activation_price
            if activation is None:
                entry.level = 0 if sign > 0 else _ANY_SHORT
            else:
                whole = scaled_level(activation)
                entry.level = -whole if sign > 0 else whole
            side.pending.add(entry.level, key)
        else:
            side.settle_all(self._moved_groups)
            trail.insert(entry, state.peak)
            side.lower(state.peak)
            side.edges_groups()
            if state.owed:
                self._moved.add(key)
        self._entries[key] = (symbol, entry)
        sym.count += 1
        sym.keys.add(key)
        sym.refresh()
        return sym

    def pop(self, key: str) -> tuple[str, TrailState] | None:
        """Take a key out; returns its symbol and state (None if it had no trailing stop)."""
        found = self._entries.get(key)
        if found is None:
            return None
        symbol, entry = found
        state = self._owed_state(entry)
        sym = self.symbols[symbol]
        group = entry.group
        trail = entry.trail
        side = trail.side
        if group is None:
            side.pending.discard(entry.level, key)
        else:
            group.entries.pop(key, None)
            if not group.entries:
                trail.empty += 1
                trail.trim()
        self._forget(key, symbol, entry)
        side.edges_groups()
        sym.refresh()
        return symbol, state

    def keys_of(self, symbol: str) -> list[str]:
        """The keys with a trailing stop on `symbol` (the gap replay's hold-out; not a tick's)."""
        sym = self.symbols.get(symbol)
        return [] if sym is None else list(sym.keys)

    # ------------------------------------------------------------------ prices

    def trade(self, sym: SymbolTrails, price: Decimal) -> list[tuple[str, TrailState]]:
        """One trade at `price`: activate, move the peaks, fire; returns what fired."""
        return self._step(sym, price, price, False)

    def nudge(self, sym: SymbolTrails, price: Decimal) -> bool:
        """The common case of a trade outside `sym`'s edges, in O(1): it only raises a
        side's watermark (a new high for the longs, a new low for the shorts), activating
        nothing and reaching no stop. False (nothing done) when it may do more."""
        long, short = sym.long, sym.short
        if price >= long.pending.edge or price <= short.pending.edge:
            return False
        if price <= long.fire or price >= short.fire:
            return False
        scaled = price.scaleb(PLACES, EXACT)
        floor, ceil = _floor_ceil(scaled)
        if long.w is not None and price >= long.move and floor > long.w:
            long.raise_to(floor)
            self._raised.add(long)
        if short.w is not None and price <= short.move and -ceil > short.w:
            short.raise_to(-ceil)
            self._raised.add(short)
        sym.refresh()
        return True

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
        then stops judged at `low` (longs) / `high` (shorts)."""
        fired: list[tuple[str, TrailState]] = []
        hs = high.scaleb(PLACES, EXACT)
        ls = hs if low is high else low.scaleb(PLACES, EXACT)
        h_floor, h_ceil = _floor_ceil(hs)
        l_floor, l_ceil = _floor_ceil(ls)
        long, short = sym.long, sym.short
        # per side: the signed move price, the activation ladder's query, the signed
        # fire price and the price the side's fire edge is compared with
        if long.trails:
            f_long: int | Decimal = l_floor if l_floor == l_ceil else ls
            self._side_step(long, h_floor, -h_floor, f_long, low, at_open, fired)
        if short.trails:
            f_short: int | Decimal = -h_floor if h_floor == h_ceil else -hs
            self._side_step(short, -l_ceil, l_ceil, f_short, high, at_open, fired)
        sym.refresh()
        return fired

    def _side_step(
        self,
        side: _Side,
        m: int,
        q: int,
        f: int | Decimal,
        fire_price: Decimal,
        at_open: bool,
        fired: list[tuple[str, TrailState]],
    ) -> None:
        moved = self._moved_groups
        vals = side.pending.vals
        if vals and vals[-1] >= q:  # activations: every group settles, then `w` is `m`
            if side.w is None or m > side.w:
                side.w = m
            side.settle_all(moved)
            entries = self._entries
            for bucket in side.pending.take(q):
                for key in (bucket,) if type(bucket) is str else bucket:
                    entry = entries[key][1]
                    groups = entry.trail.groups
                    if groups and groups[-1].s == m:
                        top = groups[-1]
                    else:
                        top = _Group(m)
                        groups.append(top)
                    entry.group = top
                    top.entries[key] = entry
                    self._moved.add(key)
            side.w = m
            side.edges_groups()
            self._raised.discard(side)
        elif side.w is not None and m > side.w:
            side.raise_to(m)
            self._raised.add(side)
        edge = side.fire_edge()  # the side's highest stop, rounded away: a prefilter
        if fire_price > edge if side.sign > 0 else fire_price < edge:
            return
        w = side.w
        emptied = False
        sign_side = Side.LONG if side.sign > 0 else Side.SHORT
        for trail in side.trails.values():
            groups = trail.groups
            if not groups:
                continue
            first = groups[0].s
            if w is not None and w > first:
                first = w
            if not trail.fires(first, f):
                continue
            side.settle(trail, moved)
            while groups and trail.fires(groups[0].s, f):
                group = groups.popleft()
                owed = group in moved or bool(self._round)  # if a lost write restores it
                for key, entry in group.entries.items():
                    fired.append((key, TrailState(sign_side, entry.spec, group.s, at_open, owed)))
                    emptied |= self._forget(key, None, entry, keep_trail=True)
                group.entries = {}
            trail.trim()
        if emptied:
            for rate in [r for r, t in side.trails.items() if t.count == 0]:
                del side.trails[rate]
        side.edges_groups()

    def _forget(
        self, key: str, symbol: str | None, entry: _Entry, keep_trail: bool = False
    ) -> bool:
        """Drop the key's bookkeeping (its group or ladder slot is the caller's); True
        when its rate has no key left (dropped now, or by the caller if `keep_trail`)."""
        if symbol is None:
            symbol = self._entries[key][0]
        del self._entries[key]
        trail = entry.trail
        trail.count -= 1
        if trail.count == 0 and not keep_trail:
            trail.side.trails.pop(trail.rate, None)
        sym = self.symbols[symbol]
        sym.count -= 1
        sym.keys.discard(key)
        if sym.count == 0:
            del self.symbols[symbol]
        return trail.count == 0

    # ------------------------------------------------------------------ persistence

    def touch(self, keys: list[str]) -> None:
        """Mark active keys as moved (their last write failed, or the store lags the book)."""
        entries = self._entries
        for key in keys:
            found = entries.get(key)
            if found is not None and found[1].group is not None:
                self._moved.add(key)

    def start_round(self) -> int:
        """Queue every key moved since the last round's start for writing; returns the
        queue's length. The merges a raised watermark implies are paid here, off the
        tick path (amortized: each merge removes a group a tick made); the keys go in by
        C loops, one per group."""
        groups = self._moved_groups
        for side in self._raised:
            side.settle_all(groups)
        self._raised = set()
        queue = self._round
        queue.start()
        queue.extend(self._moved)
        for group in groups:
            queue.extend(group.entries)
        self._moved = set()
        self._moved_groups = set()
        return len(queue)

    def moved_left(self) -> int:
        """Keys of the current round not yet taken (duplicates and stale keys counted)."""
        return len(self._round)

    def take_moved(self, limit: int | None = None) -> list[TrailWrite]:
        """Without `limit`: every key moved since the last call (a round started and taken
        whole). With one: at most `limit` keys of the current round (`start_round`), with
        the peak and stop the book holds now, grouped by what they store; fired or
        removed keys are dropped."""
        if limit is None:
            self.start_round()
        out: dict[tuple[_Group, Decimal | None], TrailWrite] = {}
        shown: dict[_Group, tuple[Decimal, Decimal]] = {}  # a group shares peak and stop
        entries = self._entries
        for key in self._round.take(limit):
            found = entries.get(key)
            if found is None:
                continue
            entry = found[1]
            group = entry.group
            if group is None:
                continue
            spec = entry.spec
            write = out.get((group, spec.activation_price))  # one rate per group
            if write is None:
                values = shown.get(group)
                if values is None:
                    state = _state(entry)
                    peak, stop = state.peak_price(), state.stop_price()
                    assert peak is not None and stop is not None
                    values = shown[group] = (peak, stop)
                write = out[group, spec.activation_price] = TrailWrite([], spec, *values)
            write.keys.append(key)
        return list(out.values())


def _state(entry: _Entry, owed: bool = False) -> TrailState:
    side = entry.trail.side
    group = entry.group
    w = side.w
    peak = None if group is None else (group.s if w is None else max(group.s, w))
    return TrailState(Side.LONG if side.sign > 0 else Side.SHORT, entry.spec, peak, False, owed)


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
    for side in (sym.long, sym.short):
        name = Side.LONG if side.sign > 0 else Side.SHORT
        for rate, trail in side.trails.items():
            yield name, rate, [g.s for g in trail.groups if g.entries]
