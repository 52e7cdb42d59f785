"""Users, hashed bearer tokens and deposits, on a real SQLite store."""

from __future__ import annotations

import sqlite3
from decimal import Decimal as D
from pathlib import Path

import pytest

from cogmora.cli.compose import System
from cogmora.domain.enums import LedgerKind
from cogmora.errors import Conflict, NotFound, ValidationError
from cogmora.services.accounts import hash_token


async def test_create_user_books_the_opening_balance_as_a_deposit(system: System) -> None:
    """A new user's balance is the sum of one deposit entry."""
    user, _ = await system.accounts.create_user("alice", D("1000.5"))
    assert user.balance == D("1000.5")
    stored = await system.accounts.get_user("alice")
    assert stored.balance == D("1000.5")
    assert stored.currency == "USDT"
    entries = await system.accounts.ledger("alice")
    assert [(e.kind, e.amount, e.balance_after, e.seq) for e in entries] == [
        (LedgerKind.DEPOSIT, D("1000.5"), D("1000.5"), 1)
    ]


async def test_zero_opening_balance_writes_no_ledger_entry(system: System) -> None:
    """A user created with nothing has an empty ledger and a zero balance."""
    user, _ = await system.accounts.create_user("zero", D(0))
    assert user.balance == 0
    assert await system.accounts.ledger("zero") == []


async def test_token_is_stored_only_as_its_hash(system: System, db_path: Path) -> None:
    """The bearer token resolves to its user, and the database file never holds it in clear."""
    _, token = await system.accounts.create_user("alice", D(1))
    assert await system.accounts.uid_for_token(token) == "alice"
    assert await system.accounts.uid_for_token(token + "x") is None
    with sqlite3.connect(db_path) as conn:
        dump = "\n".join(conn.iterdump())
    assert token not in dump
    assert hash_token(token) in dump


async def test_two_users_get_different_tokens(system: System) -> None:
    """Tokens are random per user."""
    _, t1 = await system.accounts.create_user("a", D(0))
    _, t2 = await system.accounts.create_user("b", D(0))
    assert t1 != t2
    assert len(t1) >= 32


async def test_duplicate_user_is_a_conflict_and_changes_nothing(system: System) -> None:
    """Creating an existing uid again is refused and leaves the first user as it was."""
    await system.accounts.create_user("alice", D(5))
    with pytest.raises(Conflict, match="user alice already exists"):
        await system.accounts.create_user("alice", D(500))
    assert (await system.accounts.get_user("alice")).balance == D(5)
    assert len(await system.accounts.ledger("alice")) == 1


@pytest.mark.parametrize("uid", ["", "a b", "x" * 65, "a/b", "é"])
async def test_bad_uid_is_refused(system: System, uid: str) -> None:
    """A uid that could not be a safe path segment is refused, naming the field."""
    with pytest.raises(ValidationError) as info:
        await system.accounts.create_user(uid, D(1))
    assert info.value.field == "uid"


async def test_negative_opening_balance_is_refused(system: System) -> None:
    """An opening balance below zero is refused."""
    with pytest.raises(ValidationError, match="balance must not be negative"):
        await system.accounts.create_user("alice", D(-1))


async def test_deposit_adds_a_ledger_entry_with_the_running_balance(system: System) -> None:
    """Each deposit adds one entry whose balanceAfter is the new balance."""
    await system.accounts.create_user("alice", D(100))
    user = await system.accounts.deposit("alice", D("0.25"))
    assert user.balance == D("100.25")
    user = await system.accounts.deposit("alice", D(50))
    assert user.balance == D("150.25")
    entries = await system.accounts.ledger("alice")
    assert [e.balance_after for e in entries] == [D(100), D("100.25"), D("150.25")]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert sum(e.amount for e in entries) == user.balance


async def test_deposit_to_an_unknown_user_is_not_found(system: System) -> None:
    """Money cannot be deposited for a user who does not exist."""
    with pytest.raises(NotFound, match="user ghost not found"):
        await system.accounts.deposit("ghost", D(1))


@pytest.mark.parametrize("amount", [D(0), D(-5)])
async def test_non_positive_deposit_is_refused(system: System, amount: D) -> None:
    """A deposit must add money."""
    await system.accounts.create_user("alice", D(1))
    with pytest.raises(ValidationError, match="amount must be greater than 0"):
        await system.accounts.deposit("alice", amount)
    assert (await system.accounts.get_user("alice")).balance == D(1)


async def test_get_unknown_user_is_not_found(system: System) -> None:
    """Reading a user who does not exist is NotFound."""
    with pytest.raises(NotFound):
        await system.accounts.get_user("nobody")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (D("1e400"), "amount is too large"),
        (D("1e20"), "amount is too large"),
        (D("NaN"), "amount must be a finite number"),
        (D("0.000000001"), "amount must have at most 8 decimal places"),
        (D("1.123456789"), "amount must have at most 8 decimal places"),
    ],
)
async def test_deposits_the_ledger_could_not_book_exactly_are_refused(
    system: System, amount: D, message: str
) -> None:
    """An amount that would be rounded (or overflow) on its way into the ledger is refused."""
    await system.accounts.create_user("alice", D(1))
    with pytest.raises(ValidationError) as info:
        await system.accounts.deposit("alice", amount)
    assert str(info.value) == message
    assert (await system.accounts.get_user("alice")).balance == D(1)
    assert len(await system.accounts.ledger("alice")) == 1


@pytest.mark.parametrize("balance", [D("1e400"), D("0.000000001")])
async def test_opening_balances_the_ledger_could_not_book_exactly_are_refused(
    system: System, balance: D
) -> None:
    """The opening balance obeys the same rule, and no user is created."""
    with pytest.raises(ValidationError) as info:
        await system.accounts.create_user("alice", balance)
    assert info.value.field == "balance"
    with pytest.raises(NotFound):
        await system.accounts.get_user("alice")
