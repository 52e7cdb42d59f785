"""Waiting on conditions, not on the clock: the test suite's one polling helper.

On a loaded machine a step can take ten times longer than on an idle one, so a test never
sleeps a fixed time for something to happen; it polls for the condition it needs, with a
generous deadline that only a real failure reaches. Import it as `from conditions import
until` (tests/ is on sys.path, as for `conftest`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
WITHIN_S = 60.0  # generous: a busy 2-core machine, not the expected time


async def until(
    check: Callable[[], Awaitable[T] | T],
    within: float = WITHIN_S,
    what: str = "condition",
    every: float = 0.02,
) -> T:
    """Poll `check` (sync or async) until it returns something truthy and return that; fail
    with `what` and the last value seen once `within` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within:.0f} s (last: {value!r})")
        await asyncio.sleep(every)


def until_sync(
    check: Callable[[], T], within: float = WITHIN_S, what: str = "condition", every: float = 0.05
) -> T:
    """`until` for synchronous code (threads, subprocess-driving tests)."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within:.0f} s (last: {value!r})")
        time.sleep(every)


__all__ = ["WITHIN_S", "until", "until_sync"]
