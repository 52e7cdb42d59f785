"""KuCoin wire frames and REST payloads, built from an instrument's state.

Data frames are formatted by hand rather than through `json.dumps`: the firehose mode
publishes hundreds of thousands of them, and the shapes (field order, strings vs numbers,
ms vs ns) are copied from the protocol notes, so a template is also the most faithful form.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec

from cogmora.domain.enums import Market
from cogmora.simulator.book import level_size
from cogmora.simulator.funding import Funding, next_funding
from cogmora.simulator.market import Instrument, lots_of


def s(value: Decimal) -> str:
    """KuCoin's decimal strings: fixed point, never an exponent."""
    return format(value, "f")


def control(kind: str, ident: str) -> str:
    return json.dumps({"id": ident, "type": kind})


def error(ident: str | None, code: int, data: str) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "data": data}
    if ident is not None:
        frame = {"id": ident, **frame}
    return json.dumps(frame)


def top_sizes(inst: Instrument) -> tuple[Decimal, Decimal]:
    """Sizes resting at the best bid and ask (the book's own, simulator/book.py)."""
    lots = inst.market is Market.FUTURES
    return (level_size(inst.symbol, inst.best_bid, lots),
            level_size(inst.symbol, inst.best_ask, lots))


def spot_ticker_data(inst: Instrument) -> str:
    bid_size, ask_size = top_sizes(inst)
    return (
        f'{{"sequence":"{inst.sequence}","price":"{s(inst.price)}","size":"{s(inst.last_size)}",'
        f'"bestAsk":"{s(inst.best_ask)}","bestAskSize":"{s(ask_size)}",'
        f'"bestBid":"{s(inst.best_bid)}","bestBidSize":"{s(bid_size)}","time":{inst.time_ms}}}'
    )


def spot_ticker(inst: Instrument) -> str:
    return (
        f'{{"type":"message","topic":"/market/ticker:{inst.symbol}","subject":"trade.ticker",'
        f'"data":{spot_ticker_data(inst)}}}'
    )


def spot_ticker_all(inst: Instrument) -> str:
    return (
        f'{{"topic":"/market/ticker:all","type":"message","subject":"{inst.symbol}",'
        f'"data":{spot_ticker_data(inst)}}}'
    )


def _lots(inst: Instrument) -> int:
    return lots_of(inst.last_size)


def futures_execution(inst: Instrument) -> str:
    ts = inst.time_ms * 1_000_000
    side = inst.side
    return (
        f'{{"topic":"/contractMarket/execution:{inst.symbol}","type":"message","subject":"match",'
        f'"sn":{inst.sequence},"data":{{"symbol":"{inst.symbol}","sequence":{inst.sequence},'
        f'"side":"{side}","size":{_lots(inst)},"price":"{s(inst.price)}",'
        f'"takerOrderId":"{inst.trade_id * 2}","makerOrderId":"{inst.trade_id * 2 + 1}",'
        f'"tradeId":"{inst.trade_id}","ts":{ts}}}}}'
    )


def futures_ticker(inst: Instrument) -> str:
    ts = inst.time_ms * 1_000_000
    side = inst.side
    bid_size, ask_size = top_sizes(inst)
    return (
        f'{{"topic":"/contractMarket/ticker:{inst.symbol}","type":"message","subject":"ticker",'
        f'"sn":{inst.sequence},"data":{{"symbol":"{inst.symbol}","sequence":{inst.sequence},'
        f'"side":"{side}","size":{_lots(inst)},"price":"{s(inst.price)}",'
        f'"bestBidSize":{bid_size},"bestBidPrice":"{s(inst.best_bid)}",'
        f'"bestAskPrice":"{s(inst.best_ask)}","bestAskSize":{ask_size},'
        f'"tradeId":"{inst.trade_id}","ts":{ts}}}}}'
    )


def futures_ticker_v2(inst: Instrument) -> str:
    ts = inst.time_ms * 1_000_000
    bid_size, ask_size = top_sizes(inst)
    return (
        f'{{"topic":"/contractMarket/tickerV2:{inst.symbol}","type":"message",'
        f'"subject":"tickerV2","sn":{inst.sequence},"data":{{"symbol":"{inst.symbol}",'
        f'"sequence":{inst.sequence},"bestBidSize":{bid_size},'
        f'"bestBidPrice":"{s(inst.best_bid)}","bestAskPrice":"{s(inst.best_ask)}",'
        f'"bestAskSize":{ask_size},"ts":{ts}}}}}'
    )


def futures_instrument(inst: Instrument, at_ms: int) -> str:
    # Prices are JSON numbers on this topic, unlike every other one.
    return (
        f'{{"topic":"/contract/instrument:{inst.symbol}","type":"message",'
        f'"subject":"mark.index.price","data":{{"markPrice":{s(inst.mark)},'
        f'"indexPrice":{s(inst.mark)},"granularity":1000,"timestamp":{at_ms}}}}}'
    )


# ---- REST payloads -------------------------------------------------------------------


def rest_stats(inst: Instrument | None, symbol: str, at_ms: int) -> dict[str, Any]:
    if inst is None:
        # What KuCoin answers for an unknown symbol: success, every field but two null.
        keys = [
            "buy", "sell", "changeRate", "changePrice", "high", "low", "vol", "volValue",
            "last", "averagePrice", "takerFeeRate", "makerFeeRate", "takerCoefficient",
            "makerCoefficient",
        ]
        return {"time": at_ms, "symbol": symbol, **dict.fromkeys(keys)}
    return {
        "time": at_ms,
        "symbol": inst.symbol,
        "buy": s(inst.best_bid),
        "sell": s(inst.best_ask),
        "changeRate": s(inst.change_rate),
        "changePrice": s(inst.change_price),
        "high": s(inst.high24h),
        "low": s(inst.low24h),
        "vol": s(inst.volume24h),
        "volValue": s(inst.turnover24h),
        "last": s(inst.price),
        "averagePrice": s(inst.open24h),
        "takerFeeRate": "0.001",
        "makerFeeRate": "0.001",
        "takerCoefficient": "1",
        "makerCoefficient": "1",
    }


def rest_all_ticker_item(inst: Instrument) -> dict[str, Any]:
    item = rest_stats(inst, inst.symbol, inst.time_ms)
    del item["time"]
    item["symbolName"] = inst.symbol
    bid_size, ask_size = top_sizes(inst)
    item["bestBidSize"] = s(bid_size)
    item["bestAskSize"] = s(ask_size)
    return item


def rest_level1(inst: Instrument) -> dict[str, Any]:
    bid_size, ask_size = top_sizes(inst)
    return {
        "time": inst.time_ms,
        "sequence": str(inst.sequence),
        "price": s(inst.price),
        "size": s(inst.last_size),
        "bestBid": s(inst.best_bid),
        "bestBidSize": s(bid_size),
        "bestAsk": s(inst.best_ask),
        "bestAskSize": s(ask_size),
    }


def rest_symbol(inst: Instrument) -> dict[str, Any]:
    base, quote = inst.symbol.split("-", 1)
    return {
        "symbol": inst.symbol,
        "name": inst.symbol,
        "baseCurrency": base,
        "quoteCurrency": quote,
        "feeCurrency": quote,
        "market": "USDS",
        "baseMinSize": "0.00001",
        "quoteMinSize": "0.1",
        "baseMaxSize": "10000000000",
        "quoteMaxSize": "99999999",
        "baseIncrement": "0.00000001",
        "quoteIncrement": "0.000001",
        "priceIncrement": s(inst.increment),
        "priceLimitRate": "0.1",
        "minFunds": "0.1",
        "isMarginEnabled": True,
        "enableTrading": True,
        "feeCategory": 1,
        "makerFeeCoefficient": "1.00",
        "takerFeeCoefficient": "1.00",
        "st": False,
        "callauctionIsEnabled": False,
        "callauctionPriceFloor": None,
        "callauctionPriceCeiling": None,
        "callauctionFirstStageStartTime": None,
        "callauctionSecondStageStartTime": None,
        "callauctionThirdStageStartTime": None,
        "tradingStartTime": None,
    }


def rest_futures_ticker(inst: Instrument) -> dict[str, Any]:
    return {
        "sequence": inst.sequence,
        "symbol": inst.symbol,
        "side": inst.side,
        "size": _lots(inst),
        "tradeId": str(inst.trade_id),
        "price": s(inst.price),
        "bestBidPrice": s(inst.best_bid),
        "bestBidSize": top_sizes(inst)[0],
        "bestAskPrice": s(inst.best_ask),
        "bestAskSize": top_sizes(inst)[1],
        "ts": inst.time_ms * 1_000_000,
    }


def rest_contract(inst: Instrument, funding: Funding, at_ms: int) -> dict[str, Any]:
    base = inst.symbol.removesuffix("USDTM")
    # Decimals here are encoded as JSON numbers, as KuCoin sends them (only openInterest is a
    # string): the REST layer encodes with decimal_format="number".
    return {
        "symbol": inst.symbol,
        "rootSymbol": "USDT",
        "type": "FFWCSX",
        "firstOpenDate": 1585555200000,
        "expireDate": None,
        "settleDate": None,
        "baseCurrency": base,
        "quoteCurrency": "USDT",
        "settleCurrency": "USDT",
        "maxOrderQty": 1000000,
        "maxPrice": 1000000,
        "lotSize": 1,
        "tickSize": inst.increment,
        "indexPriceTickSize": inst.increment,
        "multiplier": inst.multiplier,
        "initialMargin": 0.008,
        "maintainMargin": 0.004,
        "maxRiskLimit": 100000,
        "minRiskLimit": 100000,
        "riskStep": 50000,
        "makerFeeRate": 0.0002,
        "takerFeeRate": 0.0006,
        "isDeleverage": True,
        "isQuanto": False,
        "isInverse": False,
        "markMethod": "FairPrice",
        "fairMethod": "FundingRate",
        "indexSymbol": f".K{base}USDT",
        "status": "Open",
        "fundingFeeRate": funding.rate(inst.symbol, at_ms),
        "predictedFundingFeeRate": funding.rate(inst.symbol, at_ms + 60_000),
        "fundingRateGranularity": 28800000,
        "openInterest": "1000000",
        "turnoverOf24h": inst.turnover24h,
        "volumeOf24h": inst.volume24h,
        "markPrice": inst.mark,
        "indexPrice": inst.mark,
        "lastTradePrice": inst.price,
        "nextFundingRateTime": next_funding(at_ms) - at_ms,  # a countdown, ms
        "maxLeverage": 125,
        "lowPrice": inst.low24h,
        "highPrice": inst.high24h,
        "priceChgPct": inst.change_rate,
        "priceChg": inst.change_price,
        "supportCross": True,
    }


# ---- topics beyond the tickers (what ccxt and the official SDK subscribe to) ----------

_numbers = msgspec.json.Encoder(decimal_format="number")


def message(topic: str, subject: str, data: dict[str, Any], sn: int | None = None) -> str:
    """A data frame around `data`, whose Decimals go out as JSON numbers (the snapshot and
    instrument topics send numbers; elsewhere the caller passes strings)."""
    frame: dict[str, Any] = {"topic": topic, "type": "message", "subject": subject}
    if sn is not None:
        frame["sn"] = sn
    frame["data"] = data
    return _numbers.encode(frame).decode()


def spot_match(inst: Instrument, topic_prefix: str = "/market/match") -> str:
    ts = inst.time_ms * 1_000_000
    return (
        f'{{"topic":"{topic_prefix}:{inst.symbol}","type":"message","subject":"trade.l3match",'
        f'"data":{{"makerOrderId":"{inst.trade_id * 2 + 1:024x}","price":"{s(inst.price)}",'
        f'"sequence":"{inst.sequence}","side":"{inst.side}","size":"{s(inst.last_size)}",'
        f'"symbol":"{inst.symbol}","takerOrderId":"{inst.trade_id * 2:024x}",'
        f'"time":"{ts}","tradeId":"{inst.sequence}","type":"match"}}}}'
    )


def _window(inst: Instrument, seconds: int, now_s: int) -> dict[str, Decimal]:
    """open/high/low/vol/volValue of the trades in the last `seconds` (the price itself
    when there were none)."""
    rows = [r for m, r in inst.minutes.items() if m >= now_s - seconds]
    if not rows:
        p = inst.price
        return {"open": p, "high": p, "low": p, "vol": Decimal(0), "volValue": Decimal(0)}
    return {
        "open": rows[0][0],
        "high": max(r[1] for r in rows),
        "low": min(r[2] for r in rows),
        "vol": sum((r[4] for r in rows), Decimal(0)),
        "volValue": sum((r[5] for r in rows), Decimal(0)),
    }


def _change(window: dict[str, Decimal], last: Decimal) -> dict[str, Any]:
    open_ = window["open"]
    rate = ((last - open_) / open_).quantize(Decimal("0.0001")) if open_ else Decimal(0)
    return {"changePrice": last - open_, "changeRate": rate, **window}


def spot_snapshot_data(inst: Instrument, at_ms: int) -> dict[str, Any]:
    base, quote = inst.symbol.split("-", 1)
    now_s = at_ms // 1000
    day = {"open": inst.open24h, "high": inst.high24h, "low": inst.low24h,
           "vol": inst.volume24h, "volValue": inst.turnover24h}
    top_bid, top_ask = inst.best_bid, inst.best_ask
    bid_size, ask_size = top_sizes(inst)
    return {
        "askSize": ask_size, "averagePrice": inst.open24h, "baseCurrency": base,
        "bidSize": bid_size, "board": 1, "buy": top_bid,
        "changePrice": inst.change_price, "changeRate": inst.change_rate,
        "close": inst.price, "datetime": at_ms, "high": inst.high24h,
        "lastTradedPrice": inst.price, "low": inst.low24h, "makerCoefficient": 1,
        "makerFeeRate": Decimal("0.001"), "marginTrade": True, "mark": 0, "market": "USDS",
        "marketChange1h": _change(_window(inst, 3600, now_s), inst.price),
        "marketChange24h": _change(day, inst.price),
        "marketChange4h": _change(_window(inst, 4 * 3600, now_s), inst.price),
        "markets": ["USDS"], "open": inst.open24h, "quoteCurrency": quote,
        "sell": top_ask, "siteTypes": ["global"], "sort": 100, "symbol": inst.symbol,
        "symbolCode": inst.symbol, "takerCoefficient": 1, "takerFeeRate": Decimal("0.001"),
        "trading": True, "vol": inst.volume24h, "volValue": inst.turnover24h,
    }


def spot_snapshot(inst: Instrument, topic: str, at_ms: int) -> str:
    """`/market/snapshot:{symbol}` or `:{market}`: one message per symbol, data.data."""
    data = {"sequence": str(inst.sequence), "data": spot_snapshot_data(inst, at_ms)}
    return message(topic, "trade.snapshot", data)


def spot_level1(inst: Instrument, bid_size: Decimal, ask_size: Decimal) -> str:
    return (
        f'{{"topic":"/spotMarket/level1:{inst.symbol}","type":"message","subject":"level1",'
        f'"data":{{"asks":["{s(inst.best_ask)}","{s(ask_size)}"],'
        f'"bids":["{s(inst.best_bid)}","{s(bid_size)}"],"timestamp":{inst.time_ms}}}}}'
    )


def candle_update(inst: Instrument, kind: str, row: list[str], futures: bool) -> str:
    """A candle's running values on `/market/candles:{sym}_{type}` (spot: ns time) or
    `/contractMarket/limitCandle:{sym}_{type}` (futures: ms time)."""
    if futures:
        topic, subject, at = "/contractMarket/limitCandle", "candle.stick", inst.time_ms
    else:
        topic, subject = "/market/candles", "trade.candles.update"
        at = inst.time_ms * 1_000_000
    candles = ",".join(f'"{v}"' for v in row)
    return (
        f'{{"topic":"{topic}:{inst.symbol}_{kind}","type":"message","subject":"{subject}",'
        f'"data":{{"symbol":"{inst.symbol}","candles":[{candles}],"time":{at}}}}}'
    )


def futures_snapshot(inst: Instrument, at_ms: int) -> str:
    data = {
        "highPrice": inst.high24h, "lastPrice": inst.price, "lowPrice": inst.low24h,
        "price24HoursBefore": inst.open24h, "priceChg": inst.change_price,
        "priceChgPct": inst.change_rate, "symbol": inst.symbol, "ts": at_ms * 1_000_000,
        "turnover": inst.turnover24h, "volume": inst.volume24h,
    }
    return message(f"/contractMarket/snapshot:{inst.symbol}", "snapshot.24h", data)


def futures_funding(inst: Instrument, rate: Decimal, at_ms: int) -> str:
    # granularity 60000: the predicted rate, pushed each minute (28800000 is the settled one).
    data = {"granularity": 60000, "fundingRate": rate, "timestamp": at_ms}
    return message(f"/contract/instrument:{inst.symbol}", "funding.rate", data)
