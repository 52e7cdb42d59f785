"""The C reader of raw ticker frames (`_quiet.read_frame`, what `HotPath.on_raw` reads in
C without parsing) against msgspec's `LeanFrame` decoder: wherever it reads a frame it
reads what the decoder reads, it reads the shapes KuCoin and the simulator send, and a
burst of raw frames ends where the Python loop over parsed frames ends."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market, Side
from cogmora.domain.ticks import Tick
from cogmora.engine.prefilter import NATIVE, HotPath, _quiet
from cogmora.feeds.kucoin.decode import Decoded, FrameDecoder, MalformedFrame
from cogmora.feeds.kucoin.schemas import LeanFrame
from cogmora.services.prices import LivePrices
from cogmora.simulator.frames import spot_ticker
from cogmora.simulator.market import Instrument

NOW = datetime(2024, 5, 1, tzinfo=UTC)
lean = msgspec.json.Decoder(LeanFrame).decode

pytestmark = pytest.mark.skipif(not NATIVE, reason="cogmora.engine._quiet is not built")

# Mostly printable ASCII (what C reads), now and then anything (escaped or not).
ASCII = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=6)
TEXTS = st.one_of(ASCII, ASCII, ASCII, ASCII, st.text(max_size=6))
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.integers(-(10**25), 10**25)
    | st.decimals(-(10**6), 10**6, places=3).map(float)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXTS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=6,
)
PRICES = st.one_of(
    st.sampled_from(["100", "0.125", "99.5", "1e2", "", "-1", "x", "1\u00e9", "1\\u0030"]),
    st.decimals(min_value=0, max_value=10**6, places=8, allow_nan=False).map(str),
    JSON_VALUES,
)
TIMES = st.one_of(
    st.integers(0, 10**18),
    st.sampled_from([-5, 10**19, 1.5, 1.0, "17", None, True, 0]),
)
TOPICS = st.one_of(
    st.sampled_from(["/market/ticker:AAA-USDT", "/market/ticker:all", "/market/ticker:BBB-USDT"]),
    st.text(max_size=8),
    JSON_VALUES,
)
WHITESPACE = st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n "])


def members(
    draw: st.DrawFn, known: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]]
) -> list[tuple[str, Any]]:
    """Each known key with its usual value (now and then a wild one, missing, or twice),
    a few other keys, in any order."""
    out: list[tuple[str, Any]] = []
    for key, (usual, wild) in known.items():
        for _ in range(draw(st.sampled_from([1] * 18 + [0, 2]))):
            out.append((key, draw(wild if draw(st.integers(0, 9)) == 0 else usual)))
    out += draw(st.lists(st.tuples(TEXTS, JSON_VALUES), max_size=2))
    return list(draw(st.permutations(out)))


def dump(members: list[tuple[str, Any]], gap: str, ascii_only: bool) -> str:
    parts = [
        f"{gap}{json.dumps(k, ensure_ascii=ascii_only)}{gap}:{gap}"
        + (v if isinstance(v, Raw) else json.dumps(v, ensure_ascii=ascii_only))
        for k, v in members
    ]
    return "{" + ",".join(parts) + gap + "}"


class Raw(str):
    """A member value already written as JSON (the data object)."""


USUAL_PRICES = st.decimals(min_value=0, max_value=10**6, places=8, allow_nan=False).map(str)
USUAL_TOPICS = st.sampled_from(["/market/ticker:AAA-USDT", "/market/ticker:all", "t"])


@st.composite
def frames(draw: st.DrawFn) -> bytes | str:
    gap = draw(WHITESPACE)
    ascii_only = draw(st.booleans())
    data = dump(
        members(
            draw,
            {
                "price": (USUAL_PRICES, PRICES),
                "time": (st.integers(0, 10**18), TIMES),
                "Time": (st.integers(0, 10**18), TIMES),
                "size": (USUAL_PRICES, JSON_VALUES),
            },
        ),
        gap,
        ascii_only,
    )
    text = dump(
        members(
            draw,
            {
                "type": (st.just("message"), st.sampled_from(["ack", "Message", 1])),
                "topic": (USUAL_TOPICS, TOPICS),
                "subject": (st.just("trade.ticker"), JSON_VALUES),
                "data": (st.just(Raw(data)), JSON_VALUES),
            },
        ),
        gap,
        ascii_only,
    )
    if draw(st.integers(0, 5)) == 0:
        text = damaged(draw, text)
    if draw(st.booleans()):
        return text.encode()
    return text


def damaged(draw: st.DrawFn, text: str) -> str:
    """The text with a byte changed, added or dropped, or cut short."""
    i = draw(st.integers(0, len(text)))
    c = draw(st.sampled_from(['"', "\\", "{", "}", ",", ":", " ", "0", "e", "-", "\x00", "\u00e9"]))
    how = draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
    return {
        "replace": text[:i] + c + text[i + 1 :],
        "insert": text[:i] + c + text[i:],
        "delete": text[:i] + text[i + 1 :],
        "cut": text[:i],
    }[how]


def decoded(raw: bytes | str) -> tuple[str, str, int, int] | None:
    try:
        f = lean(raw)
    except msgspec.DecodeError:
        return None
    return f.topic, f.data.price, f.data.time, f.data.Time


@given(frames())
@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
def test_the_c_reader_reads_a_frame_only_as_the_decoder_reads_it(raw: bytes | str) -> None:
    """Where `read_frame` reads a frame, msgspec decodes it to the same topic, price text
    and times; where it is not sure it reads nothing and Python decodes the frame."""
    read = _quiet.read_frame(raw)
    if read is not None:
        assert decoded(raw) == read


CANONICAL_KEYS = ("sequence", "price", "size", "bestAsk", "bestAskSize", "bestBid", "bestBidSize")


@st.composite
def canonical_frames(draw: st.DrawFn) -> bytes | str:
    """The documented ticker frame, byte for byte outside its values (the shape C reads
    as one run of literals), with wild values now and then and a byte changed, added,
    dropped or the frame cut now and then."""
    ascii_only = draw(st.booleans())

    def value(usual: st.SearchStrategy[Any], wild: st.SearchStrategy[Any]) -> str:
        """One member's value: the usual kind, one time in twenty a wild one."""
        chosen = wild if draw(st.integers(0, 19)) == 0 else usual
        return json.dumps(draw(chosen), ensure_ascii=ascii_only)

    data = ",".join(f'"{k}":{value(USUAL_PRICES, PRICES)}' for k in CANONICAL_KEYS)
    time = value(st.integers(0, 10**18), TIMES)
    topic = value(USUAL_TOPICS, TOPICS)
    subject = value(st.just("trade.ticker"), JSON_VALUES)
    text = (
        f'{{"type":"message","topic":{topic},"subject":{subject},"data":{{{data},"time":{time}}}}}'
    )
    if draw(st.integers(0, 2)) == 0:
        text = damaged(draw, text)
    return text.encode() if draw(st.booleans()) else text


@given(canonical_frames())
@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
def test_the_documented_shape_is_read_only_as_the_decoder_reads_it(raw: bytes | str) -> None:
    """The reader's fast run over the documented shape (literals, then values) reads a
    frame only where msgspec decodes it to the same topic, price text and times."""
    read = _quiet.read_frame(raw)
    if read is not None:
        assert decoded(raw) == read


def instrument(symbol: str, price: str) -> Instrument:
    return Instrument(
        symbol,
        Market.SPOT,
        Decimal(price),
        Decimal("0.01"),
        random.Random(1),
        time_ms=1714564800123,
    )


KUCOIN_EXAMPLE = (
    '{"type":"message","topic":"/market/ticker:BTC-USDT","subject":"trade.ticker",'
    '"data":{"sequence":"1545896668986","price":"0.08","size":"0.011","bestAsk":"0.08",'
    '"bestAskSize":"0.18","bestBid":"0.049","bestBidSize":"0.036","Time":1704873323416}}'
)


@pytest.mark.parametrize(
    "raw",
    [
        KUCOIN_EXAMPLE,
        KUCOIN_EXAMPLE.encode(),
        KUCOIN_EXAMPLE.replace('"Time"', '"time"'),  # the schema's spelling
        KUCOIN_EXAMPLE.replace('"0.011"', "0.011"),  # a number in a value nobody reads
        spot_ticker(instrument("AAA-USDT", "101.25")),
        '{ "type" : "message", "topic":"t", "data" : '
        '{ "price" : "1", "x" : [1, {"a": null}, true, -0.5] } }',
    ],
    ids=[
        "kucoin-docs",
        "kucoin-docs-bytes",
        "kucoin-schema-time",
        "a-number-unread",
        "simulator",
        "spaced-with-extras",
    ],
)
def test_the_exchange_and_simulator_shapes_are_read_in_c(raw: bytes | str) -> None:
    """The frames the feed really carries take the C path (else `on_raw` would parse
    them all and the C reader would buy nothing)."""
    read = _quiet.read_frame(raw)
    assert read is not None
    assert read == decoded(raw)


@pytest.mark.parametrize(
    "raw",
    [
        ' {"type":"message","topic":"t","data":{"price":"1"}}',  # whitespace outside
        '{"type":"message","topic":"t","data":{"price":"1"}}\n',
        '{"type":"message","topic":"t","data":{"price":"1","price":"2"}}',  # the decoder keeps "2"
        '{"type":"message","topic":"t","topic":"u","data":{"price":"1"}}',
        '{"type":"message","topic":"t","data":{"price":"1\\u0030"}}',  # an escape
        '{"type":"message","topic":"t","data":{"price":"1","x":1e999}}',  # an exponent
        '{"type":"message","topic":"t","data":{"price":"1","x":' + "[" * 9 + "]" * 9 + "}}",
        '{"type":"message","topic":"t","data":{"price":"1","time":-5}}',
        '{"type":"message","topic":"t","data":{"price":"1","time":1.0}}',
        '{"type":"message","topic":"t","data":{"price":"1","time":0123}}',
        '{"type":"message","topic":"t","data":{"price":1}}',  # a number: the full decoder's
        '{"type":"message","topic":"t","data":{}}',  # no price
        '{"type":"message","data":{"price":"1"}}',  # no topic
        '{"type":"ack","topic":"t","data":{"price":"1"}}',
        '{"type":"message","topic":"t\u00e9","data":{"price":"1"}}',
        # the documented shape with one thing off
        KUCOIN_EXAMPLE.replace('"0.011"', '"0.0\\u0031"'),  # an escape in a value skipped
        KUCOIN_EXAMPLE.replace('"0.011"', '"0.011\x01"'),  # a control byte in one
        KUCOIN_EXAMPLE.replace("1704873323416", "01704873323416"),
        KUCOIN_EXAMPLE.replace('"Time":1704873323416', '"time":1704873323416') + " ",
        KUCOIN_EXAMPLE.replace('"Time":1704873323416', '"time":1e3'),
        KUCOIN_EXAMPLE.replace('"price":"0.08"', '"price":"0.08","price":"9"'),
        KUCOIN_EXAMPLE[:-1],
    ],
)
def test_what_the_c_reader_is_not_sure_of_is_left_to_the_decoder(raw: str) -> None:
    """Each of these is either refused by the decoder or read by it in a way the C reader
    does not attempt, so C reads none of them."""
    assert _quiet.read_frame(raw) is None
    assert _quiet.read_frame(raw.encode()) is None


def burst_frames() -> st.SearchStrategy[list[bytes | str]]:
    canonical = st.builds(
        lambda symbol, price: spot_ticker(instrument(symbol, price)),
        st.sampled_from(["AAA-USDT", "BBB-USDT"]),
        st.sampled_from(["100", "100.5", "99", "101", "95", "110", "100.25"]),
    )
    control = st.just('{"id":"1","type":"pong"}')
    return st.lists(st.one_of(canonical, canonical, canonical, frames(), control), max_size=24)


def run_burst(raws: list[bytes | str], native: bool) -> tuple[Any, ...]:
    book = TriggerBook()
    book.set_position("p1", "AAA-USDT", Side.LONG, Decimal("99"), Decimal("101"), None)
    book.set_position("p2", "BBB-USDT", Side.SHORT, Decimal("110"), Decimal("95"), None)
    ticks: list[Tick] = []
    live = LivePrices()

    def sink(burst: list[Tick]) -> None:
        for tick in burst:
            ticks.append(tick)
            live.update(tick, NOW)
            book.cross(tick.symbol, tick.price, tick.kind)  # takes what it crosses

    controls: list[bytes | str] = []
    bad: list[str] = []
    hot = HotPath(book, sink, live, lambda: NOW)
    hot.native = native
    arrivals = list(range(1, len(raws) + 1))
    counted = hot.on_raw(raws, arrivals, lambda exc: bad.append(str(exc)), controls.append)
    prices = {s: q.price for s, q in live.snapshot().items()}
    return (
        counted,
        [(t.symbol, t.price, t.exchange_ns, t.received_ns) for t in ticks],
        prices,
        controls,
        sorted(bad),  # the Python loop reports unparsable frames before judging the burst
        hot.malformed,
        hot.last_received_ns,
        hot.last_exchange_ns,
    )


@given(burst_frames())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_a_raw_burst_read_in_c_ends_where_the_python_loop_ends(raws: list[bytes | str]) -> None:
    """The same ticks in the same order, live prices, controls, malformed frames and last
    tick times, whether C reads the raw frames or Python parses every one of them."""
    assert run_burst(raws, native=True) == run_burst(raws, native=False)


def test_a_frame_the_reader_refuses_is_still_judged_in_its_place() -> None:
    """A spaced frame between two canonical ones is parsed by Python and judged between
    them: its price is the live price the second one replaces."""
    spaced = (
        '{"type": "message", "topic": "/market/ticker:AAA-USDT", '
        '"data": {"price": "100.5", "time": 7}}'
    )
    raws: list[bytes | str] = [
        spot_ticker(instrument("AAA-USDT", "100")),
        spaced,
        spot_ticker(instrument("AAA-USDT", "100.25")),
    ]
    assert run_burst(raws, native=True) == run_burst(raws, native=False)
    hot = HotPath(TriggerBook(), lambda ticks: None, LivePrices(), lambda: NOW)
    hot.on_raw(raws, [1, 2, 3])
    assert hot.deferred >= 1


def test_a_decoded_frame_in_a_raw_burst_is_passed_on_as_it_is() -> None:
    """The reader hands over the Tick of a frame it decoded itself (no `"message"` in it)
    among the raw frames; it reaches the sink in its place."""
    full = FrameDecoder(Market.SPOT).full
    tick = full(spot_ticker(instrument("AAA-USDT", "98")), 5)
    assert tick is not None
    seen: list[Tick] = []
    book = TriggerBook()
    book.set_position("p1", "AAA-USDT", Side.LONG, Decimal("99"), None, None)
    hot = HotPath(book, seen.extend, LivePrices(), lambda: NOW)
    hot.on_raw([spot_ticker(instrument("AAA-USDT", "100")), Decoded(tick)], [1, 5])
    assert [t.price for t in seen] == [Decimal("98")]


def test_malformed_raw_frames_are_counted_and_skipped() -> None:
    """A raw frame that no decoder reads is counted and passed to `on_malformed`; the
    frames around it are judged as usual."""
    bad: list[MalformedFrame] = []
    live = LivePrices()
    hot = HotPath(TriggerBook(), lambda ticks: None, live, lambda: NOW)
    raws: list[bytes | str] = [
        spot_ticker(instrument("AAA-USDT", "100")),
        '{"type":"message","topic":"/market/ticker:AAA-USDT","data":{"price":"1"',
        spot_ticker(instrument("AAA-USDT", "100.25")),
    ]
    hot.on_raw(raws, [1, 2, 3], bad.append)
    assert len(bad) == 1 and hot.malformed == 1
    quote = live.get("AAA-USDT")
    assert quote is not None and quote.price == Decimal("100.25")
