"""KuCoin's own Python SDK (kucoin-universal-sdk) works unmodified against the simulator.

Only ClientOption's spot and futures endpoints change. The SDK is threaded and blocking,
so its calls run in worker threads; its callbacks record what they parsed, and the test
waits on that record.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kucoin_universal_sdk.api.client import DefaultClient
from kucoin_universal_sdk.generate.futures.fundingfees.model_get_current_funding_rate_req import (
    GetCurrentFundingRateReqBuilder,
)
from kucoin_universal_sdk.generate.futures.market import (
    model_get_mark_price_req as f_mark,
)
from kucoin_universal_sdk.generate.futures.market import (
    model_get_part_order_book_req as f_book,
)
from kucoin_universal_sdk.generate.futures.market import (
    model_get_symbol_req as f_symbol,
)
from kucoin_universal_sdk.generate.futures.market import (
    model_get_trade_history_req as f_trades,
)
from kucoin_universal_sdk.generate.spot.market import (
    model_get24hr_stats_req as s_stats,
)
from kucoin_universal_sdk.generate.spot.market import (
    model_get_part_order_book_req as s_book,
)
from kucoin_universal_sdk.generate.spot.market import (
    model_get_symbol_req as s_symbol,
)
from kucoin_universal_sdk.generate.spot.market import (
    model_get_trade_history_req as s_trades,
)
from kucoin_universal_sdk.model.client_option import ClientOptionBuilder
from kucoin_universal_sdk.model.transport_option import TransportOptionBuilder
from kucoin_universal_sdk.model.websocket_option import (
    WebSocketClientOptionBuilder,
)

from cogmora.simulator import KucoinSimulator
from cogmora.simulator.funding import PERIOD_MS, period_start
from conditions import until


def sdk_client(sim: KucoinSimulator) -> Any:
    option = (
        ClientOptionBuilder()
        .set_spot_endpoint(sim.spot_url)
        .set_futures_endpoint(sim.futures_url)
        .set_transport_option(TransportOptionBuilder().build())
        .set_websocket_client_option(WebSocketClientOptionBuilder().with_reconnect(False).build())
        .build()
    )
    return DefaultClient(option)


async def test_sdk_spot_rest_parses_symbols_currencies_trades_books_status_stats(
    sim: KucoinSimulator,
) -> None:
    """Spot market API: a symbol by name, currencies, trade history, level-2 20 and 100,
    service status and 24 h stats."""
    await sim.publish_burst("BTC-USDT", ["67001.0", "66999.5"])

    def run() -> dict[str, Any]:
        api = sdk_client(sim).rest_service().get_spot_service().get_market_api()
        out = {
            "symbol": api.get_symbol(s_symbol.GetSymbolReqBuilder().set_symbol("BTC-USDT")
                                     .build()),
            "currencies": api.get_all_currencies(),
            "trades": api.get_trade_history(
                s_trades.GetTradeHistoryReqBuilder().set_symbol("BTC-USDT").build()),
            "status": api.get_service_status(),
            "stats": api.get24hr_stats(
                s_stats.Get24hrStatsReqBuilder().set_symbol("BTC-USDT").build()),
        }
        for size in ("20", "100"):
            out[f"book{size}"] = api.get_part_order_book(
                s_book.GetPartOrderBookReqBuilder().set_symbol("BTC-USDT").set_size(size)
                .build())
        return out

    got = await asyncio.to_thread(run)
    assert (got["symbol"].symbol, got["symbol"].base_currency) == ("BTC-USDT", "BTC")
    assert {"BTC", "ETH", "USDT"} <= {c.currency for c in got["currencies"].data}
    assert [t.price for t in got["trades"].data[-2:]] == ["67001.0", "66999.5"]
    assert got["status"].status.value == "open"
    assert got["stats"].last == "66999.5"
    for size in (20, 100):
        book = got[f"book{size}"]
        assert len(book.bids) == len(book.asks) == size
        assert Decimal(book.bids[0][0]) == Decimal("66999.5") < Decimal(book.asks[0][0])


async def test_sdk_futures_rest_parses_contract_trades_books_status_stats_funding(
    sim: KucoinSimulator,
) -> None:
    """Futures market API (a contract by name, trade history, level-2 20 and 100, status,
    24 h stats, mark price) and the current funding rate."""
    await sim.publish_burst("XBTUSDTM", ["67001.0", "67010.0"])

    def run() -> dict[str, Any]:
        futures = sdk_client(sim).rest_service().get_futures_service()
        api = futures.get_market_api()
        out = {
            "symbol": api.get_symbol(f_symbol.GetSymbolReqBuilder().set_symbol("XBTUSDTM")
                                     .build()),
            "trades": api.get_trade_history(
                f_trades.GetTradeHistoryReqBuilder().set_symbol("XBTUSDTM").build()),
            "status": api.get_service_status(),
            "stats": api.get24hr_stats(),
            "mark": api.get_mark_price(f_mark.GetMarkPriceReqBuilder().set_symbol("XBTUSDTM")
                                       .build()),
            "funding": futures.get_funding_fees_api().get_current_funding_rate(
                GetCurrentFundingRateReqBuilder().set_symbol("XBTUSDTM").build()),
        }
        for size in ("20", "100"):
            out[f"book{size}"] = api.get_part_order_book(
                f_book.GetPartOrderBookReqBuilder().set_symbol("XBTUSDTM").set_size(size)
                .build())
        return out

    got = await asyncio.to_thread(run)
    assert (got["symbol"].symbol, got["symbol"].multiplier) == ("XBTUSDTM", 0.001)
    assert got["trades"].data[0].price == "67010.0"  # newest first
    assert got["status"].status.value == "open"
    assert got["stats"].turnover_of24h > 0
    assert got["mark"].value == 67010.0
    funding = got["funding"]
    assert funding.granularity == PERIOD_MS
    assert period_start(funding.time_point) == funding.time_point
    assert funding.funding_time == funding.time_point + PERIOD_MS
    for size in (20, 100):
        book = got[f"book{size}"]
        assert len(book.bids) == size
        assert book.asks[0][0] == 67010.0  # a taker bought: the ask it lifted


class Heard:
    """What the SDK's callbacks parsed, per topic, across its reader thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_topic: dict[str, list[Any]] = {}
        self.subjects: set[str] = set()

    def __call__(self, topic: str, subject: str, data: Any) -> None:
        with self.lock:
            self.by_topic.setdefault(topic, []).append(data)
            self.subjects.add(subject)

    def topics(self) -> set[str]:
        with self.lock:
            return set(self.by_topic)


async def _stream(
    sim: KucoinSimulator, subscribe: Callable[[Any, Heard], None], futures: bool,
    symbol: str, wanted: set[str], prices: list[str], subjects: frozenset[str] = frozenset(),
) -> Heard:
    heard = Heard()

    def start() -> Any:
        ws_service = sdk_client(sim).ws_service()
        ws = ws_service.new_futures_public_ws() if futures else ws_service.new_spot_public_ws()
        ws.start()
        subscribe(ws, heard)
        return ws

    ws = await asyncio.to_thread(start)
    try:
        await sim.publish_burst(symbol, prices)
        await until(lambda: wanted <= heard.topics() and subjects <= heard.subjects,
                    what=f"SDK callbacks on {wanted} {set(subjects)}")
    finally:
        # A server-side close ends the SDK's reader thread at once; stop() then returns.
        await sim.drop_connections()
        await asyncio.to_thread(ws.stop)
    return heard


async def test_sdk_spot_websocket_topics(sim: KucoinSimulator) -> None:
    """/market/match, /market/snapshot (a symbol and the USDS market), /spotMarket/level1,
    /market/candles and /spotMarket/level2Depth5 are parsed by the SDK's own models."""
    sym = "BTC-USDT"

    def subscribe(ws: Any, heard: Heard) -> None:
        ws.trade([sym], heard)
        ws.symbol_snapshot(sym, heard)
        ws.orderbook_level1([sym], heard)
        ws.klines(sym, "1min", heard)
        ws.orderbook_level5([sym], heard)
        ws.market_snapshot("USDS", heard)

    wanted = {f"/market/match:{sym}", f"/market/snapshot:{sym}", f"/spotMarket/level1:{sym}",
              f"/market/candles:{sym}_1min", f"/spotMarket/level2Depth5:{sym}",
              "/market/snapshot:USDS"}
    heard = await _stream(sim, subscribe, False, sym, wanted, ["67005.0"])
    trade = heard.by_topic[f"/market/match:{sym}"][-1]
    assert (trade.price, trade.side) == ("67005.0", "buy")
    snapshot = heard.by_topic[f"/market/snapshot:{sym}"][-1]
    assert snapshot.data.symbol == sym and snapshot.data.last_traded_price > 0
    depth = heard.by_topic[f"/spotMarket/level2Depth5:{sym}"][-1]
    assert len(depth.asks) == len(depth.bids) == 5
    assert Decimal(depth.bids[0][0]) < Decimal(depth.asks[0][0])


async def test_sdk_futures_websocket_topics(sim: KucoinSimulator) -> None:
    """/contractMarket/snapshot, /contractMarket/level2Depth5, /contractMarket/execution,
    and the mark price and funding rate on /contract/instrument are parsed by the SDK."""
    sym = "XBTUSDTM"

    def subscribe(ws: Any, heard: Heard) -> None:
        ws.symbol_snapshot(sym, heard)
        ws.orderbook_level5(sym, heard)
        ws.execution(sym, heard)
        ws.instrument(sym, heard)

    wanted = {f"/contractMarket/snapshot:{sym}", f"/contractMarket/level2Depth5:{sym}",
              f"/contractMarket/execution:{sym}", f"/contract/instrument:{sym}"}
    heard = await _stream(sim, subscribe, True, sym, wanted, ["67020.0"],
                          frozenset({"mark.index.price", "funding.rate"}))
    snapshot = heard.by_topic[f"/contractMarket/snapshot:{sym}"][-1]
    assert snapshot.symbol == sym and snapshot.last_price > 0
    depth = heard.by_topic[f"/contractMarket/level2Depth5:{sym}"][-1]
    assert len(depth.asks) == 5 and depth.bids[0][0] < depth.asks[0][0]
    assert heard.by_topic[f"/contractMarket/execution:{sym}"][-1].price == "67020.0"
