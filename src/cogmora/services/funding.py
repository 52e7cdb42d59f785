"""Funding of open futures positions at KuCoin's funding times (SPEC 5.2).

A jobs pass, per futures symbol with open positions: it asks KuCoin (or the simulator,
same endpoints) for the current funding rate (`value`, and `timePoint`: the latest funding
time) and the mark price, and books `qty * markPrice * rate` on every position of the
symbol that was open before that time and has not been funded for it, as a `funding`
ledger entry against the owner's balance.

Exactly once per position per funding time, with any number of jobs replicas and passes:
each position's transaction reads it, checks `details.fundedAt` against the funding time,
and writes the entry, the balance and the new `fundedAt` together; a replica that raced
it re-runs (serializable commit) and finds it funded. A position already `closing` is
not funded (its close is decided). A pass that runs late books the latest funding time
with the rate KuCoin reports then; funding times missed entirely (a scheduler down for
more than 8 h) are not booked.
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
from cogmora.domain.funding import due, funding_amount
from cogmora.domain.models import Position
from cogmora.domain.paths import user_path
from cogmora.domain.timeutil import opt_from_iso, to_iso
from cogmora.errors import CogmoraError
from cogmora.services.clock import Clock
from cogmora.services.ledger import AccountBook
from cogmora.store import queries as q
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
        """Book `quote` on the positions at `paths` that are due, one owner at a time."""
        by_owner: dict[str, list[str]] = defaultdict(list)
        for path in paths:
            by_owner[path.split("/")[1]].append(path)
        booked = 0
        for uid, owned in sorted(by_owner.items()):

            def body(tx: Tx, uid: str = uid, owned: list[str] = owned) -> int:
                return _fund_in(tx, uid, owned, quote, self._clock.now())

            booked += await self._store.transact(body)
        return booked


def _fund_in(tx: Tx, uid: str, paths: list[str], quote: FundingQuote, now: datetime) -> int:
    docs = tx.get_many(paths)
    book = AccountBook.from_docs([tx.get(user_path(uid))])
    writes = []
    for path, doc in zip(paths, docs, strict=True):
        if doc is None or doc["details"]["status"] != PositionStatus.OPEN.value:
            continue
        position = Position.from_doc(path.rsplit("/", 1)[1], doc)
        funded = opt_from_iso(doc["details"].get("fundedAt"))
        if not due(position.opened_at, funded, quote.funding_time):
            continue
        amount = funding_amount(position.side, position.qty, quote.mark_price, quote.rate)
        note = f"funding {quote.symbol} {to_iso(quote.funding_time)} rate {quote.rate}"
        book.post(uid, [(LedgerKind.FUNDING, amount)], now, position.id, note=note)
        doc = {**doc, "details": {**doc["details"], "fundedAt": to_iso(quote.funding_time)}}
        writes.append((path, doc))
    for wpath, wdoc in book.writes():
        tx.set(wpath, wdoc)
    for path, doc in writes:
        tx.set(path, doc)
    return len(writes)
