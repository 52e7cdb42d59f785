"""ccxt's kucoin and kucoinfutures REST methods work unmodified against the simulator.

Only `urls` changes; markets load with ccxt's default options (currencies, symbols,
allTickers and the contract list), and what ccxt parses is what the simulator printed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
from ccxt_sandbox import ccxt_urls

from cogmora.simulator import KucoinSimulator
from cogmora.simulator.funding import period_start


@pytest.fixture
async def spot(sim: KucoinSimulator) -> AsyncIterator[Any]:
    exchange = ccxt.kucoin({"urls": ccxt_urls(sim)})
    yield exchange
    await exchange.close()


@pytest.fixture
async def futures(sim: KucoinSimulator) -> AsyncIterator[Any]:
    exchange = ccxt.kucoinfutures({"urls": ccxt_urls(sim)})
    yield exchange
    await exchange.close()


def num(value: Any) -> Decimal:
    return Decimal(str(value))


async def test_ccxt_spot_loads_markets_and_reads_what_the_simulator_printed(
    sim: KucoinSimulator, spot: Any
) -> None:
    """load_markets (default options), tickers, candles, trades, book, status and time."""
    await sim.publish_burst("BTC-USDT", ["67010.5", "67020.1", "67015.3"])
    markets = await spot.load_markets()
    assert markets["BTC/USDT"]["id"] == "BTC-USDT"
    assert markets["BTC/USDT:USDT"]["id"] == "XBTUSDTM"  # the contracts come along
    assert "BTC" in spot.currencies and "USDT" in spot.currencies

    ticker = await spot.fetch_ticker("BTC/USDT")
    assert num(ticker["last"]) == Decimal("67015.3")
    assert ticker["bid"] < ticker["ask"]
    tickers = await spot.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}

    trades = await spot.fetch_trades("BTC/USDT")
    assert [num(t["price"]) for t in trades[-3:]] == [
        Decimal("67010.5"), Decimal("67020.1"), Decimal("67015.3")]
    assert [t["side"] for t in trades[-3:]] == ["buy", "buy", "sell"]

    candles = await spot.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    assert num(candles[-1][4]) == Decimal("67015.3")  # the last close is the last trade

    for limit in (None, 20, 100):
        book = await spot.fetch_order_book("BTC/USDT", limit)
        best_bid, best_ask = book["bids"][0][0], book["asks"][0][0]
        assert best_bid < best_ask
        assert num(best_bid) == Decimal("67015.3")  # a taker sold: the bid it hit
        assert len(book["bids"]) == (limit or 100)

    assert (await spot.fetch_status())["status"] == "ok"
    assert abs(await spot.fetch_time() - _now_ms()) < 600_000


async def test_ccxt_futures_reads_contracts_funding_and_mark_price(
    sim: KucoinSimulator, futures: Any
) -> None:
    """kucoinfutures: markets, ticker(s), candles, trades, books, funding rate, mark price."""
    await sim.publish_burst("XBTUSDTM", ["66990.0", "67005.5"])
    await sim.set_mark_price("XBTUSDTM", "67001.25")
    markets = await futures.load_markets()
    market = markets["BTC/USDT:USDT"]
    assert (market["id"], market["contractSize"]) == ("XBTUSDTM", 0.001)

    ticker = await futures.fetch_ticker("BTC/USDT:USDT")
    assert num(ticker["last"]) == Decimal("67005.5")
    assert "BTC/USDT:USDT" in await futures.fetch_tickers(["BTC/USDT:USDT"])
    trades = await futures.fetch_trades("BTC/USDT:USDT")
    assert num(trades[-1]["price"]) == Decimal("67005.5")
    candles = await futures.fetch_ohlcv("BTC/USDT:USDT", "1m", limit=5)
    assert num(candles[-1][4]) == Decimal("67005.5")
    for limit in (None, 20, 100):
        book = await futures.fetch_order_book("BTC/USDT:USDT", limit)
        assert book["bids"][0][0] < book["asks"][0][0]
        assert num(book["asks"][0][0]) == Decimal("67005.5")  # a taker bought: the ask

    sim.set_funding_rate("XBTUSDTM", "0.00025")
    rate = await futures.fetch_funding_rate("BTC/USDT:USDT")
    assert num(rate["fundingRate"]) == Decimal("0.00025")
    assert rate["interval"] == "8h"
    assert period_start(rate["fundingTimestamp"]) == rate["fundingTimestamp"]
    assert rate["fundingTimestamp"] > _now_ms()

    mark = await futures.fetch_mark_price("BTC/USDT:USDT")
    assert num(mark["markPrice"]) == Decimal("67001.25")
    assert (await futures.fetch_status())["status"] == "ok"
    assert abs(await futures.fetch_time() - _now_ms()) < 600_000


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000
