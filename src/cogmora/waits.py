"""Waiting for a wake-up with a time limit, without ever losing a cancellation.

Python 3.11's `asyncio.wait_for` swallows a `cancel()` that arrives while the awaited future
is completing (cpython gh-86296, fixed in 3.12): the waiter returns normally, its task forgets
it was cancelled, and a loop built on it (the engine's change-feed follower) runs on for ever,
so stopping the process hung. The same wake-ups raced stops in every sleeping loop here;
`asyncio.timeout` counts cancellations and lets an outside one through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


async def woken_within(wake: Awaitable[object], seconds: float) -> bool:
    """True if `wake` finished within `seconds`, False if the time ran out first."""
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await wake
    except TimeoutError:
        return False
    return True
