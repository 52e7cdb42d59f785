"""Builders for agent contexts, shared by the agent unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cogmora.domain.agent import RiskLimits
from cogmora.domain.enums import Market, Side, Source, TriggerOp
from cogmora.domain.models import (
    Position,
    PositionDetails,
    Trigger,
    TriggerAction,
    TriggerCondition,
)
from cogmora.domain.watchlist import WatchEntry, market_of
from cogmora.jobs.agent.context import AgentContext, Candle

D = Decimal
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def candles(closes: Iterable[int | str], spread: int | str = 1) -> tuple[Candle, ...]:
    """Hourly candles ending just before NOW, high/low `spread` either side of the close."""
    values = [D(c) for c in closes]
    start = NOW - timedelta(hours=len(values))
    return tuple(
        Candle(start + timedelta(hours=i), c, c + D(spread), c - D(spread), c, D(10))
        for i, c in enumerate(values)
    )


UP = candles(range(100, 131))  # 31 candles, close 100 -> 130: EMA9 126, EMA21 120, ATR 2
DOWN = candles(range(130, 99, -1))  # close 130 -> 100: EMA9 104, EMA21 110, ATR 2
FLAT = candles([100, 101] * 15 + [100])  # EMAs within 0.1% of each other


def position(
    pid: str, symbol: str, side: Side, source: Source = Source.AGENT, entry: str = "100"
) -> Position:
    market = market_of(symbol)
    return Position(
        id=pid,
        uid="u1",
        symbol=symbol,
        market=market,
        side=side,
        qty=D(1),
        entry_price=D(entry),
        leverage=D(1) if market is Market.SPOT else D(2),
        margin=D(entry),
        fee_open=D("0.1"),
        opened_at=NOW - timedelta(hours=3),
        source=source,
        details=PositionDetails(stop_loss=D(90) if side is Side.LONG else D(110)),
    )


def trigger(tid: str, symbol: str, source: Source = Source.AGENT) -> Trigger:
    return Trigger(
        id=tid,
        uid="u1",
        symbol=symbol,
        market=market_of(symbol),
        condition=TriggerCondition(TriggerOp.BELOW, D(95)),
        action=TriggerAction(Side.LONG, notional=D(50)),
        created_at=NOW - timedelta(hours=1),
        source=source,
    )


def watch(symbol: str, last: str) -> WatchEntry:
    return WatchEntry(
        symbol, market_of(symbol), NOW, D(last), D("0.01"), D(last) + 5, D(last) - 5, D(1000)
    )


def context(
    series: Mapping[str, tuple[Candle, ...]],
    *,
    balance: str = "5000",
    limits: RiskLimits | None = None,
    **extra: Any,
) -> AgentContext:
    return AgentContext(
        uid="u1",
        now=NOW,
        balance=D(balance),
        equity=D(balance),
        symbols=tuple(series),
        limits=limits or RiskLimits(),
        candles=dict(series),
        **extra,
    )
