"""A user's changes, as they commit: what `GET /v1/events` streams.

The store's change feed leaves the ledger and position history out (a settlement storm
would otherwise write every entry twice). A user still sees them: each change to their
user document (its balance and `ledgerSeq`) brings the ledger entries booked since the
last one streamed, and each settled position brings its history document, which is the
closed position itself.

When the store's feed was pruned past the stream's cursor (the client fell that far
behind), the stream sends one `resync` event, `{"seq": head, "collection": "resync",
"path": null, "doc": null}`: the changes in between are gone, so the client reloads what
it shows (GET /v1/account, /v1/positions, /v1/triggers, ...) and the stream goes on from
that head, never silently skipping what it missed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from cogmora.domain.enums import PositionStatus
from cogmora.domain.paths import history_path, ledger_path
from cogmora.errors import FeedResync
from cogmora.services.accounts import Accounts
from cogmora.store.port import Store

USER_GROUPS = frozenset(
    {
        "users",
        "openPositions",
        "tradeTriggers",
        "watchlist",
        "agent",
        "agentDecisions",
    }
)
Event = dict[str, Any]
RESYNC = "resync"  # the event that tells a client to reload its view


def event(seq: int, collection: str, path: str | None, doc: dict[str, Any] | None) -> Event:
    return {"seq": seq, "collection": collection, "path": path, "doc": doc}


class UserEvents:
    def __init__(self, store: Store, accounts: Accounts) -> None:
        self._store = store
        self._accounts = accounts

    async def follow(self, uid: str, wait: float = 15.0) -> AsyncIterator[list[Event]]:
        """Batches of events from now on; an empty batch after `wait` seconds of quiet.

        The first batch is always empty and comes at once: once it has arrived the
        cursor is set, so a caller can subscribe before it tells its client it is ready.
        """
        after = await self._store.head()
        ledger_seq = (await self._accounts.get_user(uid)).ledger_seq
        parts_seen: dict[str, int] = {}  # position id -> the last part shown
        yield []
        while True:
            try:
                changes = await self._store.changes(after, uid=uid, groups=USER_GROUPS, wait=wait)
            except FeedResync:
                after = await self._store.head()
                ledger_seq = (await self._accounts.get_user(uid)).ledger_seq
                yield [event(after, RESYNC, None, None)]
                continue
            batch: list[Event] = []
            for c in changes:
                after = c.seq
                batch.append(event(c.seq, c.group, c.path, c.doc))
                doc = c.doc or {}
                if c.group == "users" and int(doc.get("ledgerSeq", 0)) > ledger_seq:
                    for entry in await self._accounts.ledger(uid, after=ledger_seq):
                        path = ledger_path(uid, entry.id)
                        batch.append(
                            event(c.seq, "ledger", path, {"id": entry.id, **entry.to_doc()})
                        )
                        ledger_seq = max(ledger_seq, entry.seq)
                elif (
                    c.group == "openPositions"
                    and doc.get("details", {}).get("status") == PositionStatus.CLOSED.value
                ):
                    pid = c.path.rsplit("/", 1)[1]
                    batch.append(event(c.seq, "positionHistory", history_path(uid, pid), doc))
                if c.group == "openPositions" and doc.get("details", {}).get("parts"):
                    batch += await self._parts(c.seq, uid, c.path, doc, parts_seen)
            yield batch

    async def _parts(
        self, seq: int, uid: str, path: str, doc: dict[str, Any], seen: dict[str, int]
    ) -> list[Event]:
        """The history documents of a position's partial closes not shown yet (SPEC 5.2):
        like a full close's, the change feed does not carry them."""
        pid = path.rsplit("/", 1)[1]
        parts = int(doc["details"]["parts"])
        first = seen.get(pid, parts - 1) + 1
        seen[pid] = parts
        paths = [history_path(uid, f"{pid}-{n}") for n in range(first, parts + 1)]
        if not paths:
            return []
        docs = await self._store.read(lambda tx: tx.get_many(paths))
        return [
            event(seq, "positionHistory", p, {"id": p.rsplit("/", 1)[1], **d})
            for p, d in zip(paths, docs, strict=True)
            if d is not None
        ]
