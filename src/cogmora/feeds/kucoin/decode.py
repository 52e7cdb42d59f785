"""The hot path: one KuCoin websocket frame in, one domain Tick (or None) out.

This is the one place where wire messages become `Tick`s. It decodes only the fields a
tick needs (msgspec skips the rest without building them), reuses one typed decoder,
reads the symbol from the single-symbol `topic` KuCoin puts on every data message, and
lets msgspec turn the price text straight into a `Decimal`.

Which price a frame carries:
- spot `/market/ticker:{sym}` (subject trade.ticker): `data.price`, the last trade, `time` ms;
  `/market/ticker:all` names the symbol in `subject` instead of the topic;
- futures `/contractMarket/execution:{sym}` (match) and `/contractMarket/ticker:{sym}`
  (ticker): `data.price`, `ts` ns;
- futures `/contract/instrument:{sym}` subject mark.index.price: `data.markPrice` (a JSON
  number), `timestamp` ms, as a MARK tick; its funding.rate frames carry no price.
Every other well-formed frame (welcome, pong, ack, error, tickerV2...) gives None: the
session handles control frames itself.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

import msgspec

from cogmora.domain.enums import Market
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.feeds.kucoin.schemas import HotData, HotFrame, LeanFrame

_ZERO = Decimal(0)
_TRADE = PriceKind.TRADE
_MARK = PriceKind.MARK
_SPOT = Market.SPOT
_FUTURES = Market.FUTURES


class MalformedFrame(ValueError):
    """The frame is not a KuCoin message we can read (bad JSON, wrong types, bad price)."""


class Decoded:
    """The Tick of a spot frame the lean struct did not fit, in a burst of `LeanFrame`s.
    Its `topic` is empty, so a topic lookup finds nothing and the frame goes the exact
    way with no type check on the common frames."""

    __slots__ = ("tick",)
    topic = ""

    def __init__(self, tick: Tick) -> None:
        self.tick = tick


make_tick = Tick
# Tick's generated __new__ is a Python function (~250 ns a call); tuple's is C (~50 ns).
_tuple_new = tuple.__new__


def _check(price: Decimal | None, symbol: str, frame: HotFrame | LeanFrame) -> Decimal:
    if price is None or not symbol:
        raise MalformedFrame(f"no price or symbol in a {frame.subject!r} frame on {frame.topic!r}")
    try:
        sane = price > _ZERO and price.is_finite()
    except InvalidOperation:  # NaN
        sane = False
    if not sane:
        raise MalformedFrame(f"price {price} on {frame.topic!r} is not a positive number")
    return price


def spot_tick(frame: LeanFrame, received_ns: int) -> Tick:
    """The Tick of a spot ticker message already parsed into `LeanFrame`: what the decoder
    returns for its frame, or the MalformedFrame it raises."""
    data = frame.data
    topic = frame.topic
    symbol = topic[topic.find(":") + 1 :]
    if symbol == "all":  # /market/ticker:all names the symbol in the subject
        symbol = frame.subject
    try:
        price = Decimal(data.price)
    except InvalidOperation:
        raise MalformedFrame(f"price {data.price!r} on {topic!r} is not a number") from None
    if not symbol or not price.is_finite() or not price > _ZERO:
        price = _check(price, symbol, frame)
    exchange_ns = (data.time or data.Time) * 1_000_000
    return _tuple_new(Tick, (symbol, _SPOT, price, _TRADE, exchange_ns, received_ns))


def _spot(decode: Callable[[bytes | str], HotFrame]) -> Callable[[bytes | str, int], Tick | None]:
    lean = msgspec.json.Decoder(LeanFrame).decode
    full = _spot_full(decode)
    tick_of = spot_tick

    def decode_spot(raw: bytes | str, received_ns: int) -> Tick | None:
        # The common frame through the lean struct (the price as text, one Decimal built
        # from it, as msgspec would); anything that does not fit it, the full decoder.
        try:
            frame = lean(raw)
        except msgspec.DecodeError:
            return full(raw, received_ns)
        return tick_of(frame, received_ns)

    return decode_spot


def _spot_full(
    decode: Callable[[bytes | str], HotFrame],
) -> Callable[[bytes | str, int], Tick | None]:
    tick = make_tick
    spot = _SPOT
    trade = _TRADE

    def decode_spot_full(raw: bytes | str, received_ns: int) -> Tick | None:
        try:
            frame = decode(raw)
        except msgspec.DecodeError as exc:
            raise MalformedFrame(str(exc)) from None
        if frame.type != "message":
            return None
        data = frame.data
        if not isinstance(data, HotData):
            raise MalformedFrame("a message frame without a data object")
        topic = frame.topic
        symbol = topic[topic.find(":") + 1 :]
        if symbol == "all":
            symbol = frame.subject
        price = _check(data.price, symbol, frame)
        return tick(symbol, spot, price, trade, (data.time or data.Time) * 1_000_000, received_ns)

    return decode_spot_full


def _futures(
    decode: Callable[[bytes | str], HotFrame],
) -> Callable[[bytes | str, int], Tick | None]:
    tick = make_tick
    futures = _FUTURES
    trade = _TRADE
    mark = _MARK

    def decode_futures(raw: bytes | str, received_ns: int) -> Tick | None:
        try:
            frame = decode(raw)
        except msgspec.DecodeError as exc:
            raise MalformedFrame(str(exc)) from None
        if frame.type != "message":
            return None
        data = frame.data
        if not isinstance(data, HotData):
            raise MalformedFrame("a message frame without a data object")
        subject = frame.subject
        if subject == "match" or subject == "ticker":  # cheapest test first
            price = data.price
            kind = trade
            exchange_ns = data.ts
        elif subject == "mark.index.price":
            price = data.markPrice
            kind = mark
            exchange_ns = data.timestamp * 1_000_000
        else:
            return None
        topic = frame.topic
        symbol = topic[topic.find(":") + 1 :]
        return tick(symbol, futures, _check(price, symbol, frame), kind, exchange_ns, received_ns)

    return decode_futures


class FrameDecoder:
    """Decode the frames of one market's connections. One per event loop (not thread-safe).

    `decode(raw, received_ns)` returns the frame's Tick, None for a frame that carries no
    price (control frames, funding rates, BBO-only tickers), and raises MalformedFrame for
    anything unreadable, including a price that is not a positive finite number.

    `full` is the same without the lean struct's shortcut, for a frame that did not fit it.
    """

    __slots__ = ("decode", "full", "market")

    decode: Callable[[bytes | str, int], Tick | None]
    full: Callable[[bytes | str, int], Tick | None]

    def __init__(self, market: Market) -> None:
        self.market = market
        raw_decode = msgspec.json.Decoder(HotFrame).decode
        if market is Market.SPOT:
            self.decode, self.full = _spot(raw_decode), _spot_full(raw_decode)
        else:
            self.decode = self.full = _futures(raw_decode)
