"""AccountBook: the only code that moves a balance, and always with ledger entries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from cogmora.api.errors import status_of
from cogmora.domain.enums import LedgerKind
from cogmora.domain.models import LedgerEntry, User
from cogmora.errors import InsufficientBalance, NotFound
from cogmora.services.ledger import AccountBook

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_post_books_each_line_with_a_running_balance_and_sequence() -> None:
    """Each line becomes one entry; balanceAfter is the running sum and seq counts on."""
    book = AccountBook([User("alice", D(100), NOW, ledger_seq=4)])
    book.post("alice", [(LedgerKind.OPEN, D(-60)), (LedgerKind.FEE, D("-0.06"))], NOW, "p1")
    assert book.user("alice").balance == D("39.94")
    assert book.user("alice").ledger_seq == 6
    assert [(e.seq, e.amount, e.balance_after, e.position_id) for e in book.entries] == [
        (5, D(-60), D(40), "p1"),
        (6, D("-0.06"), D("39.94"), "p1"),
    ]


def test_post_quantizes_each_amount_so_the_ledger_sums_to_the_balance() -> None:
    """Amounts finer than 8 places are stored rounded, and the balance moves by exactly that."""
    book = AccountBook([User("alice", D(0), NOW)])
    book.post("alice", [(LedgerKind.DEPOSIT, D("0.000000015"))] * 3, NOW)
    assert [e.amount for e in book.entries] == [D("0.00000002")] * 3
    assert book.user("alice").balance == D("0.00000006") == sum(e.amount for e in book.entries)


def test_writes_hold_the_touched_users_and_every_new_entry() -> None:
    """Only users who were posted to are rewritten, with one document per entry."""
    book = AccountBook([User("a", D(10), NOW), User("b", D(10), NOW)])
    book.post("b", [(LedgerKind.DEPOSIT, D(1))], NOW, note="gift")
    writes = dict(book.writes())
    assert set(writes) == {"users/b", f"users/b/ledger/{book.entries[0].id}"}
    assert writes["users/b"]["balance"] == "11.00000000"
    entry = LedgerEntry.from_doc(book.entries[0].id, writes[f"users/b/ledger/{book.entries[0].id}"])
    assert (entry.kind, entry.amount, entry.note) == (LedgerKind.DEPOSIT, D(1), "gift")


def test_require_refuses_more_than_the_balance_with_the_spec_message() -> None:
    """A need above the balance is `insufficient balance: need X, have Y`; equal is fine."""
    book = AccountBook([User("alice", D("10.5"), NOW)])
    book.require("alice", D("10.5"))
    with pytest.raises(InsufficientBalance) as info:
        book.require("alice", D("10.500000001"))
    assert str(info.value) == "insufficient balance: need 10.50000000, have 10.5"
    assert status_of(info.value) == 422


def test_unknown_user_is_not_found() -> None:
    """Posting to a user the transaction did not load is NotFound, not a new account."""
    book = AccountBook.from_docs([None])
    with pytest.raises(NotFound):
        book.post("ghost", [(LedgerKind.DEPOSIT, D(1))], NOW)
