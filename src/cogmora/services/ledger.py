"""Posting balance changes: the only code that changes a balance, always with ledger entries;
and reading a user's ledger through filters the store serves from its indexes.

Each transaction that moves money loads the users it touches into an `AccountBook`, posts
entries against it in memory, and writes the users and the new ledger documents together,
so the balance is by construction the sum of the ledger.

Reading (`read_ledger`): Firestore allows a range on one field only, so a page is either
in booking order (`seq > cursor`, optionally of one kind) or, when a time range is asked
for, in time order (`at` in range, then `seq`). Both shapes are registered queries
(`USER_LEDGER[_BY_KIND]`, `USER_LEDGER[_BY_KIND]_BETWEEN`), so no filter is applied after
the fact on a whole ledger read into memory.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from cogmora.domain.enums import LedgerKind
from cogmora.domain.ids import new_id
from cogmora.domain.models import Doc, LedgerEntry, User, ledger_doc
from cogmora.domain.money import in_money_context, quantize
from cogmora.domain.paths import ledger_path, user_path
from cogmora.domain.timeutil import from_iso, to_iso
from cogmora.errors import InsufficientBalance, NotFound, ValidationError
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx

_Line = tuple[str, str, int, LedgerKind, Decimal, Decimal, datetime, str | None, str | None]


class AccountBook:
    def __init__(self, users: Iterable[User]) -> None:
        self._users = {u.uid: u for u in users}
        self._balances = {uid: (u.balance, u.ledger_seq) for uid, u in self._users.items()}
        self._touched: set[str] = set()
        # LedgerEntry's fields as plain tuples: a settlement batch posts 2,000 entries, and
        # building each frozen dataclass cost more than its maths (`entries` builds them).
        self._lines: list[_Line] = []

    @classmethod
    def from_docs(cls, docs: Iterable[Doc | None]) -> AccountBook:
        return cls(User.from_doc(d) for d in docs if d is not None)

    @property
    def entries(self) -> list[LedgerEntry]:
        """The entries posted so far, in posting order."""
        return [LedgerEntry(*line) for line in self._lines]

    def user(self, uid: str) -> User:
        try:
            user = self._users[uid]
        except KeyError:
            raise NotFound(f"user {uid} not found") from None
        balance, seq = self._balances[uid]
        if (balance, seq) != (user.balance, user.ledger_seq):
            user = self._users[uid] = replace(user, balance=balance, ledger_seq=seq)
        return user

    def balance(self, uid: str) -> Decimal:
        if uid not in self._balances:
            raise NotFound(f"user {uid} not found")
        return self._balances[uid][0]

    def require(self, uid: str, amount: Decimal) -> None:
        have = self.balance(uid)
        if have < amount:
            raise InsufficientBalance(quantize(amount), have)

    @in_money_context
    def post(
        self,
        uid: str,
        lines: Iterable[tuple[LedgerKind, Decimal]],
        at: datetime,
        position_id: str | None = None,
        note: str | None = None,
    ) -> None:
        self.post_in_context(uid, lines, at, position_id, note)

    def post_in_context(
        self,
        uid: str,
        lines: Iterable[tuple[LedgerKind, Decimal]],
        at: datetime,
        position_id: str | None = None,
        note: str | None = None,
    ) -> None:
        """`post` for a caller already in MONEY_CONTEXT (a settlement batch enters it once)."""
        try:
            balance, seq = self._balances[uid]
        except KeyError:
            raise NotFound(f"user {uid} not found") from None
        append = self._lines.append
        for kind, amount in lines:
            amount = quantize(amount)
            balance += amount
            seq += 1
            append((new_id(), uid, seq, kind, amount, balance, at, position_id, note))
        self._balances[uid] = (balance, seq)
        self._touched.add(uid)

    def writes(self) -> list[tuple[str, Doc]]:
        out = [(user_path(uid), self.user(uid).to_doc()) for uid in sorted(self._touched)]
        isos: dict[datetime, str] = {}
        for lid, uid, seq, kind, amount, after, at, pid, note in self._lines:
            iso = isos.get(at)
            if iso is None:
                iso = isos[at] = to_iso(at)
            doc = ledger_doc(uid, seq, kind, amount, after, iso, pid, note)
            out.append((ledger_path(uid, lid), doc))
        return out


# ---------------------------------------------------------------- reading, filtered


@dataclass(frozen=True, slots=True)
class LedgerCursor:
    """Where a page ended: the last entry's seq and time, enough to resume either order."""

    seq: int
    at: datetime

    def encode(self) -> str:
        raw = f"{self.seq}|{to_iso(self.at)}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> LedgerCursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            seq, at = raw.split("|")
            return cls(int(seq), from_iso(at))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValidationError(
                "cursor", "cursor: is not a cursor this API gave (X-Next-Cursor)"
            ) from None

    @classmethod
    def of(cls, entry: LedgerEntry) -> LedgerCursor:
        return cls(entry.seq, entry.at)


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """`since` is included, `until` excluded; `limit` None is every matching entry."""

    kind: LedgerKind | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: LedgerCursor | None = None
    limit: int | None = None

    @property
    def by_time(self) -> bool:
        return self.since is not None or self.until is not None


@dataclass(frozen=True, slots=True)
class LedgerPage:
    entries: list[LedgerEntry]
    next: LedgerCursor | None  # None: nothing more matches


def _query(uid: str, f: LedgerFilter, limit: int | None) -> q.Query:
    query = q.Query("ledger", parent=user_path(uid))
    if f.kind is not None:
        query = query.where("kind", "==", f.kind.value)
    if f.by_time:
        lows = [t for t in (f.since, f.cursor.at if f.cursor else None) if t is not None]
        if lows:
            query = query.where("at", ">=", to_iso(max(lows)))
        if f.until is not None:
            query = query.where("at", "<", to_iso(f.until))
        query = query.order_by("at").order_by("seq")
    else:
        query = query.where("seq", ">", f.cursor.seq if f.cursor else 0).order_by("seq")
    return query if limit is None else query.limited(limit)


def _after_cursor(entry: LedgerEntry, cursor: LedgerCursor | None) -> bool:
    """In time order, entries booked at the cursor's own time up to its seq were on the
    page before (the query can only say `at >= cursor.at`)."""
    return cursor is None or (entry.at, entry.seq) > (cursor.at, cursor.seq)


async def read_ledger(store: Store, uid: str, f: LedgerFilter) -> LedgerPage:
    """One page of the user's ledger matching `f`, and the cursor of the next if any."""
    if f.since is not None and f.until is not None and f.until <= f.since:
        raise ValidationError("until", "until: must be after since")
    want = None if f.limit is None else f.limit + 1  # one more: is there a next page?
    fetch = want
    while True:
        query = _query(uid, f, fetch)

        def body(tx: Tx, query: q.Query = query) -> list[tuple[str, Doc]]:
            return tx.query(query)

        rows = await store.read(body)
        entries = [LedgerEntry.from_doc(path.rsplit("/", 1)[1], doc) for path, doc in rows]
        if f.by_time:
            entries = [e for e in entries if _after_cursor(e, f.cursor)]
        # Skipped entries at the cursor's time can leave a short page: fetch more then.
        if want is None or fetch is None or len(entries) >= want or len(rows) < fetch:
            break
        fetch *= 2
    if f.limit is not None and len(entries) > f.limit:
        entries = entries[: f.limit]
        return LedgerPage(entries, LedgerCursor.of(entries[-1]))
    return LedgerPage(entries, None)
