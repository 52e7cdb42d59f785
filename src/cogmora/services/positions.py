"""Opening, amending and closing positions for a user: the API's and the agent's path.

A close here only marks the position `closing` at the latest fresh price (compare-and-set
from `open`); the close handler settles it. The worker closes through the same state
machine, so a manual close racing a stop loss has exactly one winner.

Every path here that moves a user's money runs in the user document's lane
(`store.lanes`): a process never races itself on a balance. Opens go further: those that
queue for one user while a transaction is in flight are committed together in the next
one (`GroupCommit`), each still all-or-nothing for itself, so 16 concurrent opens over 5
users cost about 5 transactions at a time instead of 16 that abort each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cogmora.domain import trailing as trail
from cogmora.domain.enums import CloseReason, Market, PositionStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import Doc, Position, User
from cogmora.domain.money import ZERO
from cogmora.domain.orders import OpenRequest, build_position, check_request
from cogmora.domain.partial import check_part
from cogmora.domain.paths import position_path, user_path
from cogmora.domain.positions import mark_value, open_ledger, validate_levels
from cogmora.domain.takeprofits import TakeProfitLeg, amend_ladder, check_leg_sizes
from cogmora.errors import CogmoraError, Conflict, NotFound, ValidationError
from cogmora.services import idempotency
from cogmora.services.clock import Clock
from cogmora.services.idempotency import IdempotencyKey
from cogmora.services.ledger import AccountBook
from cogmora.services.partials import close_part
from cogmora.services.prices import PriceSource, fresh_price
from cogmora.services.symbols import SymbolCatalog
from cogmora.store import queries as q
from cogmora.store.lanes import GroupCommit, Outcome, lanes
from cogmora.store.port import Store, Tx

ACTIVE = (PositionStatus.OPEN, PositionStatus.CLOSING)
# An open writes its position, two ledger entries and maybe an idempotency record; the
# user document once per batch. 50 keeps a batch's feed-log entry far below 1 MiB too.
OPEN_WRITES = 4
MAX_OPEN_BATCH = 50


@dataclass(frozen=True, slots=True)
class AccountView:
    uid: str
    balance: Decimal
    equity: Decimal
    margin_used: Decimal
    unrealized_pnl: Decimal


def position_doc(position: Position) -> Doc:
    """The API's form: the stored document plus its id."""
    return {"id": position.id, **position.to_doc()}


def book_open(tx: Tx, book: AccountBook, position: Position) -> None:
    """The writes half of every open: debit margin and fee, create the position.

    Raises InsufficientBalance before anything is written, so a refused open moves nothing.
    """
    book.require(position.uid, position.margin + position.fee_open)
    book.post(
        position.uid,
        open_ledger(position.margin, position.fee_open),
        position.opened_at,
        position.id,
    )
    tx.create(position.path, position.to_doc())


@dataclass(frozen=True, slots=True)
class _Open:
    position: Position
    key: IdempotencyKey | None
    now: datetime


def open_batch(tx: Tx, items: list[_Open]) -> list[Outcome[Doc]]:
    """Book several opens of ONE user in this transaction, each all-or-nothing for itself:
    a refused one (insufficient balance, a reused idempotency key) writes nothing and the
    others still book; the user document is written once."""
    outcomes: list[Outcome[Doc] | None] = []
    for item in items:  # every read before the first write
        try:
            outcomes.append(idempotency.replay(tx, item.key))
        except CogmoraError as exc:
            outcomes.append(exc)
    uid = items[0].position.uid
    book = AccountBook.from_docs([tx.get(user_path(uid))])
    for i, item in enumerate(items):
        if outcomes[i] is not None:
            continue
        position = item.position
        try:
            book.require(uid, position.margin + position.fee_open)
        except CogmoraError as exc:
            outcomes[i] = exc
            continue
        book_open(tx, book, position)
        answer = position_doc(position)
        idempotency.record(tx, item.key, answer, item.now)
        outcomes[i] = answer
    for path, doc in book.writes():
        tx.set(path, doc)
    return [o for o in outcomes if o is not None]


def mark_closing(position: Position, reason: CloseReason, price: Decimal, clock: Clock) -> Position:
    return position.with_details(
        status=PositionStatus.CLOSING,
        close_reason=reason,
        close_price=price,
        close_requested_at=clock.now(),
    )


def _check_amendable(position: Position) -> None:
    """A level of a position already `closing` or `closed` is history: the worker (or the
    user) has decided its close, and changing the level now would contradict it."""
    if position.status is not PositionStatus.OPEN:
        raise Conflict(
            f"position {position.id} is {position.status.value}, not open: "
            "its stop loss and take profit can no longer change"
        )


def amended_ladder(
    position: Position,
    ladder: tuple[TakeProfitLeg, ...],
    move_after: int | None,
    reference: Decimal,
    name: str,
) -> dict[str, Any]:
    """The details a `PATCH` of `takeProfits` / `moveStopToEntryAfter` sets (checked)."""
    d = position.details
    if ladder == d.take_profits and move_after == d.move_stop_to_entry_after:
        return {}
    if not ladder and d.legs_filled:
        raise ValidationError("takeProfits", "takeProfits has filled legs and cannot be cleared")
    amend_ladder(
        position.side, d.take_profits, d.legs_filled, ladder, None, move_after, reference, name
    )
    return {
        "take_profits": ladder,
        "move_stop_to_entry_after": move_after if ladder else None,
        "original_qty": (d.original_qty or position.qty) if ladder else None,
    }


def _load(tx: Tx, uid: str, pid: str) -> Position:
    doc = tx.get(position_path(uid, pid))
    if doc is None:
        raise NotFound(f"position {pid} not found")
    return Position.from_doc(pid, doc)


class Positions:
    def __init__(
        self,
        store: Store,
        prices: PriceSource,
        catalog: SymbolCatalog,
        fees: FeeSchedule,
        clock: Clock,
        max_price_age: float = 5.0,
    ) -> None:
        self._store = store
        self._prices = prices
        self._catalog = catalog
        self._fees = fees
        self._clock = clock
        self._max_age = max_price_age
        self._lanes = lanes(store)
        limit = min(MAX_OPEN_BATCH, (store.max_writes_per_tx - 1) // OPEN_WRITES)
        self._opens: GroupCommit[_Open, Doc] = GroupCommit(
            store,
            self._commit_opens,
            limit=limit,
            token=lambda item: None if item.key is None else item.key.path,
        )

    async def _commit_opens(self, user: str, items: list[_Open]) -> list[Outcome[Doc]]:
        return await self._store.transact(lambda tx: open_batch(tx, items))

    async def open(self, uid: str, request: OpenRequest, key: IdempotencyKey | None = None) -> Doc:
        """Open at the latest fresh price; returns the position's API document."""
        if key is not None:
            first = await self._store.read(lambda tx: idempotency.replay(tx, key))
            if first is not None:
                return first
        self._catalog.check(request.market, request.symbol)
        check_request(request, self._fees)
        now = self._clock.now()
        quote = await fresh_price(self._prices, request.symbol, request.market, now, self._max_age)
        position = build_position(request, uid, new_id(), quote.price, self._fees, now)
        min_size = self._catalog.spec(request.symbol).min_size
        check_leg_sizes(position.details.take_profits, position.qty, min_size, request.symbol)
        if request.expires_at is not None and request.expires_at <= now:
            raise ValidationError("expiresAt", "expiresAt must be in the future")
        return await self._opens.submit(user_path(uid), _Open(position, key, now))

    async def request_close(
        self,
        uid: str,
        pid: str,
        reason: CloseReason = CloseReason.MANUAL,
        key: IdempotencyKey | None = None,
        qty: Decimal | None = None,
    ) -> Doc:
        """Mark `closing` at the latest fresh price; 409 if it is not open any more.

        With `qty` less than the open qty, that share is settled at once instead (a
        partial close, `services.partials`): the answer is the open part, with the closed
        part's history document as `closedPart`."""
        if key is not None:
            first = await self._store.read(lambda tx: idempotency.replay(tx, key))
            if first is not None:
                return first
        current = await self.get(uid, pid)
        if current.status is not PositionStatus.OPEN:
            raise Conflict(f"position {pid} is {current.status.value}, not open")
        min_size = self._catalog.spec(current.symbol).min_size
        if qty is not None:
            check_part(qty, current.qty, min_size, current.symbol)
        now = self._clock.now()
        quote = await fresh_price(self._prices, current.symbol, current.market, now, self._max_age)

        def body(tx: Tx) -> Doc:
            first = idempotency.replay(tx, key)
            if first is not None:
                return first
            position = _load(tx, uid, pid)
            if position.status is not PositionStatus.OPEN:
                raise Conflict(f"position {pid} is {position.status.value}, not open")
            if qty is not None and qty != position.qty:
                # Checked again on what is stored now: a leg may have filled since.
                check_part(qty, position.qty, min_size, position.symbol)
                book = AccountBook.from_docs([tx.get(user_path(uid))])
                rest, part_id, part = close_part(
                    tx, book, position, qty, quote.price, reason, self._fees, now
                )
                tx.set(rest.path, rest.to_doc())
                for path, doc in book.writes():
                    tx.set(path, doc)
                answer = {**position_doc(rest), "closedPart": {"id": part_id, **part}}
                idempotency.record(tx, key, answer, now)
                return answer
            closing = mark_closing(position, reason, quote.price, self._clock)
            tx.set(closing.path, closing.to_doc())
            answer = position_doc(closing)
            idempotency.record(tx, key, answer, now)
            return answer

        if qty is None:  # a full close writes the position only
            return await self._store.transact(body)
        return await self._lanes.transact([user_path(uid)], body)

    async def amend(self, uid: str, pid: str, changes: dict[str, Any]) -> Doc:
        """Change SL/TP (None clears) on an open position, checked against the current price.

        The reference is the latest price, not the entry: a trader trailing a stop above
        the entry on a winning long is doing the right thing; one placing it above the
        current price would be closed by the very next tick.
        """
        current = await self.get(uid, pid)
        _check_amendable(current)
        quote = await self._prices.latest(current.symbol, current.market)
        now = self._clock.now()
        fresh = quote is not None and (now - quote.at).total_seconds() <= self._max_age
        min_size = self._catalog.spec(current.symbol).min_size

        def body(tx: Tx) -> Doc:
            position = _load(tx, uid, pid)
            _check_amendable(position)
            details = position.details
            stop_loss = changes.get("stopLoss", details.stop_loss)
            take_profit = changes.get("takeProfit", details.take_profit)
            if fresh and quote is not None:
                reference, name = quote.price, "current price"
            else:
                reference, name = position.entry_price, "entry price"
            validate_levels(
                position.side, reference, stop_loss, take_profit, details.liquidation_price, name
            )
            ladder = changes.get("takeProfits", details.take_profits) or ()
            move_after = changes.get("moveStopToEntryAfter", details.move_stop_to_entry_after)
            if take_profit is not None and ladder:
                raise ValidationError(
                    "takeProfit", "takeProfit cannot be set on a position with takeProfits"
                )
            ladder_changes = amended_ladder(position, ladder, move_after, reference, name)
            if ladder_changes.get("take_profits"):
                original = ladder_changes["original_qty"]
                check_leg_sizes(ladder, original, min_size, position.symbol)
            ladder_changes.update(stop_loss=stop_loss, take_profit=take_profit)
            trailing = changes.get("trailingStop", details.trailing)
            trail.validate(position.side, reference, trailing, name)
            if trailing != details.trailing:  # new parameters trail from now (SPEC 5.2)
                peak, stop = trail.initial_peak(position.side, trailing, reference)
                ladder_changes.update(trailing=trailing, trailing_peak=peak, trailing_stop=stop)
            amended = position.with_details(**ladder_changes)
            tx.set(amended.path, amended.to_doc())
            return position_doc(amended)

        return await self._store.transact(body)

    async def get(self, uid: str, pid: str) -> Position:
        return await self._store.read(lambda tx: _load(tx, uid, pid))

    async def list_for_user(self, uid: str, status: PositionStatus | None = None) -> list[Position]:
        query = q.user_newest_first(
            "openPositions", uid, "openedAt", None if status is None else status.value
        )
        rows = await self._store.read(lambda tx: tx.query(query))
        return [Position.from_doc(path.rsplit("/", 1)[1], doc) for path, doc in rows]

    async def history(self, uid: str, limit: int = 500) -> list[Doc]:
        query = q.Query("positionHistory", parent=user_path(uid)).order_by("closedAt", "desc")
        rows = await self._store.read(lambda tx: tx.query(query.limited(limit)))
        return [{"id": path.rsplit("/", 1)[1], **doc} for path, doc in rows]

    async def account(self, uid: str) -> AccountView:
        def body(tx: Tx) -> tuple[User, list[Position]]:
            doc = tx.get(user_path(uid))
            if doc is None:
                raise NotFound(f"user {uid} not found")
            out = []
            for status in ACTIVE:
                query = q.user_newest_first("openPositions", uid, "openedAt", status.value)
                out += [Position.from_doc(p.rsplit("/", 1)[1], d) for p, d in tx.query(query)]
            return User.from_doc(doc), out

        user, positions = await self._store.read(body)
        quotes = {}  # one price per symbol, however many positions share it
        for p in positions:
            if p.symbol not in quotes:
                quotes[p.symbol] = await self._prices.latest(p.symbol, p.market)
        equity, margin, upnl = user.balance, ZERO, ZERO
        for p in positions:
            quote = quotes[p.symbol]
            price = p.details.close_price or (quote.price if quote else p.entry_price)
            value = mark_value(p.market, p.side, p.qty, p.entry_price, p.margin, price)
            equity += value
            # isolated margin: a position can lose its margin and no more, as equity says
            upnl += value - p.margin
            if p.market is Market.FUTURES:
                margin += p.margin
        return AccountView(uid, user.balance, equity, margin, upnl)
