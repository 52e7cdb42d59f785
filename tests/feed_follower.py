"""Reading the change feed the way a follower does, while writers commit: what the feed
tests of every backend (and of several PostgreSQL replicas) check for gaps and doubles."""

from __future__ import annotations

import asyncio

from cogmora.store.port import Change, Store


async def follow_until(store: Store, start: int, done: asyncio.Event) -> list[Change]:
    """Every change after `start`, read cursor by cursor (each read waiting briefly for
    more), until `done` is set and a read begun after it finds nothing new: so a change
    committed before `done` was set is always in the answer."""
    seen: list[Change] = []
    cursor = start
    while True:
        finished = done.is_set()  # checked before reading: the last read sees it all
        got = await store.changes(cursor, wait=0.05)
        seen.extend(got)
        if got:
            cursor = got[-1].seq
        elif finished:
            return seen
