"""Cloud Functions for Firebase: the seed's `closePositionHandler` and its schedules.

Each function is a thin shell over one pass of the services the long-running processes
run (`cogmora.cli.passes`): the close handler's settlement transaction, the scheduler's
slot claims. So a function racing a `cogmora worker` / `cogmora jobs` process, or retried
by the platform, settles nothing twice and runs no slot twice. The store is COGMORA_STORE
(`firestore://PROJECT`; the functions' own project when unset), with the other COGMORA_*
settings as every process reads them (deploy/functions/.env, see deploy/FUNCTIONS.md).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from firebase_functions import firestore_fn, options, scheduler_fn
from google.cloud.firestore_v1 import DocumentSnapshot

from cogmora import settings as cogmora_settings
from cogmora.cli import passes
from cogmora.cli.jobs import JobsOptions
from cogmora.logs import configure as configure_logging

T = TypeVar("T")
POSITIONS = "users/{uid}/openPositions/{positionId}"
CLOSING = "closing"

# Scheduled functions return what their pass did (how many ran): the SDK ignores it, the
# tests read it. Agent runs time out at 120 s inside a 300 s lease (JobsOptions); a pass
# may run several rounds of them, so the agent function gets the longest timeout there is.
AGENT_TIMEOUT_SEC = 540
WATCHLIST_TIMEOUT_SEC = 120


def settings() -> cogmora_settings.Settings:
    env = dict(os.environ)
    project = env.get("GCLOUD_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT")
    if "COGMORA_STORE" not in env and project:
        env["COGMORA_STORE"] = f"firestore://{project}"
    loaded = cogmora_settings.load(env)
    configure_logging(loaded.log_level, loaded.log_json)
    return loaded


def run(work: Coroutine[Any, Any, T]) -> T:
    """Functions are synchronous; the services are async: one event loop per invocation."""
    return asyncio.run(work)


def status(snapshot: DocumentSnapshot | None) -> str | None:
    if snapshot is None or not snapshot.exists:
        return None
    details = (snapshot.to_dict() or {}).get("details") or {}
    value = details.get("status")
    return value if isinstance(value, str) else None


@firestore_fn.on_document_updated(document=POSITIONS)
def closePositionHandler(
    event: firestore_fn.Event[firestore_fn.Change[DocumentSnapshot | None]],
) -> None:
    """Settle the position whose `details.status` is now `closing` (the seed's name). The
    Python SDK deploys Firestore triggers without retries: a settlement that failed (the
    store was away) is left `closing` and picked up by `closingSweeper` within a minute.
    Any delivery of an event for a position already settled does nothing."""
    if status(event.data.after) != CLOSING:
        return
    path = f"users/{event.params['uid']}/openPositions/{event.params['positionId']}"
    run(passes.settle_pass(settings(), [path]))


@scheduler_fn.on_schedule(schedule="every 1 minutes", timeout_sec=120, retry_count=0)
def closingSweeper(event: scheduler_fn.ScheduledEvent) -> int:
    """Settle whatever is still `closing` (an event whose function failed, or a position
    left by a crash): the close handler process's fallback pass, once a minute."""
    return run(passes.sweep_pass(settings()))


@scheduler_fn.on_schedule(
    schedule="every 1 minutes",
    timeout_sec=AGENT_TIMEOUT_SEC,
    memory=options.MemoryOption.MB_512,
    retry_count=0,
)
def agentScheduler(event: scheduler_fn.ScheduledEvent) -> int:
    """Run every agent slot due now. No platform retry: a run that dies leaves its slot
    leased, and the next pass (a minute later, or a `cogmora jobs` process) retries it."""
    loaded = settings()

    async def one_pass() -> int:
        async with passes.pass_jobs(loaded, JobsOptions()) as jobs:
            return await passes.agent_pass(jobs)

    return run(one_pass())


@scheduler_fn.on_schedule(
    schedule="every 1 minutes", timeout_sec=WATCHLIST_TIMEOUT_SEC, retry_count=0
)
def watchlistScraper(event: scheduler_fn.ScheduledEvent) -> bool:
    """Refresh every user's watchlist when the `schedules/watchlist` slot is due."""
    loaded = settings()

    async def one_pass() -> bool:
        async with passes.pass_jobs(loaded, JobsOptions()) as jobs:
            return await passes.watchlist_pass(jobs) is not None

    return run(one_pass())
