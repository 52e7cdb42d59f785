"""A stop that arrives as a wake-up does must still stop the loop (the hang behind a CI run
held to its limit: the engine's follower swallowed its cancellation and ran on)."""

from __future__ import annotations

import asyncio

import pytest

from cogmora.store.wakeup import Wakeup
from cogmora.waits import woken_within


async def test_a_cancel_arriving_with_the_wake_up_is_not_lost() -> None:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiter = asyncio.create_task(woken_within(fut, 10.0))
    await asyncio.sleep(0)  # the waiter is now awaiting fut
    fut.set_result(None)
    waiter.cancel()  # in the same turn of the loop as the wake-up
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_a_wake_up_within_the_time_is_true_and_none_is_false() -> None:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(fut.set_result, None)
    assert await woken_within(fut, 10.0) is True
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert await woken_within(never, 0.01) is False


async def test_a_feed_reader_woken_as_it_is_cancelled_stops() -> None:
    wakeup = Wakeup()
    wakeup.bind(asyncio.get_running_loop())

    async def nothing() -> list[int]:
        return []

    async def follow() -> None:
        while True:  # like Engine.follow: read, sleep until a commit, again
            await wakeup.poll(nothing, wait=5.0, period=5.0)

    follower = asyncio.create_task(follow())
    for _ in range(3):
        await asyncio.sleep(0)
    wakeup.release()  # a commit's wake-up ...
    follower.cancel()  # ... and the stop, together
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(follower, 10.0)
