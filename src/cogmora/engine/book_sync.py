"""Keeping the trigger book in step with the store's documents.

The same translation serves the loads (the seed's registered queries) and the change
feed, so a document means the same levels whichever way it reaches the worker. The loads
are the seed's: `openPositions where symbol == S and details.status == open` (and the
same for `tradeTriggers`/`active`) for one symbol, and the same without the symbol to load
everything at start. Nothing here reads closed history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market, PositionStatus, TriggerStatus
from cogmora.domain.models import Doc, Position, Trigger
from cogmora.engine.ladder_keys import forget_legs, leg_rows, put_legs
from cogmora.errors import Rejected
from cogmora.store import queries as q
from cogmora.store.port import Change, Tx

WATCHED_GROUPS = frozenset({"openPositions", "tradeTriggers"})
OPEN_POSITIONS = q.open_positions(status=PositionStatus.OPEN.value)
ACTIVE_TRIGGERS = q.active_triggers()
Rows = list[tuple[str, Doc]]


@dataclass(slots=True)
class BookIndex:
    """What the book itself does not keep: who owns each key, what each trigger will do."""

    book: TriggerBook
    owners: dict[str, str] = field(default_factory=dict)  # position/trigger id -> uid
    triggers: dict[str, Trigger] = field(default_factory=dict)
    markets: dict[str, Market] = field(default_factory=dict)  # symbol -> market
    # key -> creation second (openedAt / createdAt): a gap's candle that ended before a key
    # existed says nothing about it (SPEC 5.1).
    created: dict[str, int] = field(default_factory=dict)
    legs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # id -> its legs' keys

    def put_position(self, position: Position) -> None:
        d = position.details
        self.book.set_position(
            position.id,
            position.symbol,
            position.side,
            d.stop_loss,
            d.take_profit,
            d.liquidation_price,
            d.trailing,
            d.trailing_peak,
        )
        if position.id in self.book:
            self.owners[position.id] = position.uid
            self.markets[position.symbol] = position.market
            self.created[position.id] = _second(position.opened_at)
        if d.take_profits or position.id in self.legs:
            put_legs(self, position, _second(position.opened_at))

    def put_trigger(self, trigger: Trigger) -> None:
        self.book.set_trigger(
            trigger.id, trigger.symbol, trigger.condition.op, trigger.condition.price
        )
        self.owners[trigger.id] = trigger.uid
        self.triggers[trigger.id] = trigger
        self.markets[trigger.symbol] = trigger.market
        self.created[trigger.id] = _second(trigger.created_at)

    def forget(self, key: str) -> None:
        if key in self.legs:
            forget_legs(self, key)
        self.book.remove(key)
        self.owners.pop(key, None)
        self.triggers.pop(key, None)
        self.created.pop(key, None)

    def apply(self, change: Change) -> None:
        key = change.path.rsplit("/", 1)[1]
        doc = change.doc
        if change.group == "openPositions":
            if doc is None or doc["details"]["status"] != PositionStatus.OPEN.value:
                self.forget(key)
            else:
                self.put_position(Position.from_doc(key, doc))
        elif change.group == "tradeTriggers":
            if doc is None or doc["details"]["status"] != TriggerStatus.ACTIVE.value:
                self.forget(key)
            else:
                self.put_trigger(Trigger.from_doc(key, doc))


def load_all(tx: Tx) -> tuple[Rows, Rows]:
    """Every open position and active trigger (the seed's queries without the symbol)."""
    return tx.query(OPEN_POSITIONS), tx.query(ACTIVE_TRIGGERS)


def load_symbols(tx: Tx, symbols: Iterable[str]) -> tuple[Rows, Rows]:
    """The open positions and active triggers of `symbols`, one seed query per symbol and
    group: what a worker that follows some symbols (or resubscribes one) loads."""
    positions: Rows = []
    triggers: Rows = []
    for symbol in sorted(set(symbols)):
        positions += tx.query(q.open_positions(symbol, PositionStatus.OPEN.value))
        triggers += tx.query(q.active_triggers(symbol))
    return positions, triggers


def replace_symbols(
    index: BookIndex,
    symbols: Iterable[str],
    positions: Rows,
    triggers: Rows,
    on_error: Callable[[str, Exception], None],
) -> None:
    """Make the book hold exactly the loaded levels of `symbols` (a resubscription's
    reload): what the store no longer has open is taken out, the rest put in. The change
    feed then carries on from a cursor taken before the load, so nothing is lost between."""
    wanted = set(symbols)
    loaded = {path.rsplit("/", 1)[1] for path, _ in positions} | {
        path.rsplit("/", 1)[1] for path, _ in triggers
    }
    for key in [k for k in index.owners if k not in loaded]:
        levels = index.book.levels_for(key)
        if levels is not None and levels.symbol in wanted:
            index.forget(key)
    for path, doc in positions:
        try:
            index.put_position(Position.from_doc(path.rsplit("/", 1)[1], doc))
        except (KeyError, ValueError, Rejected) as exc:
            on_error(path, exc)
    for path, doc in triggers:
        try:
            index.put_trigger(Trigger.from_doc(path.rsplit("/", 1)[1], doc))
        except (KeyError, ValueError, Rejected) as exc:
            on_error(path, exc)


def fill(
    index: BookIndex,
    positions: list[tuple[str, Doc]],
    triggers: list[tuple[str, Doc]],
    on_error: Callable[[str, Exception], None],
) -> None:
    """Bulk-load documents into the book (one sort per ladder, not one insert per level)."""
    rows: list[tuple[Any, ...]] = []
    for path, doc in positions:
        try:
            p = Position.from_doc(path.rsplit("/", 1)[1], doc)
        except (KeyError, ValueError) as exc:
            on_error(path, exc)
            continue
        d = p.details
        if d.take_profits:
            rows += leg_rows(index, p, _second(p.opened_at))
        levels = (d.stop_loss, d.take_profit, d.liquidation_price)
        if d.trailing is None and all(v is None for v in levels):
            continue
        rows.append((p.id, p.symbol, p.side, *levels, d.trailing, d.trailing_peak))
        index.owners[p.id] = p.uid
        index.markets[p.symbol] = p.market
        index.created[p.id] = _second(p.opened_at)
    index.book.load_positions(rows, on_error=lambda key, exc: on_error(key, exc))
    trows = []
    for path, doc in triggers:
        try:
            t = Trigger.from_doc(path.rsplit("/", 1)[1], doc)
        except (KeyError, ValueError) as exc:
            on_error(path, exc)
            continue
        trows.append((t.id, t.symbol, t.condition.op, t.condition.price))
        index.owners[t.id] = t.uid
        index.triggers[t.id] = t
        index.markets[t.symbol] = t.market
        index.created[t.id] = _second(t.created_at)
    index.book.load_triggers(trows, on_error=lambda key, exc: on_error(key, exc))


def _second(at: datetime) -> int:
    """The whole second of `at` (UTC epoch); candles start and end on whole seconds."""
    return int(at.timestamp() // 1)
