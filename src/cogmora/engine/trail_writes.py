"""Storing trailing stops' peaks: at most once a second per position, batched (SPEC 5.2).

The book moves peaks on every tick in memory; this task, once per interval, takes the keys
whose peak moved since the last round (`TriggerBook.take_moved_trailing`, never a scan of
every trailing stop) and writes `details.trailingPeak` and `details.trailingStop` with one
compare-and-set per (parameters, peak): only while the position is open with the same
trailing parameters, so a PATCH or a close that committed first is never overwritten.

The writes come back through the change feed like any other; the book, seeing the same
parameters and a peak no further than its own, keeps what it has. What a failed round did
not write is marked moved again, for the next round. After a restart the stored peak (at
most one interval old) and the gap's candles rebuild the rest (`gap_replay`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal

import structlog

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import PositionStatus
from cogmora.domain.money import to_str
from cogmora.domain.paths import position_path
from cogmora.domain.trailing import TrailingStop
from cogmora.store.port import Store, Tx

log = structlog.get_logger("cogmora.trailing")

_Group = tuple[TrailingStop, Decimal, Decimal]


class TrailingWriter:
    def __init__(
        self,
        store: Store,
        book: TriggerBook,
        owners: Mapping[str, str],
        interval: float = 1.0,
    ) -> None:
        self._store = store
        self._book = book
        self._owners = owners
        self._interval = interval
        self.written = 0  # positions written (tests, metrics)

    async def run(self) -> None:
        """Flush every interval until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                log.exception("trailing peaks not stored; retrying next round")

    async def flush(self) -> int:
        """Store every moved peak now; returns the number of positions written."""
        moved = self._book.take_moved_trailing()
        if not moved:
            return 0
        groups: dict[_Group, list[tuple[str, str]]] = {}
        for write in moved:
            uid = self._owners.get(write.key)
            if uid is None:
                continue
            groups.setdefault((write.spec, write.peak, write.stop), []).append(
                (write.key, position_path(uid, write.key))
            )
        limit = max(1, self._store.max_writes_per_tx)
        written = 0
        batch: list[tuple[_Group, list[tuple[str, str]]]] = []
        size = 0
        for group, items in groups.items():
            for start in range(0, len(items), limit):
                part = items[start : start + limit]
                if size + len(part) > limit:
                    written += await self._write(batch)
                    batch, size = [], 0
                batch.append((group, part))
                size += len(part)
        if batch:
            written += await self._write(batch)
        self.written += written
        return written

    async def _write(self, batch: list[tuple[_Group, list[tuple[str, str]]]]) -> int:
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
            return await self._store.transact(body)
        except BaseException:
            self._book.mark_trailing_moved([key for _, items in batch for key, _ in items])
            raise
