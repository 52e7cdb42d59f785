"""No cyclic garbage collection across a synchronous section that makes many objects.

A settlement batch decodes 1,000 documents and builds about 4,000 rows that all live until
its commit; the collector, triggered every 700 allocations, walks them again and again as
they are made, and when enough of them survive, walks the whole heap too (callgrind, 5,000
settlements in the benchmark's small heap: 7,000 of ~530,000 instructions a position; a
process with a larger heap pays more per full walk). Reference counting frees them
either way. Only around code that never awaits, so the collector is never held off
across the event loop; the collector's switch is process-wide, so a section that finds
it already off (another thread's section) leaves it for that one to turn back on.
"""

from __future__ import annotations

import gc
from types import TracebackType


class _Paused:
    """A plain class, not `contextlib.contextmanager`: the engine enters one per burst
    that crosses something, and a generator-based manager cost ~1.5 us of that on a slow
    host (bench/engine_core.py), this one a fifth of it."""

    __slots__ = ("_paused",)

    def __enter__(self) -> None:
        self._paused = gc.isenabled()
        if self._paused:
            gc.disable()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._paused:
            gc.enable()


def gc_paused() -> _Paused:
    return _Paused()
