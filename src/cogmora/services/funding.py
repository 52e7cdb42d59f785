"""Funding of open futures positions at KuCoin's funding times (SPEC 5.2).

A jobs pass, per futures symbol with open positions: it asks KuCoin (or the simulator,
same endpoints) for the current funding rate (`value`, and `timePoint`: the latest funding
time) and the mark price, and books `qty * markPrice * rate` on every position of the
symbol that was open before that time and has not been funded for it, as a `funding`
ledger entry against the owner's balance.

Exactly once per position per funding time, with any number of jobs replicas and passes:
an owner's transaction reads the positions, then moves each one's `details.fundedAt`
with a compare-and-set that expects the value it read (and `open`), and books entries
only for the positions that set changed, with the balance, in the same commit. A
replica that raced it finds `fundedAt` moved and books nothing (or re-runs, on a
serializable conflict, and finds it funded). A position already `closing` is not funded
(its close is decided). Only `fundedAt` is written, never the whole document, so the
worker's own writes to the position (its trailing peak) are never overwritten. Each
owner's transaction runs in the owner's document lane (`store.lanes`): it rewrites the
balance, so in a process that also serves opens it waits for them instead of aborting
them.

Funding times missed entirely (no jobs process for more than one period) are booked
when one comes back: every funding time after the position opened and after its
`fundedAt` (`domain.funding.missed_times`), oldest first, at most `MAX_TIMES` a position
a transaction and `MAX_ENTRIES` entries a transaction, the rest by the next
transactions and passes. KuCoin's REST (and the simulator) give only the *current*
rate and mark price, so a missed time is booked with those, and its entry's note says
so (`missed, current rate`); README "Behaviour where the spec is silent" states the rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

import structlog

from cogmora.domain.enums import LedgerKind, Market, PositionStatus
from cogmora.domain.funding import funding_amount, missed_times
from cogmora.domain.models import Position
from cogmora.domain.paths import user_path
from cogmora.domain.timeutil import opt_from_iso, to_iso
from cogmora.errors import CogmoraError
from cogmora.services.clock import Clock
from cogmora.services.ledger import AccountBook
from cogmora.store import queries as q
from cogmora.store.lanes import lanes
from cogmora.store.port import Store, Tx

log = structlog.get_logger("cogmora.funding")
OPEN = q.open_positions(status=PositionStatus.OPEN.value)


@dataclass(frozen=True, slots=True)
class FundingQuote:
    symbol: str
    rate: Decimal
    funding_time: datetime
    mark_price: Decimal
    period: timedelta = timedelta(hours=8)  # KuCoin's granularity


class FundingSource(Protocol):
    async def quote(self, symbol: str) -> FundingQuote | None: ...


class Funding:
    def __init__(self, store: Store, source: FundingSource, clock: Clock) -> None:
        self._store = store
        self._source = source
        self._clock = clock
        # Until then no symbol can have a funding time this process has not booked: the
        # minute's pass skips its query of every open position (a large read at scale).
        self._next_due: datetime | None = None

    async def run_once(self) -> int:
        """Fund what is due at each symbol's latest funding time; returns entries booked."""
        if self._next_due is not None and self._clock.now() < self._next_due:
            return 0
        rows = await self._store.read(lambda tx: tx.query(OPEN))
        by_symbol: dict[str, list[str]] = defaultdict(list)
        for path, doc in rows:
            if doc.get("market") == Market.FUTURES.value:
                by_symbol[doc["symbol"]].append(path)
        booked = 0
        now = self._clock.now()
        next_due: datetime | None = None
        complete = True
        for symbol, paths in sorted(by_symbol.items()):
            try:
                quote = await self._source.quote(symbol)
            except CogmoraError as exc:
                log.warning("no funding rate; next pass", symbol=symbol, error=str(exc))
                complete = False
                continue
            if quote is None or quote.funding_time > now:
                complete = False
                continue
            booked += await self.fund(paths, quote)
            due_at = quote.funding_time + quote.period
            next_due = due_at if next_due is None else min(next_due, due_at)
        self._next_due = next_due if complete else None
        return booked

    async def fund(self, paths: Sequence[str], quote: FundingQuote) -> int:
        """Book `quote` on the positions at `paths` that are due, one owner at a time
        (several transactions for an owner with a backlog of missed times)."""
        by_owner: dict[str, list[str]] = defaultdict(list)
        for path in paths:
            by_owner[path.split("/")[1]].append(path)
        budget = max(1, min(MAX_ENTRIES, (self._store.max_writes_per_tx - 1) // 2))
        booked = 0
        for uid, owned in sorted(by_owner.items()):

            def body(tx: Tx, uid: str = uid, owned: list[str] = owned) -> tuple[int, bool]:
                return _fund_in(tx, uid, owned, quote, self._clock.now(), budget)

            while True:
                count, more = await lanes(self._store).transact([user_path(uid)], body)
                booked += count
                if not more or not count:
                    break
        return booked


# A week of missed times per position per transaction, and entries per transaction well
# inside Firestore's 500 writes (each entry is a write, each position's CAS another).
MAX_TIMES = 21
MAX_ENTRIES = 240


def _fund_in(
    tx: Tx, uid: str, paths: list[str], quote: FundingQuote, now: datetime, budget: int
) -> tuple[int, bool]:
    """Book what is due on `uid`'s positions at `paths`, at most `budget` entries; returns
    (entries booked, whether some were left for another transaction)."""
    docs = tx.get_many(paths)
    book = AccountBook.from_docs([tx.get(user_path(uid))])
    plans: list[tuple[str, Position, str | None, list[datetime]]] = []
    left = budget
    more = False
    for path, doc in zip(paths, docs, strict=True):
        if doc is None or doc["details"]["status"] != PositionStatus.OPEN.value:
            continue
        position = Position.from_doc(path.rsplit("/", 1)[1], doc)
        stored = doc["details"].get("fundedAt")
        times = missed_times(
            position.opened_at, opt_from_iso(stored), quote.funding_time, quote.period,
            MAX_TIMES + 1,
        )
        if not times:
            continue
        if len(times) > min(MAX_TIMES, left):
            more = True
            times = times[: min(MAX_TIMES, left)]
        if not times:
            break
        left -= len(times)
        plans.append((path, position, stored, times))
    by_cas: dict[tuple[str | None, str], list[tuple[str, Position, list[datetime]]]] = {}
    for path, position, stored, times in plans:
        by_cas.setdefault((stored, to_iso(times[-1])), []).append((path, position, times))
    booked = 0
    for (stored, last), group in by_cas.items():
        # Only the fundedAt this transaction read: a replica that booked first moved it.
        expect = {"details.status": PositionStatus.OPEN.value, "details.fundedAt": stored}
        changed = set(tx.compare_and_set([g[0] for g in group], expect, {"details.fundedAt": last}))
        for path, position, times in group:
            if path not in changed:
                continue
            amount = funding_amount(position.side, position.qty, quote.mark_price, quote.rate)
            for at in times:
                note = f"funding {quote.symbol} {to_iso(at)} rate {quote.rate}"
                if at != quote.funding_time:
                    note += f" (missed, current rate at {to_iso(quote.funding_time)})"
                book.post(uid, [(LedgerKind.FUNDING, amount)], now, position.id, note=note)
                booked += 1
    for wpath, wdoc in book.writes():
        tx.set(wpath, wdoc)
    return booked, more
