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
from cogmora.domain.models import Doc, LedgerEntry, User
from cogmora.domain.money import quantize
from cogmora.domain.paths import ledger_path, user_path
from cogmora.errors import InsufficientBalance, NotFound


class AccountBook:
    def __init__(self, users: Iterable[User]) -> None:
        self._users = {u.uid: u for u in users}
        self._balances = {uid: (u.balance, u.ledger_seq) for uid, u in self._users.items()}
        self._touched: set[str] = set()
        self.entries: list[LedgerEntry] = []

    @classmethod
    def from_docs(cls, docs: Iterable[Doc | None]) -> AccountBook:
        return cls(User.from_doc(d) for d in docs if d is not None)

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

    def post(
        self,
        uid: str,
        lines: Iterable[tuple[LedgerKind, Decimal]],
        at: datetime,
        position_id: str | None = None,
        note: str | None = None,
    ) -> None:
        balance = self.balance(uid)
        seq = self._balances[uid][1]
        for kind, amount in lines:
            amount = quantize(amount)
            balance += amount
            seq += 1
            self.entries.append(
                LedgerEntry(new_id(), uid, seq, kind, amount, balance, at, position_id, note)
            )
        self._balances[uid] = (balance, seq)
        self._touched.add(uid)

    def writes(self) -> list[tuple[str, Doc]]:
        out = [(user_path(uid), self.user(uid).to_doc()) for uid in sorted(self._touched)]
        out += [(ledger_path(e.uid, e.id), e.to_doc()) for e in self.entries]
        return out
