"""Spot ticker frames in, `Tick`s out only where a price can matter: the hot path's floor.

A `Tick` costs more than the JSON parse of its frame: its `Decimal` price (~100 ns) and the
tuple (~50 ns) on top of a lean parse (~300 ns), and then the engine's per-tick work. Almost
every frame crosses nothing, so `HotPath.on_frames` parses each frame leanly (the price as
text), converts the text to a float and compares it with the symbol's float edges, kept
by the book next to the exact ones (`TriggerBook.edges`):

- strictly inside the edges: the price crosses nothing (both conversions round correctly,
  so the float order cannot invert the exact one); the frame is *quiet* and only
  remembered as its symbol's latest;
- anything else (on or past an edge as floats, a price float() cannot read, a frame the
  lean struct does not fit) is decoded exactly and handed to `sink` at once, in frame
  order, before the next frame is judged, so a level the sink puts in the book (a
  predicted position) is seen by the very next frame;
- a symbol without levels has no edges: every frame of it is quiet.

At the end of the burst each symbol's latest quiet price goes to the live prices as its
text (`LivePrices.update_texts`, made a Decimal when read), so the live price is the
burst's last for every symbol. A quiet price is also one `float()` reads as positive and
finite, so its text is a valid positive Decimal; any other goes the exact way (which
raises `MalformedFrame` for it). Quiet frames do not reach `sink`: wired in front of the
price plausibility filter, their live price would skip it (see BENCHMARKS.md, issue 11).

Only spot ticker frames take the lean path; any other frame (futures, `ticker:all`,
control frames) is decoded exactly, as the feed does today.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market
from cogmora.domain.ticks import Tick
from cogmora.feeds.kucoin.decode import FrameDecoder, MalformedFrame
from cogmora.feeds.kucoin.schemas import LeanFrame
from cogmora.services.prices import LivePrices

Sink = Callable[[list[Tick]], None]
_TOPIC = "/market/ticker:"
_NAN = float("nan")
_INF = float("inf")
_MAX_TOPICS = 100_000  # the topic -> symbol cache is cleared past this (a hostile feed)


class HotPath:
    """Bursts of spot ticker frames for one sink (the engine's `on_ticks`, or the filter in
    front of it). One per event loop; not thread-safe. Malformed frames are counted and
    passed to `on_malformed`; frames that carry no price (control frames) to `on_control`."""

    __slots__ = (
        "_decode",
        "_edges",
        "_lean",
        "_live",
        "_names",
        "_now",
        "_sink",
        "control",
        "exact",
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
    ) -> None:
        self._edges = book.edges()
        self._sink = sink
        self._live = live
        self._now = now
        self._decode = FrameDecoder(Market.SPOT).decode
        self._lean = msgspec.json.Decoder(LeanFrame).decode
        self._names: dict[str, str] = {}
        self.control = on_control
        self.on_bad = on_malformed
        self.malformed = 0
        self.exact = 0  # frames that went the exact way (the others were quiet)

    def on_frames(self, frames: Sequence[bytes | str], received_ns: int = 0) -> None:
        """Judge one burst of frames: `sink` gets the ticks that may cross, one by one and
        in order; the live prices get each symbol's latest quiet price."""
        lean, names, edges = self._lean, self._names, self._edges
        latest: dict[str, str] = {}  # symbol -> its latest price text, while quiet
        for raw in frames:
            try:
                frame = lean(raw)
            except msgspec.DecodeError:
                self._exact(raw, received_ns, latest)
                continue
            symbol = names.get(frame.topic)
            if symbol is None:
                symbol = self._symbol(frame.topic)
            data = frame.data
            if symbol is None or data is None or frame.type != "message":
                self._exact(raw, received_ns, latest)
                continue
            text = data.price
            try:
                price = float(text)
            except ValueError:
                price = _NAN  # unreadable: the exact decoder says why
            sym = edges.get(symbol)
            if sym is None:
                if not 0.0 < price < _INF:
                    self._exact(raw, received_ns, latest)
                    continue
            elif not sym.flo < price < sym.fhi:  # positive and finite too (see SymbolEdges)
                self._exact(raw, received_ns, latest)
                continue
            latest[symbol] = text
        if latest:
            self._live.update_texts(latest, self._now())

    def _exact(self, raw: bytes | str, received_ns: int, latest: dict[str, str]) -> None:
        self.exact += 1
        try:
            tick = self._decode(raw, received_ns)
        except MalformedFrame as exc:
            self._bad(exc)
            return
        if tick is None:
            if self.control is not None:
                self.control(raw)
            return
        latest.pop(tick.symbol, None)  # this price is newer than any quiet one before it
        self._sink([tick])

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
