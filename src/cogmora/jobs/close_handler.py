"""The close handler: settles every `closing` position, woken by the store's change feed.

On start it settles whatever a crash left `closing`; then it sleeps on the change feed
and settles within milliseconds of the worker's (or the API's) compare-and-set. A one
second fallback pass covers a change feed that missed something.
"""

from __future__ import annotations

import structlog

from cogmora.errors import FeedResync
from cogmora.services.settlement import Settler
from cogmora.store.port import Store

log = structlog.get_logger("cogmora.close_handler")
WATCHED = frozenset({"openPositions"})


async def run_close_handler(store: Store, settler: Settler, idle_wait: float = 1.0) -> None:
    cursor = await store.head()
    recovered = await settler.settle_all()
    if recovered:
        log.info("settled positions left closing", count=recovered)
    while True:
        settled = await settler.settle_pending()
        if settled:
            log.debug("settled", count=settled)
            continue
        try:
            changes = await store.changes(cursor, groups=WATCHED, limit=10_000, wait=idle_wait)
        except FeedResync:
            # The feed was pruned past our cursor: whatever it held, `closing` is a status
            # a query finds, so a full pass from the new head misses nothing.
            cursor = await store.head()
            resettled = await settler.settle_all()
            log.warning("change feed fell behind; resynced", settled=resettled)
            continue
        if changes:
            cursor = changes[-1].seq
