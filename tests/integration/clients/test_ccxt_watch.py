"""ccxt.pro's kucoin and kucoinfutures streams work unmodified against the simulator.

Each watch runs as a task; once the simulator sees its subscription, the test scripts the
trades that the stream must report. The default topics are used throughout: spot
watch_ticker on /market/snapshot, watch_order_book on the incremental level-2 feed
stitched onto a REST snapshot by sequence numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from decimal import Decimal
from typing import Any, TypeVar

import ccxt.pro as ccxtpro
import pytest
from ccxt_sandbox import ccxt_urls

from cogmora.domain.enums import Market
from cogmora.simulator import KucoinSimulator, book_frames
from conditions import until

T = TypeVar("T")


@pytest.fixture(params=["spot", "futures"])
async def case(request: pytest.FixtureRequest, sim: KucoinSimulator) -> AsyncIterator[
    tuple[Any, str, str]
]:
    """(exchange, unified symbol, exchange symbol) for a spot pair and a contract."""
    if request.param == "spot":
        exchange = ccxtpro.kucoin({"urls": ccxt_urls(sim)})
        yield exchange, "BTC/USDT", "BTC-USDT"
    else:
        exchange = ccxtpro.kucoinfutures({"urls": ccxt_urls(sim)})
        yield exchange, "BTC/USDT:USDT", "XBTUSDTM"
    await exchange.close()


async def watched(
    sim: KucoinSimulator, symbol: str, prefix: str, watch: Awaitable[T], *prices: str
) -> T:
    """Start `watch`, wait for its subscription to `prefix:symbol`, trade at `prices`,
    and return what the watch resolved with."""
    task = asyncio.ensure_future(watch)
    hub = sim.host(symbol).hub
    topic = f"{prefix}:{symbol}"
    await until(lambda: task.done() or any(t.startswith(topic) for t in hub.topics()),
                what=f"a subscription to {topic}")
    if prices:
        await sim.publish_burst(symbol, list(prices))
    async with asyncio.timeout(60):
        return await task


async def test_watch_ticker_and_tickers(
    sim: KucoinSimulator, case: tuple[Any, str, str]
) -> None:
    """watch_ticker (spot: /market/snapshot, futures: /contractMarket/ticker) and
    watch_tickers report the scripted last price."""
    exchange, symbol, sym = case
    await exchange.load_markets()
    spot = sim.host(sym).market is Market.SPOT
    await sim.set_price(sym, "67123.4")
    prefix = "/market/snapshot" if spot else "/contractMarket/ticker"
    ticker = await watched(sim, sym, prefix, exchange.watch_ticker(symbol), "67123.4")
    assert Decimal(str(ticker["last"])) == Decimal("67123.4")
    assert ticker["bid"] < ticker["ask"]
    prefix = "/market/ticker" if spot else "/contractMarket/ticker"
    # The timed /market/snapshot push may reach watch_tickers first: it says the same.
    await sim.set_price(sym, "67130.0")
    tickers = await watched(sim, sym, prefix, exchange.watch_tickers([symbol]), "67130.0")
    assert Decimal(str(tickers[symbol]["last"])) == Decimal("67130.0")


async def test_watch_trades_reports_each_scripted_trade(
    sim: KucoinSimulator, case: tuple[Any, str, str]
) -> None:
    """watch_trades (spot /market/match, futures /contractMarket/execution)."""
    exchange, symbol, sym = case
    await exchange.load_markets()
    prefix = "/market/match" if "-" in sym else "/contractMarket/execution"
    trades = await watched(sim, sym, prefix, exchange.watch_trades(symbol), "67050.5")
    assert [(Decimal(str(t["price"])), t["side"]) for t in trades] == [
        (Decimal("67050.5"), "buy")]


async def test_watch_order_book_matches_the_simulators_book(
    sim: KucoinSimulator, case: tuple[Any, str, str]
) -> None:
    """The incremental level-2 feed, stitched by ccxt onto a REST snapshot, rebuilds
    exactly the simulator's book, and its top is the last trade."""
    exchange, symbol, sym = case
    await exchange.load_markets()
    prices = [f"{67000 + step * 7.3:.1f}" for step in range(1, 9)]
    prefix = "/market/level2" if "-" in sym else "/contractMarket/level2"
    book = await watched(sim, sym, prefix, exchange.watch_order_book(symbol), *prices)
    inst = sim.host(sym).instruments[sym]
    await until(lambda: exchange.orderbooks[symbol]["nonce"] == inst.book_sequence,
                what="ccxt's book at the simulator's sequence")
    book = exchange.orderbooks[symbol]
    bids, asks = book_frames.levels(inst, 100)
    assert [(Decimal(str(p)), Decimal(str(q))) for p, q in book["bids"]] == bids
    assert [(Decimal(str(p)), Decimal(str(q))) for p, q in book["asks"]] == asks
    assert Decimal(str(book["asks"][0][0])) == Decimal(prices[-1])  # a taker bought


async def test_watch_ohlcv_and_bids_asks(
    sim: KucoinSimulator, case: tuple[Any, str, str]
) -> None:
    """watch_ohlcv's running candle closes at the last trade; watch_bids_asks (spot
    /spotMarket/level1, futures /contractMarket/tickerV2) has the book's top."""
    exchange, symbol, sym = case
    await exchange.load_markets()
    spot = "-" in sym
    await sim.set_price(sym, "66980.0")
    prefix = "/market/candles" if spot else "/contractMarket/limitCandle"
    candles = await watched(sim, sym, prefix, exchange.watch_ohlcv(symbol, "1m"))
    assert Decimal(str(candles[-1][4])) == Decimal("66980.0")
    prefix = "/spotMarket/level1" if spot else "/contractMarket/tickerV2"
    await sim.set_price(sym, "66990.0")  # a taker bought: the ask is 66990.0
    quotes = await watched(sim, sym, prefix, exchange.watch_bids_asks([symbol]), "66990.0")
    quote = quotes[symbol]
    assert (Decimal(str(quote["bid"])), Decimal(str(quote["ask"]))) == (
        Decimal("66989.9"), Decimal("66990.0"))
