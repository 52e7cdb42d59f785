"""FrameDecoder on real KuCoin frames (copied from the protocol notes) and on garbage."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cogmora.domain.enums import Market
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.feeds.kucoin.decode import FrameDecoder, MalformedFrame, make_tick

SPOT_TICKER = (
    '{"type":"message","topic":"/market/ticker:BTC-USDT","subject":"trade.ticker",'
    '"data":{"sequence":"1545896668986","price":"0.08","size":"0.011","bestAsk":"0.08",'
    '"bestAskSize":"0.18","bestBid":"0.049","bestBidSize":"0.036","time":1704873323416}}'
)
SPOT_TICKER_ALL = (
    '{"topic":"/market/ticker:all","type":"message","subject":"BTC-USDT",'
    '"data":{"bestAsk":"67218.7","bestAskSize":"1.92318539","bestBid":"67218.6",'
    '"bestBidSize":"0.01045638","price":"67220","sequence":"14691455768",'
    '"size":"0.00004316","time":1729757723612}}'
)
SPOT_TICKER_CAPITAL_TIME = (
    '{"type":"message","topic":"/market/ticker:ETH-USDT","subject":"trade.ticker",'
    '"data":{"sequence":"1","price":"3500.5","size":"1","Time":1704873323416}}'
)
FUT_EXECUTION = (
    '{"topic":"/contractMarket/execution:XBTUSDTM","type":"message","subject":"match",'
    '"sn":1794100537695,"data":{"symbol":"XBTUSDTM","sequence":1794100537695,"side":"buy",'
    '"size":2,"price":"90503.9","takerOrderId":"247822202957807616",'
    '"makerOrderId":"247822167163555840","tradeId":"1794100537695","ts":1731898619520000000}}'
)
FUT_TICKER_V1 = (
    '{"topic":"/contractMarket/ticker:XBTUSDTM","type":"message","subject":"ticker",'
    '"sn":1793133570931,"data":{"symbol":"XBTUSDTM","sequence":1793133570931,"side":"sell",'
    '"size":1,"price":"90147.7","bestBidSize":2186,"bestBidPrice":"90147.7",'
    '"bestAskPrice":"90147.8","bestAskSize":275,"tradeId":"1793133570931",'
    '"ts":1731679215637000000}}'
)
FUT_MARK = (
    '{"topic":"/contract/instrument:XBTUSDTM","type":"message","subject":"mark.index.price",'
    '"data":{"markPrice":90445.02,"indexPrice":90445.02,"granularity":1000,'
    '"timestamp":1731899129000}}'
)
FUT_FUNDING = (
    '{"topic":"/contract/instrument:XBTUSDTM","type":"message","subject":"funding.rate",'
    '"data":{"granularity":60000,"fundingRate":-0.002966,"timestamp":1551770400000}}'
)
FUT_TICKER_V2 = (
    '{"topic":"/contractMarket/tickerV2:XBTUSDTM","type":"message","subject":"tickerV2",'
    '"sn":1709284589209,"data":{"symbol":"XBTUSDTM","sequence":1709284589209,'
    '"bestBidSize":713,"bestBidPrice":"88987.4","bestAskPrice":"88987.5","bestAskSize":1037,'
    '"ts":1731665526461000000}}'
)
CONTROL_FRAMES = [
    '{"id": "hQvf8jkno", "type": "welcome"}',
    '{"id": "1545910590801", "type": "pong"}',
    '{"id": "1545910660739", "type": "ack"}',
    '{"id": "1550868034537", "type": "error", "code": 404, '
    '"data": "topic /market/ticker:BTC-USDT is not found"}',
    '{"type": "error", "code": 401, "data": "token is expired"}',
    '{"type": "notice", "data": {"x": 1}}',
]


def spot() -> FrameDecoder:
    return FrameDecoder(Market.SPOT)


def futures() -> FrameDecoder:
    return FrameDecoder(Market.FUTURES)


def test_spot_ticker_becomes_a_trade_tick_with_ms_time_in_ns() -> None:
    """A spot ticker frame gives the last trade price of the topic's symbol."""
    tick = spot().decode(SPOT_TICKER, 42)
    assert tick == Tick("BTC-USDT", Market.SPOT, Decimal("0.08"), PriceKind.TRADE,
                        1704873323416 * 1_000_000, 42)


def test_bytes_and_str_frames_decode_alike() -> None:
    """The decoder takes the raw bytes of a frame as well as its text."""
    assert spot().decode(SPOT_TICKER.encode(), 1) == spot().decode(SPOT_TICKER, 1)


def test_ticker_all_takes_the_symbol_from_the_subject() -> None:
    """/market/ticker:all names the symbol in `subject`, not in the topic."""
    tick = spot().decode(SPOT_TICKER_ALL, 0)
    assert tick is not None
    assert (tick.symbol, tick.price) == ("BTC-USDT", Decimal("67220"))


def test_capitalised_time_key_is_read_too() -> None:
    """The docs-new example spells the timestamp `Time`; it is read as well."""
    tick = spot().decode(SPOT_TICKER_CAPITAL_TIME, 0)
    assert tick is not None and tick.exchange_ns == 1704873323416 * 1_000_000


def test_futures_execution_is_a_trade_tick_with_ns_time() -> None:
    """A futures match frame gives the trade price and its nanosecond timestamp."""
    tick = futures().decode(FUT_EXECUTION, 7)
    assert tick == Tick("XBTUSDTM", Market.FUTURES, Decimal("90503.9"), PriceKind.TRADE,
                        1731898619520000000, 7)


def test_futures_ticker_v1_is_a_trade_tick() -> None:
    """The V1 futures ticker carries the last trade price."""
    tick = futures().decode(FUT_TICKER_V1, 0)
    assert tick is not None and tick.price == Decimal("90147.7")


def test_mark_price_is_exact_and_marked_as_mark() -> None:
    """A JSON-number mark price becomes the exact Decimal of its digits, kind MARK."""
    tick = futures().decode(FUT_MARK, 0)
    assert tick == Tick("XBTUSDTM", Market.FUTURES, Decimal("90445.02"), PriceKind.MARK,
                        1731899129000 * 1_000_000, 0)


@pytest.mark.parametrize("frame", [FUT_FUNDING, FUT_TICKER_V2])
def test_futures_frames_without_a_trade_or_mark_price_give_none(frame: str) -> None:
    """Funding-rate and BBO-only frames carry no price for the engine."""
    assert futures().decode(frame, 0) is None


@pytest.mark.parametrize("frame", CONTROL_FRAMES)
def test_control_frames_give_none(frame: str) -> None:
    """welcome, pong, ack, error and notice frames are left to the session."""
    assert spot().decode(frame, 0) is None
    assert futures().decode(frame, 0) is None


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "not json",
        '{"type":"message","topic":',
        "[1,2,3]",
        '{"type":"message","topic":"/market/ticker:BTC-USDT","data":"oops"}',
        '{"type":"message","topic":"/market/ticker:BTC-USDT"}',
        '{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":"abc"}}',
        '{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":"0","time":1}}',
        '{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":"-5","time":1}}',
        '{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":"NaN","time":1}}',
        '{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":"Infinity"}}',
        '{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"time":1}}',
        '{"type":"message","topic":"/market/ticker:","data":{"price":"1","time":1}}',
        '{"type":"message","topic":"/market/ticker:X","data":{"price":1.5,"time":"x"}}',
    ],
)
def test_garbage_raises_malformed_frame(frame: str) -> None:
    """Anything that is not a readable KuCoin frame with a positive price is MalformedFrame."""
    with pytest.raises(MalformedFrame):
        spot().decode(frame, 0)


def test_futures_garbage_raises_malformed_frame() -> None:
    """A futures trade frame without a price is MalformedFrame, not a crash."""
    frame = '{"type":"message","topic":"/contractMarket/execution:X","subject":"match","data":{}}'
    with pytest.raises(MalformedFrame):
        futures().decode(frame, 0)


def test_fast_tick_constructor_builds_equal_ticks() -> None:
    """The decoder's Tick factory builds exactly what Tick's own constructor builds."""
    args = ("ETH-USDT", Market.SPOT, Decimal("1.5"), PriceKind.MARK, 5, 6)
    fast = make_tick(*args)
    assert fast == Tick(*args)
    assert type(fast) is Tick
    with pytest.raises(AttributeError):
        fast.price = Decimal(2)  # type: ignore[misc]
