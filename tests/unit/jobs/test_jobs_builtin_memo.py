"""The builtin provider's signal memo: shared candles computed once, never mixed up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cogmora.domain.agent import OpenPositionAction, RiskLimits
from cogmora.domain.enums import Side
from cogmora.jobs.agent.builtin import BuiltinProvider
from cogmora.jobs.agent.context import AgentContext, Candle

D = Decimal
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def series(step: int) -> tuple[Candle, ...]:
    return tuple(
        Candle(NOW - timedelta(hours=40 - i), D(c), D(c + 1), D(c - 1), D(c), D(1))
        for i, c in enumerate(range(1000, 1000 + 40 * step, step))
    )


def ctx(candles: tuple[Candle, ...]) -> AgentContext:
    return AgentContext(
        uid="u", now=NOW, balance=D(5000), equity=D(5000), symbols=("XBTUSDTM",),
        limits=RiskLimits(), candles={"XBTUSDTM": candles},
    )  # fmt: skip


async def test_contexts_sharing_candles_share_the_signal_but_not_other_series() -> None:
    """An uptrend and a downtrend through one provider keep their own decisions."""
    provider = BuiltinProvider(memo_size=2)
    up, down = series(5), series(-5)
    sides = []
    for candles in (up, up, down, up, series(5)):
        [action] = (await provider.decide(ctx(candles))).actions
        assert isinstance(action, OpenPositionAction)
        sides.append(action.side)
    assert sides == [Side.LONG, Side.LONG, Side.SHORT, Side.LONG, Side.LONG]
