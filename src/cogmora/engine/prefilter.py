"""Spot ticker frames in, `Tick`s out only where a price can matter: the hot path's floor.

A `Tick` costs more than the JSON parse of its frame: its `Decimal` price (~100 ns) and the
tuple (~50 ns) on top of a lean parse (~300 ns), and then the price filter's and the
engine's per-tick work. Almost every frame crosses nothing and is plausible, so the worker
parses each spot frame leanly (`LeanFrame`, the price as text), and `HotPath` converts the
text to a float and compares it with two float regions kept next to exact ones:

- the book's edges (`TriggerBook.edges`, trailing stops' peaks and activations folded
  in): strictly inside them a price crosses no level and moves no trailing peak;
- the price filter's fast region (`PriceFilter.regions`): strictly inside it a price is
  within the band of the last accepted one, and a text with few enough places (and no
  negative exponent) is on the symbol's tick, so the filter would accept it unchanged.

Both conversions (Decimal to float for the edges, text to float for the price) round
correctly, hence monotonically, so a float strictly inside implies the exact price
strictly inside. Such a frame is *quiet*: it is noted as the filter's last accepted price
(its text) and as the symbol's live price (at the end of the burst,
`LivePrices.update_texts`), and counted as an evaluated tick; nothing else observes it,
because it changes nothing else. A symbol whose live ticks the gap replay holds is never
quiet (its ticks must wait in order).

Anything else (on or past an edge as floats, a symbol the filter has not seen yet, a price
float() cannot read, a frame the lean struct does not fit, a held symbol) is decoded
exactly and handed to `sink` (the gap replay, then the filter, then `Engine.on_ticks`) at
once, in frame order, before the next frame is judged, so a level the sink puts in the
book (a predicted position) is seen by the very next frame. Before it goes, the burst's
quiet price of its symbol is made live, so the live price is what tick-by-tick evaluation
leaves whether the exact tick is accepted, dropped or held.

The result is what decoding every frame and passing each burst through the same chain
gives: the same crossings in the same order, drops per symbol and reason, live prices,
band references and trailing peaks (`tests/unit/engine/test_hot_path_equivalence.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market
from cogmora.domain.ticks import Tick
from cogmora.feeds.kucoin.decode import FrameDecoder, MalformedFrame, spot_tick
from cogmora.feeds.kucoin.schemas import LeanFrame
from cogmora.services.prices import LivePrices

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
    width: int
    text: str | None


class Regions(Protocol):
    def get(self, symbol: str, default: Region, /) -> Region: ...


class _Open:
    """Every positive finite price is plausible (a HotPath with no filter behind it)."""

    __slots__ = ("fhi", "flo", "text", "width")

    def __init__(self) -> None:
        self.flo, self.fhi, self.width = 0.0, _INF, 1 << 30
        self.text: str | None = None


class _Unfiltered:
    def __init__(self) -> None:
        self._open = _Open()

    def get(self, symbol: str, default: Region, /) -> Region:
        return self._open


_CLOSED = _Open()
_CLOSED.fhi = 0.0  # a symbol the filter has not seen: nothing is quiet


class HotPath:
    """Bursts of spot ticker frames for one sink. One per event loop; not thread-safe.

    `regions` is the price filter's (`PriceFilter.regions`, called once per burst; None:
    no filter, every positive finite price is plausible); `held` the symbols whose ticks
    wait for a gap replay (`GapReplay.held`, read once per burst: it changes only between
    bursts); `on_quiet(n)` counts the quiet frames as evaluated ticks. Malformed frames are
    counted and passed to `on_malformed`; frames that carry no price to `on_control`."""

    __slots__ = (
        "_edges",
        "_full",
        "_held",
        "_lean",
        "_live",
        "_names",
        "_now",
        "_quiet",
        "_regions",
        "_sink",
        "control",
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
        self._edges = book.edges()
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
        self.control = on_control
        self.on_bad = on_malformed
        self.malformed = 0
        self.exact = 0  # frames that went the exact way (the others were quiet)
        # The last tick of the last burst that had one (the feed's lag and silence).
        self.last_received_ns = 0
        self.last_exchange_ns = 0

    def on_frames(self, frames: Sequence[bytes | str], received_ns: int = 0) -> int:
        """Parse and judge one burst of raw frames, as the feed's connection does in two
        steps (`parse` as each frame arrives, `on_parsed` for the burst)."""
        parsed: list[LeanFrame | Tick] = []
        for raw in frames:
            item = self.parse(raw, received_ns)
            if item is not None:
                parsed.append(item)
        return self.on_parsed(parsed, [received_ns] * len(parsed))

    def parse(self, raw: bytes | str, received_ns: int) -> LeanFrame | Tick | None:
        """A spot message frame as `LeanFrame`; any other frame decoded in full: its Tick,
        or None after passing it to `on_control` or counting it malformed."""
        try:
            frame = self._lean(raw)
        except msgspec.DecodeError:
            pass
        else:
            if frame.type == "message" and frame.data is not None:
                return frame
        try:
            tick = self._full(raw, received_ns)
        except MalformedFrame as exc:
            self._bad(exc)
            return None
        if tick is None and self.control is not None:
            self.control(raw)
        return tick

    def on_parsed(
        self,
        frames: Sequence[LeanFrame | Tick],
        arrivals: Sequence[int],
        on_malformed: Callable[[MalformedFrame], None] | None = None,
    ) -> int:
        """Judge one burst (`arrivals[i]` is frame i's time.time_ns()): `sink` gets the
        ticks that may matter, one by one and in order; the others only note their price.
        Returns how many frames were ticks (quiet or not); a frame whose price the exact
        decoder refuses goes to `on_malformed` (default: the one given at construction)."""
        names, edges = self._names, self._edges
        regions, held = self._regions(), self._held()
        closed, lean = _CLOSED, LeanFrame
        latest: dict[str, str] = {}  # symbol -> its latest price text, while quiet
        quiet = made = 0
        last: LeanFrame | None = None
        last_ns = 0
        for frame, at_ns in zip(frames, arrivals, strict=True):
            if type(frame) is lean:
                symbol = names.get(frame.topic)
                if symbol is None:
                    symbol = self._symbol(frame.topic)
                if symbol is not None:
                    text = frame.data.price  # type: ignore[union-attr]  # parse() checked
                    try:
                        price = float(text)
                    except ValueError:
                        price = _NAN  # unreadable: the exact decoder says why
                    sym = edges.get(symbol)
                    region = regions.get(symbol, closed)
                    if (
                        (sym is None or sym.flo < price < sym.fhi)
                        and region.flo < price < region.fhi
                        and "-" not in text  # a negative exponent would add places
                        and ((dot := text.find(".")) < 0 or len(text) - dot <= region.width)
                        and (not held or symbol not in held)
                    ):
                        region.text = text
                        latest[symbol] = text
                        quiet += 1
                        last, last_ns = frame, at_ns
                        continue
            if self._exact(frame, at_ns, latest, on_malformed):
                made += 1
                last = None  # a tick after the last quiet frame
        if latest:
            self._live.update_texts(latest, self._now())
        if quiet and self._quiet is not None:
            self._quiet(quiet)
        if last is not None:
            data = last.data
            assert data is not None
            self.last_received_ns = last_ns
            self.last_exchange_ns = (data.time or data.Time) * 1_000_000
        return quiet + made

    def _exact(
        self,
        frame: LeanFrame | Tick,
        at_ns: int,
        latest: dict[str, str],
        on_malformed: Callable[[MalformedFrame], None] | None,
    ) -> bool:
        self.exact += 1
        if isinstance(frame, LeanFrame):
            try:
                tick = spot_tick(frame, at_ns)
            except MalformedFrame as exc:
                if on_malformed is None:
                    self._bad(exc)
                else:
                    self.malformed += 1
                    on_malformed(exc)
                return False
        else:
            tick = frame
        text = latest.pop(tick.symbol, None)
        if text is not None:  # this tick is newer; its symbol's quiet price is live first
            self._live.update_texts({tick.symbol: text}, self._now())
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
