"""Spot ticker frames in, `Tick`s out only where a price can matter: the hot path's floor.

A `Tick` costs more than the JSON parse of its frame: its `Decimal` price and the tuple on
top of a lean parse, and then the price filter's and the engine's per-tick work. Almost
every frame crosses nothing and is plausible, so the worker parses each spot frame leanly
(`LeanFrame`, the price as text), and `HotPath` converts the text to a float and compares
it with two float regions kept next to exact ones:

- the book's edges (`TriggerBook.edges`, trailing stops' peaks and activations folded
  in): strictly inside them a price crosses no level and moves no trailing peak;
- the price filter's fast region (`PriceFilter.regions`): strictly inside it a price is
  within the band of the last accepted one, and a text short enough for the region (no
  minus sign, no leading point: `price_filter`'s `limit` and `pivot`) is on the symbol's
  tick, so the filter would accept it unchanged.

Both conversions (Decimal to float for the edges, text to float for the price) round
correctly, hence monotonically, so a float strictly inside implies the exact price
strictly inside. Such a frame is *quiet*: it is noted as the filter's last accepted price
(its text) and at once as the symbol's live price (its `LiveSlot`: the text, made a
Decimal when read, and the burst's `LivePrices.quiet_burst` entry), and counted as an
evaluated tick; nothing else observes it,
because it changes nothing else. A symbol whose live ticks the gap replay holds is never
quiet (its ticks must wait in order).

Anything else (on or past an edge as floats, a symbol the filter has not seen yet, a price
float() cannot read, a frame the lean struct does not fit, a held symbol) is decoded
exactly and handed to `sink` (the gap replay, then the filter, then `Engine.on_ticks`) at
once, in frame order, before the next frame is judged, so a level the sink puts in the
book (a predicted position) is seen by the very next frame, and the live price is what
tick-by-tick evaluation leaves whether the exact tick is accepted, dropped or held.

What a quiet frame costs is CPython's per-operation price, so the loop does as little as
it can: one dict lookup by topic gives the symbol, its filter region, its book edges and
its live-price slot (cached; the region while the filter's map is the same object, the
edges while they hold a level: `TriggerBook` drops a symbol's edges from its map only once
they hold none, and never changes them after that; the slot for good); `float()` of the
text; two chained float comparisons, the text's length and two character tests; three
attribute stores, no dict written.

The result is what decoding every frame and passing each burst through the same chain
gives: the same crossings in the same order, drops per symbol and reason, live prices,
band references and trailing peaks (`tests/unit/engine/test_hot_path_equivalence.py`).

Even so, a quiet frame costs about three times its parse as bytecode, so the same test
runs in C where the package was built with a compiler (`_quiet.c`, `NATIVE`): the C loop
judges frames until the first one it does not call quiet and returns its index; that
frame is judged by the Python loop (`_span`, the reference), through the sink if it is not
quiet, before C goes on from the next one. C only ever says "quiet" where the Python loop
would, so the two give the same results (both loops run the equivalence tests).

With C, the burst's raw frames are not parsed at all where C can read them (`on_raw`,
what the feed's connection hands over): C reads the topic, the price text and the times
straight from the bytes of a frame in the canonical ticker shape, and leaves any frame it
does not read exactly as msgspec's `LeanFrame` decoder would (an escape, a duplicate key,
an exponent: see `_quiet.c`) to the Python loop, which parses it. Building the lean
struct and freeing it were most of a quiet frame's cost once the test was in C.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market
from cogmora.domain.ticks import Tick
from cogmora.feeds.kucoin.decode import Decoded, FrameDecoder, MalformedFrame, spot_tick
from cogmora.feeds.kucoin.schemas import LeanData, LeanFrame
from cogmora.services.prices import LivePrices, LiveSlot, TradeEntry

try:
    from cogmora.engine import _quiet  # type: ignore[attr-defined]
except ImportError:  # built without a compiler: the Python loop alone
    _quiet = None

NATIVE: bool = _quiet is not None  # whether HotPaths run the quiet test in C by default
if _quiet is not None:
    _quiet.configure(LeanFrame, LeanData)

Sink = Callable[[list[Tick]], None]
_TOPIC = "/market/ticker:"
_NAN = float("nan")
_INF = float("inf")
_MAX_TOPICS = 100_000  # the topic -> symbol cache is cleared past this (a hostile feed)
_NONE: frozenset[str] = frozenset()


class Region(Protocol):
    """A symbol's plausible float region, as `PriceFilter.regions` maps it."""

    flo: float
    fhi: float
    limit: int
    pivot: float
    text: str | None


class Regions(Protocol):
    def get(self, symbol: str, default: None, /) -> Region | None: ...


class Edges(Protocol):
    """A symbol's float edges in the book (`TriggerBook.edges`' `SymbolEdges`)."""

    flo: float
    fhi: float
    count: int


class _Open:
    """Every positive finite price is plausible (a HotPath with no filter behind it)."""

    __slots__ = ("fhi", "flo", "limit", "pivot", "text")

    def __init__(self) -> None:
        self.flo, self.fhi, self.limit, self.pivot = 0.0, _INF, 1 << 62, _INF
        self.text: str | None = None


class _Unfiltered:
    def __init__(self) -> None:
        self._open = _Open()

    def get(self, symbol: str, default: None, /) -> Region:
        return self._open


class _NoLevels:
    """The edges of a symbol with no level: nothing to cross. Its zero `count` sends the
    hot path to the book again on every frame, as a symbol may gain levels any time."""

    __slots__ = ("count", "fhi", "flo")

    def __init__(self) -> None:
        self.flo, self.fhi, self.count = 0.0, _INF, 0


_NO_LEVELS = _NoLevels()
# A topic's symbol, filter region, book edges and live-price slot.
Entry = tuple[str, Region, Edges, LiveSlot]


class HotPath:
    """Bursts of spot ticker frames for one sink. One per event loop; not thread-safe.

    `regions` is the price filter's (`PriceFilter.regions`, called once per burst; None:
    no filter, every positive finite price is plausible); `held` the symbols whose ticks
    wait for a gap replay (`GapReplay.held`, read once per burst: it changes only between
    bursts); `on_quiet(n)` counts the quiet frames as evaluated ticks. Malformed frames are
    counted and passed to `on_malformed`; frames that carry no price to `on_control`."""

    __slots__ = (
        "_cache",
        "_cached_for",
        "_edges",
        "_full",
        "_held",
        "_lean",
        "_live",
        "_names",
        "_now",
        "_out",
        "_quiet",
        "_regions",
        "_run",
        "_scan",
        "_sink",
        "control",
        "deferred",
        "exact",
        "last_exchange_ns",
        "last_received_ns",
        "malformed",
        "on_bad",
    )

    def __init__(
        self,
        book: TriggerBook,
        sink: Sink,
        live: LivePrices,
        now: Callable[[], datetime],
        on_control: Callable[[bytes | str], None] | None = None,
        on_malformed: Callable[[MalformedFrame], None] | None = None,
        *,
        regions: Callable[[], Regions] | None = None,
        held: Callable[[], Collection[str]] | None = None,
        on_quiet: Callable[[int], None] | None = None,
    ) -> None:
        self._edges: Mapping[str, Edges] = book.edges()
        self._sink = sink
        self._live = live
        self._now = now
        unfiltered = _Unfiltered()
        self._regions: Callable[[], Regions] = regions or (lambda: unfiltered)
        self._held: Callable[[], Collection[str]] = held or (lambda: _NONE)
        self._quiet = on_quiet
        self._full = FrameDecoder(Market.SPOT).full
        self._lean = msgspec.json.Decoder(LeanFrame).decode
        self._names: dict[str, str] = {}
        # topic -> (symbol, region, edges) for the regions map `_cached_for`.
        self._cache: dict[str, Entry] = {}
        self._cached_for: Regions | None = None
        self.control = on_control
        self.on_bad = on_malformed
        self.malformed = 0
        self.exact = 0  # frames that went the exact way (the others were quiet)
        self.deferred = 0  # frames the C loop left to the Python loop (not all exact)
        self._run = _quiet.run if NATIVE else None
        self._scan = _quiet.scan if NATIVE else None
        self._out: list[int] = [0]  # where `scan` leaves the last quiet frame's exchange ms
        # The last tick of the last burst that had one (the feed's lag and silence).
        self.last_received_ns = 0
        self.last_exchange_ns = 0

    def on_frames(self, frames: Sequence[bytes | str], received_ns: int = 0) -> int:
        """Judge one burst of raw frames that all arrived at `received_ns`."""
        return self.on_raw(frames, [received_ns] * len(frames))

    def on_raw(
        self,
        frames: Sequence[bytes | str | Decoded],
        arrivals: Sequence[int],
        on_malformed: Callable[[MalformedFrame], None] | None = None,
        on_control: Callable[[bytes | str], None] | None = None,
    ) -> int:
        """Judge one burst of raw frames (or the `Decoded` Tick of a frame the reader
        decoded already; `arrivals[i]` is frame i's time.time_ns()), as `on_parsed` judges
        them once parsed: in frame order, a frame that carries no price to `on_control`
        and one that is malformed to `on_malformed` (defaults: the ones given at
        construction) when its turn comes. Returns how many frames were ticks."""
        if self._scan is None:
            parsed, at = self._parse_all(frames, arrivals, on_malformed, on_control)
            return self.on_parsed(parsed, at, on_malformed)
        regions, held, burst = self._begin()
        quiet, ticks, made, last, exchange_ms = self._scanned(
            frames, arrivals, on_malformed, on_control, regions, held, burst
        )
        return self._end(quiet, ticks, made, last, arrivals, exchange_ms)

    def parse(
        self,
        raw: bytes | str,
        received_ns: int,
        on_malformed: Callable[[MalformedFrame], None] | None = None,
        on_control: Callable[[bytes | str], None] | None = None,
    ) -> LeanFrame | Decoded | None:
        """A spot message frame as `LeanFrame`; any other frame decoded in full: its Tick
        (as `Decoded`), or None after passing it to `on_control` or counting it
        malformed (defaults: the ones given at construction)."""
        try:
            return self._lean(raw)
        except msgspec.DecodeError:
            pass
        try:
            tick = self._full(raw, received_ns)
        except MalformedFrame as exc:
            if on_malformed is None:
                self._bad(exc)
            else:
                self.malformed += 1
                on_malformed(exc)
            return None
        if tick is None:
            control = on_control or self.control
            if control is not None:
                control(raw)
            return None
        return Decoded(tick)

    def _parse_all(
        self,
        frames: Sequence[bytes | str | Decoded],
        arrivals: Sequence[int],
        on_malformed: Callable[[MalformedFrame], None] | None,
        on_control: Callable[[bytes | str], None] | None,
    ) -> tuple[list[LeanFrame | Decoded], list[int]]:
        """The burst parsed for the Python loop, with the arrivals of the frames kept."""
        lean = self._lean
        try:  # the common burst: every frame a spot ticker message
            return [lean(raw) for raw in frames], list(arrivals)  # type: ignore[arg-type]
        except (msgspec.DecodeError, TypeError):
            pass
        parsed: list[LeanFrame | Decoded] = []
        at: list[int] = []
        for raw, arrival in zip(frames, arrivals, strict=True):
            item = (
                raw if type(raw) is Decoded else self.parse(raw, arrival, on_malformed, on_control)  # type: ignore[arg-type]
            )
            if item is not None:
                parsed.append(item)
                at.append(arrival)
        return parsed, at

    def on_parsed(
        self,
        frames: Sequence[LeanFrame | Decoded],
        arrivals: Sequence[int],
        on_malformed: Callable[[MalformedFrame], None] | None = None,
    ) -> int:
        """Judge one burst (`arrivals[i]` is frame i's time.time_ns()): `sink` gets the
        ticks that may matter, one by one and in order; the others only note their price.
        Returns how many frames were ticks (quiet or not); a frame whose price the exact
        decoder refuses goes to `on_malformed` (default: the one given at construction)."""
        regions, held, burst = self._begin()
        if self._run is None:
            quiet, ticks, made, last = self._span(
                frames, arrivals, on_malformed, regions, held, burst
            )
        else:
            quiet, ticks, made, last = self._native(
                frames, arrivals, on_malformed, regions, held, burst
            )
        exchange_ms = 0
        if quiet and last > made:
            data = frames[last].data  # type: ignore[union-attr]  # quiet: a LeanFrame
            exchange_ms = data.time or data.Time
        return self._end(quiet, ticks, made, last, arrivals, exchange_ms)

    def _begin(self) -> tuple[Regions, Collection[str], TradeEntry]:
        """A burst's filter regions (the cache cleared when they are a new map), held
        symbols and live-price entry."""
        regions = self._regions()
        if regions is not self._cached_for:
            self._cache.clear()
            self._cached_for = regions
        return regions, self._held(), self._live.quiet_burst(self._now())

    def _end(
        self,
        quiet: int,
        ticks: int,
        made: int,
        last: int,
        arrivals: Sequence[int],
        exchange_ms: int,
    ) -> int:
        """Count the burst's quiet frames; when the last tick was quiet, it is the last."""
        if not quiet:
            return ticks
        if self._quiet is not None:
            self._quiet(quiet)
        if last > made:
            self.last_received_ns = arrivals[last]
            self.last_exchange_ns = exchange_ms * 1_000_000
        return quiet + ticks

    @property
    def native(self) -> bool:
        """Whether the quiet test runs in C; settable (False: the Python loop, as where
        the extension is not built; True where it is not built raises)."""
        return self._run is not None

    @native.setter
    def native(self, on: bool) -> None:
        if on and _quiet is None:
            raise RuntimeError("cogmora.engine._quiet is not built (no C compiler at install)")
        self._run = _quiet.run if on else None
        self._scan = _quiet.scan if on else None

    def _scanned(
        self,
        frames: Sequence[bytes | str | Decoded],
        arrivals: Sequence[int],
        on_malformed: Callable[[MalformedFrame], None] | None,
        on_control: Callable[[bytes | str], None] | None,
        regions: Regions,
        held: Collection[str],
        burst: TradeEntry,
    ) -> tuple[int, int, int, int, int]:
        """`_native` over raw frames: C reads and judges the frames it can, and each frame
        it stops at is parsed and judged by `_span` alone, in frame order. Also returns
        the last quiet frame's exchange time (ms)."""
        scan, cache, edges, out = self._scan, self._cache, self._edges, self._out
        assert scan is not None
        if type(frames) is not list:
            frames = list(frames)
        n = len(frames)
        quiet = ticks = exchange_ms = 0
        made = last = -1
        start = 0
        while True:
            stop = scan(frames, start, cache, held, edges, _NO_LEVELS, burst, out)
            if stop > start:
                quiet += stop - start
                last = stop - 1
                exchange_ms = out[0]
            if stop >= n:
                return quiet, ticks, made, last, exchange_ms
            self.deferred += 1
            raw = frames[stop]
            item = (
                raw
                if type(raw) is Decoded
                else self.parse(raw, arrivals[stop], on_malformed, on_control)
            )
            if item is not None:
                one, tick = self._deferred(
                    item, arrivals, stop, on_malformed, regions, held, burst
                )
                if one:
                    quiet += 1
                    last = stop
                    data = item.data  # type: ignore[union-attr]  # quiet: a LeanFrame
                    exchange_ms = data.time or data.Time
                elif tick:
                    ticks += 1
                    made = stop
            start = stop + 1

    def _deferred(
        self,
        item: LeanFrame | Decoded,
        arrivals: Sequence[int],
        at: int,
        on_malformed: Callable[[MalformedFrame], None] | None,
        regions: Regions,
        held: Collection[str],
        burst: TradeEntry,
    ) -> tuple[bool, bool]:
        """A frame C stopped at (frame `at` of the burst), judged by `_span` alone: whether
        it was quiet, and whether it became a Tick."""
        one, tick, _, _ = self._span(
            [item], arrivals[at : at + 1], on_malformed, regions, held, burst
        )
        return bool(one), bool(tick)

    def _native(
        self,
        frames: Sequence[LeanFrame | Decoded],
        arrivals: Sequence[int],
        on_malformed: Callable[[MalformedFrame], None] | None,
        regions: Regions,
        held: Collection[str],
        burst: TradeEntry,
    ) -> tuple[int, int, int, int]:
        """`_span`'s result, the quiet frames judged in C and every other frame by `_span`
        alone, in frame order (`run` returns at the first frame it does not call quiet)."""
        run, cache, edges = self._run, self._cache, self._edges
        assert run is not None
        if type(frames) is not list:
            frames = list(frames)
        n = len(frames)
        quiet = ticks = 0
        made = last = -1
        start = 0
        while True:
            stop = run(frames, start, cache, held, edges, _NO_LEVELS, burst)
            if stop > start:
                quiet += stop - start
                last = stop - 1
            if stop >= n:
                return quiet, ticks, made, last
            self.deferred += 1
            one, tick = self._deferred(
                frames[stop], arrivals, stop, on_malformed, regions, held, burst
            )
            if one:
                quiet += 1
                last = stop
            elif tick:
                ticks += 1
                made = stop
            start = stop + 1

    def _span(
        self,
        frames: Sequence[LeanFrame | Decoded],
        arrivals: Sequence[int],
        on_malformed: Callable[[MalformedFrame], None] | None,
        regions: Regions,
        held: Collection[str],
        burst: TradeEntry,
    ) -> tuple[int, int, int, int]:
        """The reference loop: judge `frames` in order; returns how many were quiet and how
        many became ticks, and the indices of the last tick made and the last quiet frame
        (-1: none)."""
        cache = self._cache
        to_float, nan = float, _NAN
        quiet = ticks = 0
        others: list[int] = []  # the indices of the frames that went the exact way
        made = -1  # the index of the last frame that became a tick
        for frame in frames:
            entry = cache.get(frame.topic)
            if entry is not None or (entry := self._entry(frame.topic, regions)) is not None:
                symbol, region, edges, live = entry
                text = frame.data.price  # type: ignore[union-attr]  # a Decoded has no entry
                try:
                    price = to_float(text)
                except ValueError:
                    price = nan  # unreadable: the exact decoder says why
                if (
                    region.flo < price < region.fhi
                    and len(text) <= region.limit + (price > region.pivot)
                    and "-" not in text  # a negative exponent would add places
                    and text >= "0"  # no leading point
                ):
                    if not edges.count:  # no level, or no longer the book's: look again
                        edges = self._edges_of(frame.topic, entry)
                    if edges.flo < price < edges.fhi and (not held or symbol not in held):
                        region.text = live.text = text
                        live.trade = burst
                        quiet += 1
                        continue
            index = quiet + len(others)
            others.append(index)
            if self._exact(frame, arrivals[index], on_malformed):
                made = index
                ticks += 1
        if not quiet:
            return 0, ticks, made, -1
        last = len(frames) - 1  # the last quiet frame
        while others and others[-1] == last:
            others.pop()
            last -= 1
        return quiet, ticks, made, last

    def _entry(self, topic: str, regions: Regions) -> Entry | None:
        """The topic's symbol, region and edges, cached while `regions` is the same map;
        None (not cached: the filter may see the symbol at its next tick) when every
        frame of the topic must go the exact way."""
        symbol = self._names.get(topic) or self._symbol(topic)
        if symbol is None:
            return None
        region = regions.get(symbol, None)
        if region is None:
            return None
        if len(self._cache) >= _MAX_TOPICS:
            self._cache.clear()
        edges = self._edges.get(symbol, _NO_LEVELS)
        entry = self._cache[topic] = (symbol, region, edges, self._live.slot(symbol))
        return entry

    def _edges_of(self, topic: str, entry: Entry) -> Edges:
        """The book's edges of the entry's symbol now, cached again when they changed."""
        edges = self._edges.get(entry[0], _NO_LEVELS)
        if edges is not entry[2]:
            self._cache[topic] = (entry[0], entry[1], edges, entry[3])
        return edges

    def _exact(
        self,
        frame: LeanFrame | Decoded,
        at_ns: int,
        on_malformed: Callable[[MalformedFrame], None] | None,
    ) -> bool:
        self.exact += 1
        if type(frame) is Decoded:
            tick = frame.tick
        else:
            try:
                tick = spot_tick(frame, at_ns)  # type: ignore[arg-type]
            except MalformedFrame as exc:
                if on_malformed is None:
                    self._bad(exc)
                else:
                    self.malformed += 1
                    on_malformed(exc)
                return False
        self.last_received_ns, self.last_exchange_ns = tick.received_ns, tick.exchange_ns
        self._sink([tick])
        return True

    def _bad(self, exc: MalformedFrame) -> None:
        self.malformed += 1
        if self.on_bad is not None:
            self.on_bad(exc)

    def _symbol(self, topic: str) -> str | None:
        """The symbol of a one-symbol spot ticker topic (None for any other topic)."""
        symbol = topic[len(_TOPIC) :] if topic.startswith(_TOPIC) else ""
        if not symbol or symbol == "all":
            return None
        if len(self._names) >= _MAX_TOPICS:
            self._names.clear()
        self._names[topic] = symbol
        return symbol
