"""Named steps of a burst's evaluation, and the seam tests use to make one of them fail.

Every step that may take a level out of the book (or has taken one) is wrapped by the
engine so that any exception there, not only a `Rejected`, ends with what was taken out
either committed or put back. Tests prove it by passing a `FaultHook` to the engine that
raises at a chosen step; production passes none, so the hot path pays one `is None` test.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class Step(StrEnum):
    PRICE = "price"  # updating the live price of a tick
    CROSS = "cross"  # the book took a tick's levels out; recording them as crossings
    PREDICT = "predict"  # building the position a trigger's fire will open
    QUEUE = "queue"  # handing a burst's crossings to the commit task
    COMMIT = "commit"  # inside the burst transaction, after its writes
    REJUDGE = "rejudge"  # inside the follow-up transaction judging changed levels again
    AFTER = "after"  # bringing the book up to date from a committed outcome


class FaultHook(Protocol):
    def check(self, step: Step) -> None:
        """Raise to make `step` fail; return to let it run."""
        ...
