"""Keeping the trigger book in step with the store's documents.

The same translation serves the loads (the seed's registered queries) and the change
feed, so a document means the same levels whichever way it reaches the worker. The loads
are the seed's: `openPositions where symbol == S and details.status == open` (and the
same for `tradeTriggers`/`active`) for one symbol, and the same without the symbol to load
everything at start. Nothing here reads closed history.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Market, PositionStatus, TriggerStatus
from cogmora.domain.models import UNREADABLE, Doc, Position, Trigger
from cogmora.engine.ladder_keys import forget_legs, leg_rows, put_legs
from cogmora.errors import Rejected
from cogmora.store import queries as q
from cogmora.store.port import Change, Tx

WATCHED_GROUPS = frozenset({"openPositions", "tradeTriggers"})
OPEN_POSITIONS = q.open_positions(status=PositionStatus.OPEN.value)
ACTIVE_TRIGGERS = q.active_triggers()
Rows = list[tuple[str, Doc]]
T = TypeVar("T")

# A document the book cannot take: unreadable, or refused (a level the book rejects).
NOT_PUT: tuple[type[Exception], ...] = (*UNREADABLE, Rejected)


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
    # Reloads in progress (`SymbolReload`): each notes the changes applied meanwhile.
    recorders: list[list[Change]] = field(default_factory=list)

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
            self.own(
                position.id, position.uid, position.symbol, position.market, position.opened_at
            )
        if d.take_profits or position.id in self.legs:
            put_legs(self, position, _second(position.opened_at))

    def put_trigger(self, trigger: Trigger) -> None:
        self.book.set_trigger(
            trigger.id, trigger.symbol, trigger.condition.op, trigger.condition.price
        )
        self.triggers[trigger.id] = trigger
        self.own(trigger.id, trigger.uid, trigger.symbol, trigger.market, trigger.created_at)

    def own(self, key: str, uid: str, symbol: str, market: Market, created: datetime) -> None:
        """What the index keeps of a key the book holds, however it was put in."""
        self.owners[key] = uid
        self.markets[symbol] = market
        self.created[key] = _second(created)

    def forget(self, key: str) -> None:
        if key in self.legs:
            forget_legs(self, key)
        self.book.remove(key)
        self.owners.pop(key, None)
        self.triggers.pop(key, None)
        self.created.pop(key, None)

    def apply(self, change: Change) -> None:
        for seen in self.recorders:
            seen.append(change)
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
    *,
    leave: Container[str] = (),
    forgettable: Container[str] | None = None,
    gone: Container[str] = (),
) -> None:
    """Make the book hold exactly the loaded levels of `symbols` (a resubscription's
    reload): what the store no longer has open is taken out, the rest put in.

    Keys in `leave` (crossings in flight) are the commit's to settle and stay as they are.
    Only keys in `forgettable` (None: any) are taken out, and keys in `gone` are not put
    back: a reload's query may be older than what happened to the book while it ran
    (`SymbolReload` passes all three)."""
    wanted = set(symbols)
    loaded = _keys(positions) | _keys(triggers)
    resting = set().union(*(index.book.keys_of(s) for s in wanted)) if wanted else set()
    for key in resting - loaded:
        if key in leave or (forgettable is not None and key not in forgettable):
            continue
        index.forget(key)
    _put_rows(positions, Position.from_doc, index.put_position, leave, gone, on_error)
    _put_rows(triggers, Trigger.from_doc, index.put_trigger, leave, gone, on_error)


def _put_rows(
    rows: Rows,
    decode: Callable[[str, Doc], T],
    put: Callable[[T], None],
    leave: Container[str],
    gone: Container[str],
    on_error: Callable[[str, Exception], None],
) -> None:
    """Put each document into the book unless its key is in `leave` or `gone`; one that
    cannot be read or put is reported and passed over."""
    for path, doc in rows:
        key = path.rsplit("/", 1)[1]
        if key in leave or key in gone:
            continue
        try:
            put(decode(key, doc))
        except NOT_PUT as exc:
            on_error(path, exc)


class SymbolReload:
    """One reload of some symbols' levels with the seed's per-symbol queries, made atomic
    with respect to the change feed and the engine's crossings.

    The query runs on a thread (or a server) while the change feed goes on applying
    changes and ticks go on crossing levels, so what it reads may be older than the book:

    - a change applied after the query's snapshot would be undone by it (a closed
      position back in the book). From construction on, every change the index applies
      is noted, and `finish` replays the noted changes of these symbols, in order, on top
      of the snapshot: each key ends as the newer of the two, and a change the feed has
      not applied yet comes later as usual;
    - a key that left the book meanwhile (crossed, or taken out by the feed) is not put
      back from the snapshot, a key that entered it meanwhile is not taken out, and keys
      in `leave` (the engine's crossings in flight) are not touched at all.

    `finish` runs without awaiting, so nothing interleaves with it. Its cost is the
    symbols' keys, not the book's.

    `reload = SymbolReload(index, symbols, leave)`; `rows = await store.read(reload.query)`;
    `reload.finish(rows, on_error)` (or `reload.abandon()` if the query failed)."""

    def __init__(
        self, index: BookIndex, symbols: Iterable[str], leave: Collection[str] = ()
    ) -> None:
        self.symbols = frozenset(symbols)
        self._index = index
        self._leave = leave
        self._seen: list[Change] = []
        self._before: set[str] = set()  # resting on the symbols when the query began
        for symbol in self.symbols:
            self._before |= index.book.keys_of(symbol)
        self._held = set(leave)  # in flight when it began
        index.recorders.append(self._seen)

    def query(self, tx: Tx) -> tuple[Rows, Rows]:
        return load_symbols(tx, self.symbols)

    def abandon(self) -> None:
        recorders = self._index.recorders
        recorders[:] = [r for r in recorders if r is not self._seen]

    def finish(self, rows: tuple[Rows, Rows], on_error: Callable[[str, Exception], None]) -> int:
        """Set the book from the query's rows, then replay what the feed applied since the
        reload began; returns how many noted changes were replayed."""
        self.abandon()
        index, symbols, leave, book = self._index, self.symbols, self._leave, self._index.book
        positions, triggers = rows
        gone = {k for k in self._before | self._held if k not in book}
        replace_symbols(
            index,
            symbols,
            positions,
            triggers,
            on_error,
            leave=leave,
            forgettable=self._before,
            gone=gone,
        )
        loaded = _keys(positions) | _keys(triggers)
        replayed = 0
        for change in self._seen:
            key = change.path.rsplit("/", 1)[1]
            if key in leave or change.group not in WATCHED_GROUPS:
                continue
            doc = change.doc
            if not (key in loaded or (doc is not None and doc.get("symbol") in symbols)):
                continue
            try:
                index.apply(change)
            except NOT_PUT as exc:
                on_error(change.path, exc)
            replayed += 1
        self._seen.clear()
        return replayed


def _keys(rows: Rows) -> set[str]:
    return {path.rsplit("/", 1)[1] for path, _ in rows}


def fill(
    index: BookIndex,
    positions: list[tuple[str, Doc]],
    triggers: list[tuple[str, Doc]],
    on_error: Callable[[str, Exception], None],
) -> None:
    """Bulk-load documents into the book (one sort per ladder, not one insert per level)."""
    rows: list[tuple[Any, ...]] = []
    for p in _readable(positions, Position.from_doc, on_error):
        d = p.details
        if d.take_profits:
            rows += leg_rows(index, p, _second(p.opened_at))
        levels = (d.stop_loss, d.take_profit, d.liquidation_price)
        if d.trailing is None and all(v is None for v in levels):
            continue
        rows.append((p.id, p.symbol, p.side, *levels, d.trailing, d.trailing_peak))
        index.own(p.id, p.uid, p.symbol, p.market, p.opened_at)
    index.book.load_positions(rows, on_error=lambda key, exc: on_error(key, exc))
    trows = []
    for t in _readable(triggers, Trigger.from_doc, on_error):
        trows.append((t.id, t.symbol, t.condition.op, t.condition.price))
        index.triggers[t.id] = t
        index.own(t.id, t.uid, t.symbol, t.market, t.created_at)
    index.book.load_triggers(trows, on_error=lambda key, exc: on_error(key, exc))


def _readable(
    rows: Rows, decode: Callable[[str, Doc], T], on_error: Callable[[str, Exception], None]
) -> Iterator[T]:
    """Each row's value; one that cannot be read is reported and passed over."""
    for path, doc in rows:
        try:
            value = decode(path.rsplit("/", 1)[1], doc)
        except UNREADABLE as exc:
            on_error(path, exc)
            continue
        yield value


def _second(at: datetime) -> int:
    """The whole second of `at` (UTC epoch); candles start and end on whole seconds."""
    return int(at.timestamp() // 1)
