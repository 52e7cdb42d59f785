"""Everything a provider sees about one user at the moment of a run, and its JSON summaries.

The runner gathers this once per run from the store and the price source; providers get
a frozen value, never the store, so a provider cannot read or write around the risk guard.
Two summaries: the prompt's (recent candles included, as compact rows) and the decision
log's (the same facts without the candle rows, which would bloat every log entry).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cogmora.domain.agent import GuardFacts, RiskLimits
from cogmora.domain.enums import PositionStatus, Source, TriggerStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Position, Trigger
from cogmora.domain.money import MONEY_CONTEXT, ZERO
from cogmora.domain.positions import gross_pnl
from cogmora.domain.timeutil import opt_iso, to_iso
from cogmora.domain.watchlist import WatchEntry

Doc = dict[str, Any]


def compact(value: Decimal | None) -> str | None:
    """A decimal as short as it can be written exactly: `130`, `0.00001234`, never `1.3E+2`."""
    return None if value is None else format(value.normalize(MONEY_CONTEXT), "f")


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed candle; `start` is the open time of its interval."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def row(self) -> list[str | None]:
        return [
            to_iso(self.start),
            compact(self.open),
            compact(self.high),
            compact(self.low),
            compact(self.close),
            compact(self.volume),
        ]


@dataclass(frozen=True, slots=True)
class AgentContext:
    """One user's account and markets as of `now`.

    `candles` are closed candles per symbol, oldest first, of `candle_interval` (KuCoin's
    names: `1min`, `15min`, `1hour`, ...). `realized_loss_today` is the net realized loss
    since UTC midnight as a positive number, zero on a profitable day.
    """

    uid: str
    now: datetime
    balance: Decimal
    equity: Decimal
    symbols: tuple[str, ...]
    limits: RiskLimits
    positions: tuple[Position, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    watch: Mapping[str, WatchEntry] = field(default_factory=dict)
    candles: Mapping[str, tuple[Candle, ...]] = field(default_factory=dict)
    candle_interval: str = "1hour"
    realized_loss_today: Decimal = ZERO
    fees: FeeSchedule = field(default_factory=FeeSchedule)

    @property
    def open_positions(self) -> tuple[Position, ...]:
        return tuple(p for p in self.positions if p.status is PositionStatus.OPEN)

    @property
    def active_triggers(self) -> tuple[Trigger, ...]:
        return tuple(t for t in self.triggers if t.status is TriggerStatus.ACTIVE)

    def price(self, symbol: str) -> Decimal | None:
        """The latest price known: the watchlist's last trade, else the last candle's close."""
        entry = self.watch.get(symbol)
        if entry is not None and entry.last_price is not None and entry.error is None:
            return entry.last_price
        candles = self.candles.get(symbol)
        return candles[-1].close if candles else None

    def guard_facts(self) -> GuardFacts:
        prices = {s: p for s in self.symbols if (p := self.price(s)) is not None}
        active = self.active_triggers
        return GuardFacts(
            now=self.now,
            symbols=frozenset(self.symbols),
            prices=prices,
            open_position_ids=frozenset(p.id for p in self.open_positions),
            active_trigger_ids=frozenset(t.id for t in active),
            pending_agent_triggers=sum(1 for t in active if t.source is Source.AGENT),
            realized_loss_today=max(ZERO, self.realized_loss_today),
            fees=self.fees,
        )

    def prompt_summary(self, max_candles: int = 48) -> Doc:
        """The facts for a model's prompt, with up to `max_candles` recent candles per symbol."""
        doc = self._facts()
        doc["candles"] = {
            symbol: {
                "interval": self.candle_interval,
                "columns": ["start", "open", "high", "low", "close", "volume"],
                "rows": [c.row() for c in series[-max_candles:]] if max_candles > 0 else [],
            }
            for symbol, series in self.candles.items()
        }
        return doc

    def log_summary(self) -> Doc:
        """The facts for the decision log: candles reduced to their count, span and last close."""
        doc = self._facts()
        doc["candles"] = {
            symbol: {
                "interval": self.candle_interval,
                "count": len(series),
                "first": to_iso(series[0].start) if series else None,
                "last": to_iso(series[-1].start) if series else None,
                "lastClose": compact(series[-1].close) if series else None,
            }
            for symbol, series in self.candles.items()
        }
        return doc

    def _facts(self) -> Doc:
        return {
            "now": to_iso(self.now),
            "account": {"balance": compact(self.balance), "equity": compact(self.equity)},
            "symbols": list(self.symbols),
            "limits": {
                "maxLeverage": compact(self.limits.max_leverage),
                "maxPositionNotional": compact(self.limits.max_position_notional),
                "maxOpenPositions": self.limits.max_open_positions,
                "maxDailyLoss": compact(self.limits.max_daily_loss),
                "realizedLossToday": compact(max(ZERO, self.realized_loss_today)),
            },
            "positions": [self._position(p) for p in self.open_positions],
            "triggers": [_trigger(t) for t in self.active_triggers],
            "markets": {s: self._market(s) for s in self.symbols},
        }

    def _position(self, p: Position) -> Doc:
        price = self.price(p.symbol)
        pnl = None if price is None else gross_pnl(p.side, p.qty, p.entry_price, price)
        return {
            "id": p.id,
            "symbol": p.symbol,
            "market": p.market.value,
            "side": p.side.value,
            "qty": compact(p.qty),
            "entryPrice": compact(p.entry_price),
            "leverage": compact(p.leverage),
            "margin": compact(p.margin),
            "stopLoss": compact(p.details.stop_loss),
            "takeProfit": compact(p.details.take_profit),
            "liquidationPrice": compact(p.details.liquidation_price),
            "unrealizedPnl": compact(pnl),
            "source": p.source.value,
            "openedAt": to_iso(p.opened_at),
        }

    def _market(self, symbol: str) -> Doc:
        entry = self.watch.get(symbol)
        doc: Doc = {"price": compact(self.price(symbol))}
        if entry is not None:
            doc |= {
                "market": entry.market.value,
                "changeRate24h": compact(entry.change_rate_24h),
                "high24h": compact(entry.high_24h),
                "low24h": compact(entry.low_24h),
                "volume24h": compact(entry.volume_24h),
                "error": entry.error,
            }
        return doc


def _trigger(t: Trigger) -> Doc:
    a = t.action
    return {
        "id": t.id,
        "symbol": t.symbol,
        "market": t.market.value,
        "op": t.condition.op.value,
        "price": compact(t.condition.price),
        "side": a.side.value,
        "qty": compact(a.qty),
        "notional": compact(a.notional),
        "leverage": compact(a.leverage),
        "stopLoss": compact(a.stop_loss),
        "takeProfit": compact(a.take_profit),
        "expiresAt": opt_iso(t.expires_at),
        "source": t.source.value,
    }
