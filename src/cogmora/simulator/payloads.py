"""REST payloads beyond the tickers: currencies, trade history, service status.

Shapes are KuCoin's, field for field, as the official SDK's response models and ccxt's
parsers read them (strings where KuCoin sends strings, nanoseconds where it sends them).
"""

from __future__ import annotations

from typing import Any

from cogmora.simulator.frames import s
from cogmora.simulator.market import Instrument, Trade, lots_of


def currencies(instruments: dict[str, Instrument]) -> list[dict[str, Any]]:
    """Every currency of the spot pairs, each on one chain of its own name."""
    codes: dict[str, None] = {}
    for symbol in instruments:
        base, _, quote = symbol.partition("-")
        codes[base] = None
        codes[quote] = None
    return [currency(code) for code in codes]


def currency(code: str) -> dict[str, Any]:
    return {
        "currency": code,
        "name": code,
        "fullName": code,
        "precision": 8,
        "confirms": None,
        "contractAddress": None,
        "isMarginEnabled": True,
        "isDebitEnabled": True,
        "chains": [
            {
                "chainName": code,
                "withdrawalMinSize": "0.001",
                "depositMinSize": "0.0002",
                "withdrawFeeRate": "0",
                "withdrawalMinFee": "0.0005",
                "isWithdrawEnabled": True,
                "isDepositEnabled": True,
                "confirms": 3,
                "preConfirms": 1,
                "contractAddress": "",
                "withdrawPrecision": 8,
                "maxWithdraw": None,
                "maxDeposit": None,
                "needTag": False,
                "chainId": code.lower(),
            }
        ],
    }


def spot_trades(inst: Instrument) -> list[dict[str, Any]]:
    """`/api/v1/market/histories`: the latest trades, oldest first, time in ns."""
    return [
        {"sequence": str(t.sequence), "price": s(t.price), "size": s(t.size),
         "side": t.side, "time": t.time_ns}
        for t in inst.recent
    ]


def futures_trades(inst: Instrument) -> list[dict[str, Any]]:
    """`/api/v1/trade/history`: the latest trades, newest first, sizes in lots."""
    return [_futures_trade(t) for t in reversed(inst.recent)]


def _futures_trade(t: Trade) -> dict[str, Any]:
    return {
        "sequence": t.sequence,
        "contractId": 1,
        "tradeId": str(t.trade_id),
        "makerOrderId": str(t.trade_id * 2 + 1),
        "takerOrderId": str(t.trade_id * 2),
        "ts": t.time_ns,
        "size": lots_of(t.size),
        "price": s(t.price),
        "side": t.side,
    }


def status() -> dict[str, str]:
    return {"status": "open", "msg": ""}
