"""What the replica race tests share: seeding positions, racing one replica, checking money.

Kept in its own module so a spawned subprocess can import `replica_main` by name.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from cogmora.domain.enums import CloseReason, LedgerKind, Market, PositionStatus, Side
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import User
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.services.accounts import Accounts
from cogmora.services.clock import SystemClock
from cogmora.services.crossings import PositionHit, apply_crossings
from cogmora.services.ledger import AccountBook
from cogmora.services.positions import book_open
from cogmora.services.settlement import Settler
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx
from cogmora.store.postgres import PostgresStore

FEES = FeeSchedule()
DEPOSIT = Decimal("1000000")


@dataclass(frozen=True)
class Seeded:
    uids: list[str]
    positions: list[tuple[str, str]]  # (uid, pid)


async def seed(store: Store, users: int, per_user: int) -> Seeded:
    """`users` users with a deposit, each with `per_user` open futures positions, booked
    through the same code as an API open (ledger entries included)."""
    now = datetime.now(UTC)
    uids = [f"r{i:03d}" for i in range(users)]
    request = OpenRequest(
        "XBTUSDTM", Market.FUTURES, Side.LONG, qty=Decimal("0.01"), leverage=Decimal(10)
    )

    def body(tx: Tx) -> list[tuple[str, str]]:
        book = AccountBook([User(uid, Decimal(0), now) for uid in uids])
        out = []
        for uid in uids:
            book.post(uid, [(LedgerKind.DEPOSIT, DEPOSIT)], now, note="seed")
            for _ in range(per_user):
                p = build_position(request, uid, new_id(), Decimal("60000"), FEES, now)
                book_open(tx, book, p)
                out.append((uid, p.id))
        for path, doc in book.writes():
            tx.set(path, doc)
        return out

    return Seeded(uids, await store.transact(body))


async def race(store: Store, positions: Sequence[tuple[str, str]], seed_: int) -> list[str]:
    """One replica: compare-and-set every position open -> closing, in bursts of 100 in its
    own random order, then settle whatever is closing. Returns the ids this replica won."""
    rng = random.Random(seed_)
    order = list(positions)
    rng.shuffle(order)
    won: list[str] = []
    for i in range(0, len(order), 100):
        hits = [
            PositionHit(uid, pid, CloseReason.MANUAL, Decimal("60100"))
            for uid, pid in order[i : i + 100]
        ]
        now = datetime.now(UTC)
        out = await store.transact(
            lambda tx, hits=hits, now=now: apply_crossings(tx, hits, [], FEES, now)
        )
        won += [h.position_id for h in out.closing]
    await Settler(store, FEES, SystemClock(), batch_size=100).settle_all()
    return won


async def check_books(store: Store, seeded: Seeded) -> None:
    """Every position closed exactly once: one history document and one close credit
    each, and every balance the sum of its ledger."""
    accounts = Accounts(store, SystemClock())
    per_user: dict[str, set[str]] = {}
    for uid, pid in seeded.positions:
        per_user.setdefault(uid, set()).add(pid)
    for uid in seeded.uids:
        user = await accounts.get_user(uid)
        entries = await accounts.ledger(uid)
        assert sum((e.amount for e in entries), Decimal(0)) == user.balance, uid
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1)), uid
        closes = [e.position_id for e in entries if e.kind is LedgerKind.CLOSE]
        assert sorted(closes) == sorted(per_user[uid]), uid  # each credited once
        history = q.Query("positionHistory", parent=f"users/{uid}").order_by("closedAt", "desc")
        rows = await store.read(lambda tx, h=history: tx.query(h))
        assert sorted(p.rsplit("/", 1)[1] for p, _ in rows) == sorted(per_user[uid]), uid
        mine = q.Query("openPositions", parent=f"users/{uid}").order_by("openedAt", "desc")
        docs = await store.read(lambda tx, m=mine: tx.query(m))
        assert {d["details"]["status"] for _, d in docs} == {PositionStatus.CLOSED.value}, uid


def replica_main(url: str, positions: list[tuple[str, str]], seed_: int) -> list[str]:
    """A replica in its own process: its own store, pool and event loop."""

    async def run() -> list[str]:
        store = PostgresStore(url, pool_size=2)
        await store.start()
        try:
            return await race(store, positions, seed_)
        finally:
            await store.close()

    return asyncio.run(run())
