"""The builtin strategy on fixed candle series gives the decisions its docstring documents."""

from __future__ import annotations

from decimal import Decimal

from agent_testkit import DOWN, FLAT, UP, candles, context, position, watch

from cogmora.domain.agent import (
    ClosePositionAction,
    HoldAction,
    OpenPositionAction,
    RiskLimits,
    Usage,
    check_actions,
)
from cogmora.domain.enums import Market, Side, Source
from cogmora.jobs.agent.builtin import BuiltinParams, BuiltinProvider, signal

D = Decimal


async def decide_one(**kw: object) -> list[object]:
    result = await BuiltinProvider().decide(context(**kw))  # type: ignore[arg-type]
    assert result.error is None
    return list(result.actions)


async def test_an_uptrend_on_spot_opens_a_long_sized_from_the_balance() -> None:
    """EMA9 126 over EMA21 120 opens a long: 10% of 5000, stop 2 ATR below, target 3 above."""
    actions = await decide_one(series={"BTC-USDT": UP})
    assert actions == [
        OpenPositionAction(
            "BTC-USDT",
            Market.SPOT,
            Side.LONG,
            notional=D(500),
            stop_loss=D(126),
            take_profit=D(136),
            rationale=(
                "EMA9 126, EMA21 120: uptrend; ATR14 2; stop 2xATR at 126, target 3xATR at 136"
            ),
        )
    ]


async def test_a_downtrend_on_futures_opens_a_short_at_2x() -> None:
    """EMA9 104 under EMA21 110 opens a 2x short with stop 104 and target 94."""
    [action] = await decide_one(series={"XBTUSDTM": DOWN})
    assert isinstance(action, OpenPositionAction)
    assert (action.side, action.leverage, action.notional) == (Side.SHORT, D(2), D(500))
    assert (action.stop_loss, action.take_profit) == (D(104), D(94))


async def test_a_downtrend_on_spot_holds_because_spot_cannot_short() -> None:
    """Spot is long-only, so a downtrend there is a hold."""
    [action] = await decide_one(series={"BTC-USDT": DOWN})
    assert isinstance(action, HoldAction)
    assert action.symbol == "BTC-USDT"
    assert action.rationale.endswith("downtrend; ATR14 2; spot cannot short")


async def test_a_flat_market_holds() -> None:
    """EMAs within the 0.1% band mean no trend, so the strategy holds."""
    [action] = await decide_one(series={"XBTUSDTM": FLAT})
    assert isinstance(action, HoldAction)
    assert "flat" in action.rationale and action.rationale.endswith("no trend")


async def test_too_few_candles_hold_for_insufficient_data() -> None:
    """With 20 candles (21 needed) the strategy holds and says why."""
    [action] = await decide_one(series={"BTC-USDT": UP[:20]})
    assert action == HoldAction("insufficient data: 20 candles, need 21", "BTC-USDT")


async def test_an_agent_long_is_closed_when_the_trend_turns_down() -> None:
    """A long the agent opened is closed in a downtrend; nothing new opens that run."""
    ctx_positions = (position("p1", "XBTUSDTM", Side.LONG),)
    [action] = await decide_one(series={"XBTUSDTM": DOWN}, positions=ctx_positions)
    assert isinstance(action, ClosePositionAction)
    assert action.position_id == "p1"
    assert action.rationale.endswith("trend turned against this long")


async def test_the_users_own_positions_are_never_touched() -> None:
    """A manual long in a downtrend is left alone and does not stop the agent's own short."""
    manual = (position("p1", "XBTUSDTM", Side.LONG, source=Source.API),)
    [action] = await decide_one(series={"XBTUSDTM": DOWN}, positions=manual)
    assert isinstance(action, OpenPositionAction)
    assert action.side is Side.SHORT


async def test_an_agent_position_with_the_trend_is_held() -> None:
    """An agent long in an uptrend is left to its SL/TP."""
    mine = (position("p1", "BTC-USDT", Side.LONG),)
    [action] = await decide_one(series={"BTC-USDT": UP}, positions=mine)
    assert isinstance(action, HoldAction)
    assert action.rationale.endswith("already long, SL/TP manage it")


async def test_an_agent_position_in_a_flat_market_is_held() -> None:
    """No trend is no reason to close."""
    mine = (position("p1", "XBTUSDTM", Side.SHORT),)
    [action] = await decide_one(series={"XBTUSDTM": FLAT}, positions=mine)
    assert isinstance(action, HoldAction)


async def test_size_and_leverage_respect_the_users_limits() -> None:
    """10% of 100000 is capped at maxPositionNotional, and 2x at a maxLeverage of 1."""
    limits = RiskLimits(max_leverage=D(1), max_position_notional=D(750))
    [action] = await decide_one(series={"XBTUSDTM": UP}, balance="100000", limits=limits)
    assert isinstance(action, OpenPositionAction)
    assert (action.notional, action.leverage) == (D(750), D(1))


async def test_levels_are_set_from_the_latest_price() -> None:
    """With a last trade of 131, the long's stop is 127 and its target 137."""
    [action] = await decide_one(
        series={"BTC-USDT": UP}, watch={"BTC-USDT": watch("BTC-USDT", "131")}
    )
    assert isinstance(action, OpenPositionAction)
    assert (action.stop_loss, action.take_profit) == (D(127), D(137))


async def test_a_stop_past_liquidation_holds() -> None:
    """ATR 40 at 2x puts a long's stop (50) below its liquidation price (65.65): hold."""
    wild = candles(range(100, 131), spread=20)
    [action] = await decide_one(series={"XBTUSDTM": wild})
    assert isinstance(action, HoldAction)
    assert action.rationale.endswith("the stop would sit past liquidation")


async def test_a_stop_at_or_below_zero_holds() -> None:
    """ATR 80 puts a long's stop below 0: hold."""
    wild = candles(range(100, 131), spread=40)
    [action] = await decide_one(series={"BTC-USDT": wild})
    assert isinstance(action, HoldAction)
    assert action.rationale.endswith("volatility too high for a stop")


async def test_symbols_are_decided_in_config_order_with_a_combined_rationale() -> None:
    """One action per symbol, in order, and one rationale line per symbol."""
    result = await BuiltinProvider().decide(
        context({"XBTUSDTM": DOWN, "BTC-USDT": UP, "ETH-USDT": UP[:5]})
    )
    assert [type(a).__name__ for a in result.actions] == [
        "OpenPositionAction",
        "OpenPositionAction",
        "HoldAction",
    ]
    parts = result.rationale.split(" | ")
    assert [p.split(":")[0] for p in parts] == ["XBTUSDTM", "BTC-USDT", "ETH-USDT"]
    assert parts[2] == "ETH-USDT: hold (insufficient data: 5 candles, need 21)"


async def test_the_builtin_proposals_pass_the_risk_guard_with_default_limits() -> None:
    """What the strategy proposes by default is within the default limits."""
    ctx = context({"XBTUSDTM": DOWN, "BTC-USDT": UP})
    result = await BuiltinProvider().decide(ctx)
    accepted, refused = check_actions(result.actions, ctx.limits, ctx.guard_facts())
    assert refused == []
    assert len(accepted) == 2


async def test_the_same_inputs_give_the_same_decision() -> None:
    """The strategy is deterministic."""
    ctx = context({"XBTUSDTM": DOWN, "BTC-USDT": UP, "ETH-USDT": FLAT})
    provider = BuiltinProvider()
    assert await provider.decide(ctx) == await provider.decide(ctx)


def test_the_signal_exposes_the_indicator_values() -> None:
    """On a linear rise the EMAs lag by (n-1)/2 and the ATR is the candle range."""
    sig = signal(context({"BTC-USDT": UP}), "BTC-USDT", BuiltinParams())
    assert sig is not None
    assert round(sig.fast, 8) == D(126)
    assert round(sig.slow, 8) == D(120)
    assert sig.atr == D(2)
    assert sig.trend is Side.LONG


async def test_the_builtin_makes_no_model_calls() -> None:
    """Its usage is zero and it logs itself as `builtin`."""
    provider = BuiltinProvider()
    result = await provider.decide(context({"BTC-USDT": UP}))
    assert result.usage == Usage()
    assert provider.name == "builtin"


async def test_with_trail_atr_the_open_also_trails_a_stop() -> None:
    """trail_atr 1.5: callbackRate = 1.5 * ATR 2 / price, and the rationale says so."""
    from cogmora.domain.trailing import TrailingStop

    provider = BuiltinProvider(BuiltinParams(trail_atr=D("1.5")))
    result = await provider.decide(context(series={"BTC-USDT": UP}))
    [action] = result.actions
    assert isinstance(action, OpenPositionAction)
    assert action.trailing_stop is not None
    price = action.stop_loss + 2 * 2  # the stop sits 2 ATR (of 2) below the price
    assert action.trailing_stop == TrailingStop((D("3") / price).quantize(D("0.00000001")))
    assert "trailing 1.5xATR" in action.rationale
