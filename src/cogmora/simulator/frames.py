"""KuCoin wire frames and REST payloads, built from an instrument's state.

Data frames are formatted by hand rather than through `json.dumps`: the firehose mode
publishes hundreds of thousands of them, and the shapes (field order, strings vs numbers,
ms vs ns) are copied from the protocol notes, so a template is also the most faithful form.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from cogmora.simulator.market import Instrument


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


def spot_ticker_data(inst: Instrument) -> str:
    return (
        f'{{"sequence":"{inst.sequence}","price":"{s(inst.price)}","size":"{s(inst.last_size)}",'
        f'"bestAsk":"{s(inst.best_ask)}","bestAskSize":"0.5","bestBid":"{s(inst.best_bid)}",'
        f'"bestBidSize":"0.5","time":{inst.time_ms}}}'
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
    return max(1, int(inst.last_size * 100) % 1000)


def futures_execution(inst: Instrument) -> str:
    ts = inst.time_ms * 1_000_000
    side = "buy" if inst.sequence % 2 else "sell"
    return (
        f'{{"topic":"/contractMarket/execution:{inst.symbol}","type":"message","subject":"match",'
        f'"sn":{inst.sequence},"data":{{"symbol":"{inst.symbol}","sequence":{inst.sequence},'
        f'"side":"{side}","size":{_lots(inst)},"price":"{s(inst.price)}",'
        f'"takerOrderId":"{inst.trade_id * 2}","makerOrderId":"{inst.trade_id * 2 + 1}",'
        f'"tradeId":"{inst.trade_id}","ts":{ts}}}}}'
    )


def futures_ticker(inst: Instrument) -> str:
    ts = inst.time_ms * 1_000_000
    side = "buy" if inst.sequence % 2 else "sell"
    return (
        f'{{"topic":"/contractMarket/ticker:{inst.symbol}","type":"message","subject":"ticker",'
        f'"sn":{inst.sequence},"data":{{"symbol":"{inst.symbol}","sequence":{inst.sequence},'
        f'"side":"{side}","size":{_lots(inst)},"price":"{s(inst.price)}","bestBidSize":500,'
        f'"bestBidPrice":"{s(inst.best_bid)}","bestAskPrice":"{s(inst.best_ask)}",'
        f'"bestAskSize":500,"tradeId":"{inst.trade_id}","ts":{ts}}}}}'
    )


def futures_ticker_v2(inst: Instrument) -> str:
    ts = inst.time_ms * 1_000_000
    return (
        f'{{"topic":"/contractMarket/tickerV2:{inst.symbol}","type":"message",'
        f'"subject":"tickerV2","sn":{inst.sequence},"data":{{"symbol":"{inst.symbol}",'
        f'"sequence":{inst.sequence},"bestBidSize":500,"bestBidPrice":"{s(inst.best_bid)}",'
        f'"bestAskPrice":"{s(inst.best_ask)}","bestAskSize":500,"ts":{ts}}}}}'
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
    item["bestBidSize"] = "0.5"
    item["bestAskSize"] = "0.5"
    return item


def rest_level1(inst: Instrument) -> dict[str, Any]:
    return {
        "time": inst.time_ms,
        "sequence": str(inst.sequence),
        "price": s(inst.price),
        "size": s(inst.last_size),
        "bestBid": s(inst.best_bid),
        "bestBidSize": "0.5",
        "bestAsk": s(inst.best_ask),
        "bestAskSize": "0.5",
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
        "side": "buy",
        "size": _lots(inst),
        "tradeId": str(inst.trade_id),
        "price": s(inst.price),
        "bestBidPrice": s(inst.best_bid),
        "bestBidSize": 500,
        "bestAskPrice": s(inst.best_ask),
        "bestAskSize": 500,
        "ts": inst.time_ms * 1_000_000,
    }


def rest_contract(inst: Instrument) -> dict[str, Any]:
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
        "fundingFeeRate": 0.0001,
        "predictedFundingFeeRate": 0.0001,
        "fundingRateGranularity": 28800000,
        "openInterest": "1000000",
        "turnoverOf24h": inst.turnover24h,
        "volumeOf24h": inst.volume24h,
        "markPrice": inst.mark,
        "indexPrice": inst.mark,
        "lastTradePrice": inst.price,
        "nextFundingRateTime": 17752926,
        "maxLeverage": 125,
        "lowPrice": inst.low24h,
        "highPrice": inst.high24h,
        "priceChgPct": inst.change_rate,
        "priceChg": inst.change_price,
        "supportCross": True,
    }
