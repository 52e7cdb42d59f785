"""Building one user's `AgentContext` from the store and KuCoin candles.

One read transaction gives a consistent picture of the account (balance, open positions,
active triggers, watchlist stats, today's closed positions); equity comes from the same
`Positions.account` the API answers `GET /v1/account` with, so the agent and the user see
the same number. Candles that cannot be fetched leave that symbol's series empty (the
providers then hold for want of data) and a note in the decision log, rather than failing
the whole run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal

from cogmora.domain.agent import AgentConfig
from cogmora.domain.enums import PositionStatus, TriggerStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Position, Trigger, User
from cogmora.domain.money import ZERO
from cogmora.domain.paths import user_path
from cogmora.domain.timeutil import to_iso
from cogmora.domain.watchlist import WatchEntry
from cogmora.errors import CogmoraError, NotFound
from cogmora.jobs.agent.context import AgentContext, Candle
from cogmora.jobs.market import CandleSource, candle_interval
from cogmora.services.positions import Positions
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx

DEFAULT_CANDLES = 100


@dataclass(frozen=True, slots=True)
class _Facts:
    user: User
    positions: tuple[Position, ...]
    triggers: tuple[Trigger, ...]
    watch: dict[str, WatchEntry]
    realized_today: Decimal


def _id(path: str) -> str:
    return path.rsplit("/", 1)[1]


def read_facts(tx: Tx, uid: str, symbols: frozenset[str], since: datetime) -> _Facts:
    parent = user_path(uid)
    doc = tx.get(parent)
    if doc is None:
        raise NotFound(f"user {uid} not found")
    positions = tx.query(
        q.Query("openPositions", parent=parent)
        .where("details.status", "==", PositionStatus.OPEN.value)
        .order_by("openedAt", "desc")
    )
    triggers = tx.query(
        q.Query("tradeTriggers", parent=parent)
        .where("details.status", "==", TriggerStatus.ACTIVE.value)
        .order_by("createdAt", "desc")
    )
    watch = tx.query(q.Query("watchlist", parent=parent))
    closed = tx.query(
        q.Query("positionHistory", parent=parent)
        .where("closedAt", ">=", to_iso(since))
        .order_by("closedAt", "asc")
    )
    entries = (WatchEntry.from_doc(d) for _, d in watch)
    return _Facts(
        user=User.from_doc(doc),
        positions=tuple(Position.from_doc(_id(p), d) for p, d in positions),
        triggers=tuple(Trigger.from_doc(_id(p), d) for p, d in triggers),
        watch={e.symbol: e for e in entries if e.symbol in symbols},
        realized_today=sum((Decimal(d.get("realizedPnl") or 0) for _, d in closed), ZERO),
    )


class ContextBuilder:
    def __init__(
        self,
        store: Store,
        positions: Positions,
        candles: CandleSource,
        fees: FeeSchedule,
        candle_count: int = DEFAULT_CANDLES,
    ) -> None:
        self._store = store
        self._positions = positions
        self._candles = candles
        self._fees = fees
        self._count = candle_count

    async def build(
        self, uid: str, config: AgentConfig, now: datetime
    ) -> tuple[AgentContext, list[str]]:
        """The context, and notes for the log about what could not be gathered."""
        midnight = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
        symbols = frozenset(config.symbols)
        facts = await self._store.read(lambda tx: read_facts(tx, uid, symbols, midnight))
        account = await self._positions.account(uid)
        interval = candle_interval(config.schedule)
        fetched = await asyncio.gather(
            *(self._candles.candles(s, interval, now, self._count) for s in config.symbols),
            return_exceptions=True,
        )
        series: dict[str, tuple[Candle, ...]] = {}
        notes: list[str] = []
        for symbol, result in zip(config.symbols, fetched, strict=True):
            if isinstance(result, CogmoraError):
                notes.append(f"no candles for {symbol}: {result}")
                series[symbol] = ()
            elif isinstance(result, BaseException):
                raise result
            else:
                series[symbol] = result
        ctx = AgentContext(
            uid=uid,
            now=now,
            balance=facts.user.balance,
            equity=account.equity,
            symbols=config.symbols,
            limits=config.risk,
            positions=facts.positions,
            triggers=facts.triggers,
            watch=facts.watch,
            candles=series,
            candle_interval=interval,
            realized_loss_today=max(ZERO, -facts.realized_today),
            fees=self._fees,
        )
        return ctx, notes
