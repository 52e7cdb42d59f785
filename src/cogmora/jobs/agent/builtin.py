"""The builtin provider: a deterministic trend follower that needs no network and no key.

It exists so every user can run an agent, tests have a provider whose every decision is
known in advance, and the LLM provider has a baseline to be compared with.

Indicators, on each agent symbol's closed candles (oldest first), in exact Decimals:

- EMA9 and EMA21 of the closes (seeded with the simple average of the first 9 / 21
  closes, then `ema += 2/(n+1) * (close - ema)`).
- ATR14, Wilder's average true range (`TR = max(high-low, |high-prevClose|,
  |low-prevClose|)`, seeded with the mean of the first 14 TRs, then
  `atr = (13*atr + TR) / 14`).

Trend: **up** when EMA9 > EMA21 x 1.001, **down** when EMA9 < EMA21 x 0.999, else
**flat** (the 0.1% band stops a sideways market from flipping the signal every run).

Rules, per symbol, in the config's symbol order. Only positions the agent opened
(`source` agent) are its business; the user's own positions are never touched:

1. Fewer than 21 candles, or no price: **hold** ("insufficient data").
2. An agent position against the trend (a long in a downtrend, a short in an uptrend):
   **close** it. Nothing new is opened on that symbol in the same run; the next run
   opens in the new direction if the trend still holds.
3. An agent position on the symbol otherwise: **hold**; its SL/TP manage it.
4. Flat: **hold**.
5. Up: **open long**. Down: **open short** on futures; **hold** on spot (spot cannot
   short).

An open is sized at 10% of the balance as `notional`, capped at `maxPositionNotional`
and rounded down to 8 places; leverage 1 on spot, `min(2, maxLeverage)` on futures.
From the latest price P (the watchlist's last trade, else the last close): a long's stop
loss is P - 2 x ATR and its take profit P + 3 x ATR; a short's are P + 2 x ATR and
P - 3 x ATR. It holds instead when the ATR is 0, the stop would be at or below 0, or the
stop would sit past the liquidation price at that leverage.

The strategy re-enters while a trend lasts: a long stopped out in an uptrend is followed
by a new long on the next run. SL/TP bound each entry's loss, and the risk guard's
`maxDailyLoss` bounds the day's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from cogmora.domain.agent import Action, ClosePositionAction, HoldAction, OpenPositionAction
from cogmora.domain.enums import Market, PositionStatus, Side, Source
from cogmora.domain.money import ONE, ZERO, quantize, quantize_down
from cogmora.domain.positions import liquidation_price
from cogmora.domain.trailing import MAX_CALLBACK_RATE, TrailingStop
from cogmora.domain.watchlist import market_of
from cogmora.jobs.agent.context import AgentContext, Candle, compact
from cogmora.jobs.agent.indicators import atr, ema
from cogmora.jobs.agent.provider import ProviderResult


@dataclass(frozen=True, slots=True)
class BuiltinParams:
    fast: int = 9
    slow: int = 21
    atr_period: int = 14
    band: Decimal = Decimal("0.001")
    stop_atr: Decimal = Decimal(2)
    target_atr: Decimal = Decimal(3)
    balance_fraction: Decimal = Decimal("0.1")
    futures_leverage: Decimal = Decimal(2)
    # With a value, the open also trails a stop this many ATRs behind the best price
    # (SPEC 5.2): callbackRate = trail_atr * ATR / price, kept within (0, 0.5].
    trail_atr: Decimal | None = None

    @property
    def min_candles(self) -> int:
        return max(self.slow, self.fast, self.atr_period + 1)


@dataclass(frozen=True, slots=True)
class Signal:
    fast: Decimal
    slow: Decimal
    atr: Decimal
    trend: Side | None

    def describe(self, params: BuiltinParams) -> str:
        trend = {Side.LONG: "uptrend", Side.SHORT: "downtrend", None: "flat"}[self.trend]
        return (
            f"EMA{params.fast} {_show(self.fast)}, EMA{params.slow} {_show(self.slow)}: "
            f"{trend}; ATR{params.atr_period} {_show(self.atr)}"
        )


class BuiltinProvider:
    """Signals are memoized per candle series: at a slot, thousands of agents look at the
    same few symbols' identical candles, and the Decimal EMAs are the run's main CPU cost."""

    def __init__(self, params: BuiltinParams | None = None, memo_size: int = 1024) -> None:
        self._params = params or BuiltinParams()
        # Keyed by the series object (shared by every context built from one candle fetch);
        # holding the series keeps its id from being reused while the entry lives.
        self._memo: dict[int, tuple[tuple[Candle, ...], Signal | None]] = {}
        self._memo_size = memo_size

    @property
    def name(self) -> str:
        return "builtin"

    async def decide(self, ctx: AgentContext) -> ProviderResult:
        return decide(ctx, self._params, self._signal)

    def _signal(self, ctx: AgentContext, symbol: str, params: BuiltinParams) -> Signal | None:
        series = ctx.candles.get(symbol, ())
        hit = self._memo.get(id(series))
        if hit is not None and hit[0] is series:
            return hit[1]
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
        sig = signal(ctx, symbol, params)
        self._memo[id(series)] = (series, sig)
        return sig


def signal(ctx: AgentContext, symbol: str, params: BuiltinParams) -> Signal | None:
    candles = ctx.candles.get(symbol, ())
    if len(candles) < params.min_candles:
        return None
    closes = [c.close for c in candles]
    fast = ema(closes, params.fast)
    slow = ema(closes, params.slow)
    volatility = atr([c.high for c in candles], [c.low for c in candles], closes, params.atr_period)
    trend: Side | None = None
    if fast > slow * (ONE + params.band):
        trend = Side.LONG
    elif fast < slow * (ONE - params.band):
        trend = Side.SHORT
    return Signal(fast, slow, volatility, trend)


SignalFn = Callable[[AgentContext, str, BuiltinParams], Signal | None]


def decide(
    ctx: AgentContext, params: BuiltinParams, signal_of: SignalFn | None = None
) -> ProviderResult:
    actions: list[Action] = []
    notes: list[str] = []
    for symbol in ctx.symbols:
        chosen = _decide_symbol(ctx, symbol, params, signal_of or signal)
        actions.extend(chosen)
        notes.append(f"{symbol}: {'; '.join(_verb(a) for a in chosen)}")
    return ProviderResult(actions=tuple(actions), rationale=" | ".join(notes))


def _decide_symbol(
    ctx: AgentContext, symbol: str, params: BuiltinParams, signal_of: SignalFn
) -> list[Action]:
    price = ctx.price(symbol)
    sig = signal_of(ctx, symbol, params)
    if sig is None:
        count = len(ctx.candles.get(symbol, ()))
        why = f"{count} candles, need {params.min_candles}"
        return [HoldAction(f"insufficient data: {why}", symbol)]
    if price is None:  # unreachable while the last close stands in for a price; kept honest
        return [HoldAction("insufficient data: no price", symbol)]
    mine = [
        p
        for p in ctx.positions
        if p.symbol == symbol and p.source is Source.AGENT and p.status is PositionStatus.OPEN
    ]
    described = sig.describe(params)
    against = [p for p in mine if sig.trend is not None and p.side is not sig.trend]
    if against:
        return [
            ClosePositionAction(p.id, f"{described}; trend turned against this {p.side.value}")
            for p in against
        ]
    if mine:
        return [HoldAction(f"{described}; already {mine[0].side.value}, SL/TP manage it", symbol)]
    if sig.trend is None:
        return [HoldAction(f"{described}; no trend", symbol)]
    market = market_of(symbol)
    if market is Market.SPOT and sig.trend is Side.SHORT:
        return [HoldAction(f"{described}; spot cannot short", symbol)]
    return [_open(ctx, symbol, market, sig, price, params, described)]


def _open(
    ctx: AgentContext,
    symbol: str,
    market: Market,
    sig: Signal,
    price: Decimal,
    params: BuiltinParams,
    described: str,
) -> Action:
    side = sig.trend
    assert side is not None
    if sig.atr <= 0:
        return HoldAction(f"{described}; no volatility to set a stop from", symbol)
    sign = ONE if side is Side.LONG else -ONE
    stop = quantize(price - sign * params.stop_atr * sig.atr)
    target = quantize(price + sign * params.target_atr * sig.atr)
    if stop <= 0 or target <= 0:
        return HoldAction(f"{described}; volatility too high for a stop", symbol)
    leverage = None
    if market is Market.FUTURES:
        leverage = min(params.futures_leverage, ctx.limits.max_leverage)
        liq = liquidation_price(side, price, leverage, ctx.fees.maintenance_margin_rate)
        if (stop <= liq) if side is Side.LONG else (stop >= liq):
            return HoldAction(f"{described}; the stop would sit past liquidation", symbol)
    notional = quantize_down(
        min(ctx.balance * params.balance_fraction, ctx.limits.max_position_notional)
    )
    if notional <= ZERO:
        return HoldAction(f"{described}; balance too low to open", symbol)
    trailing, trailed = _trailing(sig, price, params)
    return OpenPositionAction(
        symbol,
        market,
        side,
        notional=notional,
        leverage=leverage,
        stop_loss=stop,
        take_profit=target,
        rationale=(
            f"{described}; stop {params.stop_atr}xATR at {_show(stop)}, "
            f"target {params.target_atr}xATR at {_show(target)}{trailed}"
        ),
        trailing_stop=trailing,
    )


def _trailing(
    sig: Signal, price: Decimal, params: BuiltinParams
) -> tuple[TrailingStop | None, str]:
    """The trailing stop `trail_atr` asks for, and how the rationale says it."""
    if params.trail_atr is None or price <= 0:
        return None, ""
    rate = quantize(params.trail_atr * sig.atr / price)
    rate = min(MAX_CALLBACK_RATE, max(rate, Decimal("0.00000001")))
    return TrailingStop(rate), f", trailing {params.trail_atr}xATR ({_show(rate)})"


def _verb(action: Action) -> str:
    if isinstance(action, OpenPositionAction):
        return f"open {action.side.value} ({action.rationale})"
    if isinstance(action, ClosePositionAction):
        return f"close {action.position_id} ({action.rationale})"
    return f"hold ({action.rationale})"


def _show(value: Decimal) -> str:
    return compact(quantize(value)) or "0"
