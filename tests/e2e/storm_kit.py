"""A storm on disk, for the CLI tests: users with long BTC-USDT positions whose stop loss
one tick crosses, written as the API would book them, and an audit of the aftermath."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from cogmora.domain.enums import Market, PositionStatus, Side, Source
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import User
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import user_path
from cogmora.services.accounts import Accounts
from cogmora.services.clock import SystemClock
from cogmora.store import queries as q
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore


async def seed(path: Path, positions: int, users: int) -> None:
    """`positions` longs at 60000 with a stop loss at 59000, spread over `users` users."""
    store = SqliteStore(path)
    await store.start()
    now = datetime.now(UTC)
    uids = [f"u{i}" for i in range(users)]
    accounts = Accounts(store, SystemClock())
    for uid in uids:
        await accounts.create_user(uid, Decimal("1000000"))
    fees = FeeSchedule()
    request = OpenRequest(
        "BTC-USDT",
        Market.SPOT,
        Side.LONG,
        qty=Decimal("0.01"),
        stop_loss=Decimal("59000"),
        source=Source.API,
    )

    def write(tx: Tx) -> None:
        # Positions are written with their opening debit, as the API would book them.
        from cogmora.services.ledger import AccountBook
        from cogmora.services.positions import book_open

        book = AccountBook.from_docs(tx.get_many([user_path(u) for u in uids]))
        for i in range(positions):
            p = build_position(request, uids[i % users], new_id(), Decimal("60000"), fees, now)
            book_open(tx, book, p)
        for wpath, doc in book.writes():
            tx.set(wpath, doc)

    await store.transact(write)
    await store.close()


async def audit(path: Path, users: int) -> tuple[int, int]:
    """(closed positions, users whose ledger does not sum to their balance); asserts that
    every closed position has exactly one history document and one close entry."""
    store = SqliteStore(path)
    await store.start()

    def body(tx: Tx) -> tuple[int, int, int, int]:
        closed = tx.query(q.positions_with_status("closed"))
        bad = 0
        closes = 0
        histories = 0
        for i in range(users):
            uid = f"u{i}"
            user = User.from_doc(tx.get(user_path(uid)) or {})
            entries = tx.query(
                q.Query("ledger", parent=user_path(uid)).where("seq", ">", 0).order_by("seq", "asc")
            )
            if sum(Decimal(d["amount"]) for _, d in entries) != user.balance:
                bad += 1
            closes += sum(1 for _, d in entries if d["kind"] == "close")
            histories += len(
                tx.query(
                    q.Query("positionHistory", parent=user_path(uid)).order_by("closedAt", "desc")
                )
            )
        return len(closed), bad, closes, histories

    closed, bad, closes, histories = await store.read(body)
    await store.close()
    assert closes == closed == histories, (closes, closed, histories)
    return closed, bad


async def count(path: Path, status: PositionStatus) -> int:
    store = SqliteStore(path)
    await store.start()
    rows = await store.read(lambda tx: tx.query(q.positions_with_status(status.value)))
    await store.close()
    return len(rows)
