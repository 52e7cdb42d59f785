"""Posting balance changes: the only code that changes a balance, always with ledger entries.

Each transaction that moves money loads the users it touches into an `AccountBook`, posts
entries against it in memory, and writes the users and the new ledger documents together,
so the balance is by construction the sum of the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from cogmora.domain.enums import LedgerKind
from cogmora.domain.ids import new_id
from cogmora.domain.models import Doc, LedgerEntry, User, ledger_path, user_path
from cogmora.domain.money import quantize
from cogmora.errors import InsufficientBalance, NotFound


class AccountBook:
    def __init__(self, users: Iterable[User]) -> None:
        self._users = {u.uid: u for u in users}
        self._touched: set[str] = set()
        self.entries: list[LedgerEntry] = []

    @classmethod
    def from_docs(cls, docs: Iterable[Doc | None]) -> AccountBook:
        return cls(User.from_doc(d) for d in docs if d is not None)

    def user(self, uid: str) -> User:
        try:
            return self._users[uid]
        except KeyError:
            raise NotFound(f"user {uid} not found") from None

    def require(self, uid: str, amount: Decimal) -> None:
        have = self.user(uid).balance
        if have < amount:
            raise InsufficientBalance(quantize(amount), have)

    def post(
        self,
        uid: str,
        lines: Iterable[tuple[LedgerKind, Decimal]],
        at: datetime,
        position_id: str | None = None,
        note: str | None = None,
    ) -> None:
        user = self.user(uid)
        balance, seq = user.balance, user.ledger_seq
        for kind, amount in lines:
            amount = quantize(amount)
            balance += amount
            seq += 1
            self.entries.append(
                LedgerEntry(new_id(), uid, seq, kind, amount, balance, at, position_id, note)
            )
        self._users[uid] = replace(user, balance=balance, ledger_seq=seq)
        self._touched.add(uid)

    def writes(self) -> list[tuple[str, Doc]]:
        out = [(user_path(uid), self._users[uid].to_doc()) for uid in sorted(self._touched)]
        out += [(ledger_path(e.uid, e.id), e.to_doc()) for e in self.entries]
        return out
