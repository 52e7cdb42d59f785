"""One pass of a job, for a caller that is woken from outside and then returns: a Cloud
Function (deploy/functions/main.py) fired by a Firestore change or by Cloud Scheduler.

Each pass builds the very services the long-running processes use (`build_system`,
`build_jobs`, the Settler's transaction) from the settings, runs them once and closes
them. So the guarantees are the processes' own: a settlement is a compare-and-set from
`closing`, and an agent or watchlist slot is claimed in the store, so a function and a
`cogmora jobs` or close handler process running at the same time, or a function that the
platform retries, never settle or run anything twice.

The store is opened without a change feed: a pass reads and writes, it never listens,
and on Firestore a listener on a collection group would first read every document in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlparse

import structlog

from cogmora.cli.catalog import refresh_catalog
from cogmora.cli.compose import build_system
from cogmora.cli.jobs import Jobs, JobsOptions, build_jobs
from cogmora.cli.stores import open_store
from cogmora.domain.enums import Market
from cogmora.errors import CogmoraError
from cogmora.jobs.market import CandleSource
from cogmora.jobs.watchlist import ScrapeResult
from cogmora.services.clock import Clock, SystemClock
from cogmora.services.settle_given import settle_positions
from cogmora.services.settlement import Settler
from cogmora.settings import Settings
from cogmora.store.port import Store

log = structlog.get_logger("cogmora.passes")


def open_pass_store(url: str) -> Store:
    """The store of COGMORA_STORE, without change-feed listeners on Firestore."""
    parsed = urlparse(url)
    if parsed.scheme == "firestore" and parsed.netloc:
        from cogmora.store.firestore import FirestoreStore

        return FirestoreStore(parsed.netloc, feed_groups=frozenset())
    return open_store(url)


@asynccontextmanager
async def pass_store(settings: Settings) -> AsyncIterator[Store]:
    store = open_pass_store(settings.store_url)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def settle_pass(settings: Settings, paths: Sequence[str], clock: Clock | None = None) -> int:
    """Settle the named positions that are still `closing`; returns how many this pass did."""
    async with pass_store(settings) as store:
        settled = await settle_positions(store, settings.fees, clock or SystemClock(), paths)
    log.info("settled", paths=list(paths), count=settled)
    return settled


async def sweep_pass(settings: Settings, clock: Clock | None = None) -> int:
    """Settle everything still `closing`, batch by batch (the close handler's fallback)."""
    async with pass_store(settings) as store:
        settled = await Settler(store, settings.fees, clock or SystemClock()).settle_all()
    if settled:
        log.info("swept positions left closing", count=settled)
    return settled


@asynccontextmanager
async def pass_jobs(
    settings: Settings,
    options: JobsOptions | None = None,
    *,
    clock: Clock | None = None,
    candles: CandleSource | None = None,
) -> AsyncIterator[Jobs]:
    """The jobs of a `cogmora jobs` process, on a fresh store."""
    async with pass_store(settings) as store:
        system = build_system(settings, store, clock=clock)
        try:
            yield build_jobs(system, options, candles=candles)
        finally:
            await system.aclose()


async def agent_pass(jobs: Jobs) -> int:
    """Claim and run every agent slot due now; returns how many this pass ran. The symbol
    catalog is loaded first: a pass has no worker keeping it, as `cogmora jobs` does."""
    try:
        await refresh_catalog(jobs.system.catalog, {m: jobs.market.rest(m) for m in Market})
    except CogmoraError as exc:  # opens are refused as unknown symbols, and logged
        log.warning("symbol catalog not loaded", error=str(exc))
    ran = await jobs.agents.run_due()
    log.info("agent pass", ran=ran)
    return ran


async def watchlist_pass(jobs: Jobs) -> ScrapeResult | None:
    """Refresh the watchlists if their slot is due and this pass wins it; None if not."""
    result = await jobs.watchlist.run_once()
    log.info("watchlist pass", ran=result is not None)
    return result
