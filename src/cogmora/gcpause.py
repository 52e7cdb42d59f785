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
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
