"""Storing trailing stops' peaks: at most once a second per position, batched (SPEC 5.2).

The book moves peaks on every tick in memory; this task, once per interval, starts a
round (`TriggerBook.start_trailing_round`: the keys whose peak moved since the last one,
never a scan of every trailing stop) and writes `details.trailingPeak` and
`details.trailingStop` with one compare-and-set per (parameters, peak): only while the
position is open with the same trailing parameters, so a PATCH or a close that committed
first is never overwritten.

A big move can queue tens of thousands of positions at once. The round is written in
slices of at most `slice_size` positions, one transaction each, with the event loop
yielded between them: no slice holds the loop (or the store's writer, where a crossing's
commit queues behind it) for long, so the ticks and the closes of that same move go on
meanwhile. Firing never waits for a write: it is judged on the tick from the book's own
peaks; only the stored copy lags, and the metrics say by how much. Each slice resolves
its keys against the book as it is then, so a later slice writes the newest peak and a
key fired meanwhile is not written at all.

The writes come back through the change feed like any other; the book, seeing the same
parameters and a peak no further than its own, keeps what it has. What a failed slice did
not write is marked moved again, for the next round. After a restart the stored peak (at
most one round old) and the gap's candles rebuild the rest (`gap_replay`), which then asks
for a round at once (`soon`): what the candles rebuilt is stored before a second crash can
lose it, not an interval later. An early round still starts an interval after the last
write at the soonest, so a position is written at most once an interval either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from decimal import Decimal

import structlog

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import PositionStatus
from cogmora.domain.money import to_str
from cogmora.domain.paths import position_path
from cogmora.domain.trail_state import TrailWrite
from cogmora.domain.trailing import TrailingStop
from cogmora.engine.metrics import EngineMetrics
from cogmora.store.port import Store, Tx

log = structlog.get_logger("cogmora.trailing")

_Group = tuple[TrailingStop, Decimal, Decimal]

# A slice's Python work (resolving keys, grouping, building paths) is a few microseconds a
# position: 500 keep it near a millisecond, and one small transaction in the store.
SLICE = 500


class TrailingWriter:
    def __init__(
        self,
        store: Store,
        book: TriggerBook,
        owners: Mapping[str, str],
        interval: float = 1.0,
        metrics: EngineMetrics | None = None,
        slice_size: int = SLICE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._book = book
        self._owners = owners
        self._interval = interval
        self._metrics = metrics
        self._slice = max(1, min(slice_size, store.max_writes_per_tx))
        self._monotonic = monotonic
        self._round_started: float | None = None  # None: no round has keys left
        self._wrote_at: float | None = None  # when a slice last wrote (the rate's anchor)
        self._wake = asyncio.Event()  # a round asked for before the pause is over
        self._lock = asyncio.Lock()  # one round at a time: the loop's, a drain's
        self.written = 0  # positions written (tests, metrics)
        self.slices = 0  # slices written (tests, the benchmark)
        if metrics is not None:
            metrics.trailing_oldest.set_function(self.oldest_pending_age)

    def oldest_pending_age(self) -> float:
        """Seconds the oldest queued write has waited at least: its round's age."""
        started = self._round_started
        if started is None or not self._book.trailing_moved_left():
            return 0.0
        return max(0.0, self._monotonic() - started)

    def soon(self) -> None:
        """Ask the loop for a round now instead of at the end of its pause (a gap's replay
        moved peaks); it still waits until an interval after the last write."""
        self._wake.set()

    async def run(self) -> None:
        """A round every interval until cancelled (the pause follows the round, so a
        position written late in one round waits an interval before the next)."""
        while True:
            await self._pause()
            try:
                await self.flush()
            except Exception:
                log.exception("trailing peaks not stored; retrying next round")

    async def _pause(self) -> None:
        """An interval, or less when `soon` asked: then until an interval after the last
        write (at once when nothing was written in the last interval)."""
        try:
            async with asyncio.timeout(self._interval):
                await self._wake.wait()
        except TimeoutError:
            pass
        else:
            wrote = self._wrote_at
            if wrote is not None:
                rest = wrote + self._interval - self._monotonic()
                if rest > 0:
                    await asyncio.sleep(rest)
        self._wake.clear()  # asked during the round: the next pause is short again

    async def flush(self) -> int:
        """One round: queue what moved since the last round and write it, slice by slice,
        yielding the loop between slices; returns the number of positions written. A
        round cut short (a failure, a cancel) keeps its queue for the next call."""
        async with self._lock:
            return await self._round()

    async def _round(self) -> int:
        book = self._book
        book.start_trailing_round()
        if not book.trailing_moved_left():
            self._round_started = None
            self._gauge()
            return 0
        if self._round_started is None:
            self._round_started = self._monotonic()
        written = 0
        try:
            while book.trailing_moved_left():
                moved = book.take_moved_trailing(self._slice)
                late = self._monotonic() - self._round_started > self._interval
                count = await self._write_slice(moved)
                written += count
                if late and count and self._metrics is not None:
                    self._metrics.trailing_deferred.labels("late").inc(count)
                self._gauge()
                await asyncio.sleep(0)  # the ticks of the same move go first
        finally:
            if not book.trailing_moved_left():
                self._round_started = None
            self._gauge()
        return written

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.trailing_pending.set(self._book.trailing_moved_left())

    async def _write_slice(self, moved: list[TrailWrite]) -> int:
        owners = self._owners
        batch: list[tuple[_Group, list[tuple[str, str]]]] = []
        for write in moved:
            items = []
            for key in write.keys:
                uid = owners.get(key)
                if uid is not None:
                    items.append((key, position_path(uid, key)))
            if items:
                batch.append(((write.spec, write.peak, write.stop), items))
        if not batch:
            return 0

        def body(tx: Tx) -> int:
            changed = 0
            for (spec, peak, stop), items in batch:
                expect = {"details.status": PositionStatus.OPEN.value, **spec.expected()}
                updates = {
                    "details.trailingPeak": to_str(peak),
                    "details.trailingStop": to_str(stop),
                }
                changed += len(tx.compare_and_set([p for _, p in items], expect, updates))
            return changed

        try:
            written = await self._store.transact(body)
        except BaseException:
            keys = [key for _, items in batch for key, _ in items]
            self._book.mark_trailing_moved(keys)
            if self._metrics is not None:
                self._metrics.trailing_deferred.labels("failed").inc(len(keys))
            raise
        self.written += written
        self.slices += 1
        if written:
            self._wrote_at = self._monotonic()
        if self._metrics is not None:
            self._metrics.trailing_written.inc(written)
        return written
