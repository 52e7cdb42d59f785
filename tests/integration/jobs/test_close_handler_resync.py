"""The close handler when the change feed was pruned past its cursor."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

from cogmora.cli.compose import System
from cogmora.domain.enums import Market, PositionStatus, Side
from cogmora.domain.orders import OpenRequest
from cogmora.jobs.close_handler import run_close_handler
from cogmora.services.settlement import Settler
from cogmora.store.sqlite import SqliteStore

D = Decimal


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not await condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_close_handler_behind_the_pruned_feed_resyncs_and_settles_on(
    system: System, db_path: Path, make_user: object, quote: object
) -> None:
    """A close handler (another process) whose cursor the feed was pruned past settles
    what is closing and keeps following, rather than dying or skipping a close."""
    await system.accounts.create_user("u", D("100000"))
    quote("BTC-USDT", "60000")  # type: ignore[operator]
    request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D("0.01"))
    warm, first, second = [str((await system.positions.open("u", request))["id"]) for _ in range(3)]

    handler_store = SqliteStore(db_path)
    await handler_store.start()
    task = asyncio.create_task(
        run_close_handler(
            handler_store, Settler(handler_store, system.settings.fees, system.clock), 30.0
        )
    )
    try:

        def closed(pid: str) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                position = await system.positions.get("u", pid)
                return position.status is PositionStatus.CLOSED

            return check

        await system.positions.request_close("u", warm)  # the handler is following now
        await _until(closed(warm), "the handler never settled")
        # Hold the handler's reads while a close commits and the feed is pruned past it.
        gate = threading.Event()
        handler_store._reader.submit(gate.wait)
        await system.positions.request_close("u", first)
        await system.store.prune_changes(0)
        gate.set()
        await _until(closed(first), "first close not settled")
        await system.positions.request_close("u", second)
        await _until(closed(second), "second close not settled")
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await handler_store.close()
