"""Ticks in, compare-and-set writes out: the worker's reflexes.

`on_ticks` runs synchronously in the event loop for each burst a feed hands over: it
updates live prices and asks the book which levels each tick crosses (a dict lookup and
two comparisons when nothing crosses). Crossings are queued whole, per burst, and a single
commit task writes them with `services.crossings.apply_crossings`, one transaction per
round; crossings that arrive while a commit is in flight ride in the next one (group
commit), so a storm costs a few large transactions, not one per position.

A trigger's fire is predicted in the book at once: its new position's levels go in before
the commit, so a later tick of the same burst can close it, in the same transaction. If
the transaction then refuses the open, the predicted levels are taken out again.

A transaction that fails for a temporary reason is retried with the same crossings until
it commits (the compare-and-set makes retries safe), because dropping it would miss a stop
loss whose tick may never come back.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from cogmora.domain.book import Hit, TriggerBook
from cogmora.domain.crossing import Reason, close_reason
from cogmora.domain.enums import Market
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.gap import GapFill
from cogmora.domain.ids import new_id
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.ticks import Tick
from cogmora.engine.book_sync import WATCHED_GROUPS, BookIndex, fill, load_all
from cogmora.engine.metrics import EngineMetrics
from cogmora.errors import Rejected, Temporary
from cogmora.services.clock import Clock
from cogmora.services.crossings import BurstOutcome, PositionHit, TriggerHit, apply_crossings
from cogmora.services.prices import LivePrices
from cogmora.store.port import Store

log = structlog.get_logger("cogmora.engine")
SymbolsChanged = Callable[[frozenset[str], frozenset[str]], None]
Committed = Callable[[BurstOutcome, "Crossings"], None]


@dataclass(slots=True)
class Crossings:
    """What one or more bursts crossed, waiting for their transaction."""

    positions: list[PositionHit] = field(default_factory=list)
    triggers: list[TriggerHit] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)  # to restore if the write is abandoned
    predicted: list[str] = field(default_factory=list)  # positions put in the book early
    first_ns: int = 0  # arrival of the earliest crossing tick

    def __len__(self) -> int:
        return len(self.positions) + len(self.triggers)

    def extend(self, other: Crossings) -> None:
        self.positions += other.positions
        self.triggers += other.triggers
        self.hits += other.hits
        self.predicted += other.predicted
        if not self.first_ns or (other.first_ns and other.first_ns < self.first_ns):
            self.first_ns = other.first_ns


class Engine:
    def __init__(
        self,
        store: Store,
        fees: FeeSchedule,
        clock: Clock,
        live: LivePrices,
        metrics: EngineMetrics,
        on_symbols_changed: SymbolsChanged | None = None,
        on_committed: Committed | None = None,
    ) -> None:
        self._store = store
        self._fees = fees
        self._clock = clock
        self._live = live
        self._metrics = metrics
        self._on_symbols_changed = on_symbols_changed
        self._on_committed = on_committed
        self.book = TriggerBook(on_symbols_changed=self._symbols_changed)
        self.index = BookIndex(self.book)
        self._pending = Crossings()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # Each crossing writes at most ~6 documents (a trigger that opens a position).
        self._chunk = max(1, store.max_writes_per_tx // 6)
        self.cursor = 0

    @property
    def metrics(self) -> EngineMetrics:
        return self._metrics

    # ---------------------------------------------------------------- start-up

    async def load(self) -> int:
        """Rebuild the book from the store; returns the change-feed cursor to follow from."""
        cursor = await self._store.head()
        positions, triggers = await self._store.read(load_all)
        fill(self.index, positions, triggers, self._bad_document)
        counts = {"positions": len(positions), "triggers": len(triggers)}
        del positions, triggers
        # The book is a million long-lived objects: left to the cyclic GC, every full
        # collection walks them all, a pause of tens of milliseconds in the tick path.
        # Freezing moves what exists now out of the collector's sight.
        gc.collect()
        gc.freeze()
        self.cursor = cursor
        self._gauges()
        log.info(
            "book loaded",
            **counts,
            levels=self.book.levels_count(),
            symbols=len(self.book.symbols()),
        )
        return cursor

    def _bad_document(self, path: str, exc: Exception) -> None:
        log.error("skipping unreadable document", path=path, error=str(exc))

    # ---------------------------------------------------------------- ticks

    def on_ticks(self, ticks: list[Tick]) -> None:
        """Evaluate one burst; queue its crossings for one transaction."""
        at = self._clock.now()
        live, cross = self._live, self.book.cross
        found: Crossings | None = None
        for tick in ticks:
            live.update(tick, at)
            hits = cross(tick.symbol, tick.price, tick.kind)
            if hits:
                if found is None:
                    found = Crossings(first_ns=tick.received_ns or time.time_ns())
                self._record(found, tick, hits, at)
        if ticks:
            self._metrics.ticks.labels(ticks[0].market.value).inc(len(ticks))
        if found is not None:
            self._pending.extend(found)
            self._idle.clear()
            self._wake.set()

    def on_recovered(self, market: Market, fills: Sequence[GapFill], at: datetime) -> None:
        """Queue what a feed gap's candles crossed (SPEC 5.1), like a burst's crossings but
        filled at the gap's fill prices and marked `details.recovered`.

        `at` is the end of the candle that crossed them: a trigger's new position enters
        the book as created then, so the gap's later candles can close it and this one
        cannot (inside one candle the order of its low and high is unknown)."""
        if not fills:
            return
        found = Crossings(first_ns=time.time_ns())
        for gap_fill in fills:
            tick = Tick(gap_fill.symbol, market, gap_fill.price)
            self._record(found, tick, [gap_fill.hit], at, recovered=True)
        self._pending.extend(found)
        self._idle.clear()
        self._wake.set()

    def _record(
        self, found: Crossings, tick: Tick, hits: list[Hit], at: datetime, recovered: bool = False
    ) -> None:
        owners = self.index.owners
        found.hits += hits
        for hit in hits:
            uid = owners.get(hit.key)
            if uid is None:
                # Cannot happen while the index is consistent; if it ever does, the level
                # goes back rather than leave the book without being written anywhere.
                log.error("crossed a level with no known owner; restored", key=hit.key)
                self.book.restore(hit)
                continue
            if hit.reason is Reason.TRIGGER:
                position_id = self._predict(hit.key, tick, at, found)
                found.triggers.append(
                    TriggerHit(uid, hit.key, tick.price, position_id, recovered=recovered)
                )
            else:
                found.positions.append(
                    PositionHit(
                        uid, hit.key, close_reason(hit.reason), tick.price, recovered=recovered
                    )
                )

    def _predict(self, trigger_id: str, tick: Tick, at: datetime, found: Crossings) -> str:
        """Put the position this fire will open into the book now; returns its id."""
        position_id = new_id()
        trigger = self.index.triggers.get(trigger_id)
        if trigger is None:
            return position_id
        request = OpenRequest.from_action(
            trigger.symbol, trigger.market, trigger.action, trigger.id
        )
        try:
            position = build_position(request, trigger.uid, position_id, tick.price, self._fees, at)
        except Rejected:
            return position_id  # the transaction will record why it failed
        self.index.put_position(position)
        found.predicted.append(position_id)
        return position_id

    # ---------------------------------------------------------------- commits

    async def run_commits(self) -> None:
        """The single writer of crossings. Runs until cancelled."""
        delay = 0.01
        while True:
            if not self._pending:
                self._idle.set()
                await self._wake.wait()
                self._wake.clear()
                continue
            batch, self._pending = self._pending, Crossings()
            try:
                await self._commit(batch)
                delay = 0.01
            except Temporary as exc:
                self._metrics.commit_errors.labels("temporary").inc()
                log.warning("burst commit failed; retrying", error=str(exc), delay=delay)
                batch.extend(self._pending)
                self._pending = batch
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:
                self._metrics.commit_errors.labels("error").inc()
                log.exception("burst commit failed; restoring its levels", crossings=len(batch))
                self._abandon(batch)

    async def _commit(self, batch: Crossings) -> None:
        # Chunk only when the backend caps a transaction (Firestore: 500 writes); a
        # trigger's position and any hit on it stay in the chunk of the trigger. The
        # book is brought up to date once, from every chunk's outcome together.
        total = BurstOutcome()
        for positions, triggers in self._chunks(batch):
            began = time.perf_counter()
            outcome = await self._store.transact(
                functools.partial(
                    apply_crossings,
                    position_hits=positions,
                    trigger_hits=triggers,
                    fees=self._fees,
                    now=self._clock.now(),
                )
            )
            self._metrics.commits.inc()
            self._metrics.commit_seconds.observe(time.perf_counter() - began)
            if batch.first_ns:
                self._metrics.tick_to_commit.observe(
                    max(0.0, (time.time_ns() - batch.first_ns) / 1e9)
                )
            total.merge(outcome)
        self._after(total, batch)

    def _chunks(self, batch: Crossings) -> list[tuple[list[PositionHit], list[TriggerHit]]]:
        if len(batch) <= self._chunk:
            return [(batch.positions, batch.triggers)]
        born = {t.position_id for t in batch.triggers}
        late = [p for p in batch.positions if p.position_id in born]
        early = [p for p in batch.positions if p.position_id not in born]
        out: list[tuple[list[PositionHit], list[TriggerHit]]] = [
            (early[i : i + self._chunk], []) for i in range(0, len(early), self._chunk)
        ]
        for i in range(0, len(batch.triggers), self._chunk):
            triggers = batch.triggers[i : i + self._chunk]
            ids = {t.position_id for t in triggers}
            out.append(([p for p in late if p.position_id in ids], triggers))
        return out

    def _after(self, outcome: BurstOutcome, batch: Crossings) -> None:
        self._metrics.lost.inc(len(outcome.lost))
        self._count_recovered(outcome, batch)
        for reason, count in Counter(h.reason.value for h in outcome.closing).items():
            self._metrics.hits.labels(reason).inc(count)
        opened = {p.id for p in outcome.opened}
        for trigger in outcome.fired:
            self._metrics.fires.labels("triggered").inc()
            self.index.triggers.pop(trigger.id, None)
            self.index.created.pop(trigger.id, None)
        for trigger in outcome.failed:
            self._metrics.fires.labels("failed").inc()
            self.index.triggers.pop(trigger.id, None)
            self.index.created.pop(trigger.id, None)
        for trigger in outcome.expired:
            self._metrics.fires.labels("expired").inc()
            self.index.triggers.pop(trigger.id, None)
            self.index.created.pop(trigger.id, None)
        for position_id in batch.predicted:
            if position_id not in opened:
                self.index.forget(position_id)
        for hit in outcome.closing:
            if hit.position_id not in self.book:  # a stale change may have put it back
                self.index.owners.pop(hit.position_id, None)
                self.index.created.pop(hit.position_id, None)
        self._gauges()
        if self._on_committed is not None:
            self._on_committed(outcome, batch)

    def _count_recovered(self, outcome: BurstOutcome, batch: Crossings) -> None:
        closes = sum(1 for h in outcome.closing if h.recovered)
        if closes:
            self._metrics.recovered.labels("close").inc(closes)
        recovered = {t.trigger_id for t in batch.triggers if t.recovered}
        if recovered:
            fires = sum(1 for t in outcome.fired if t.id in recovered)
            if fires:
                self._metrics.recovered.labels("fire").inc(fires)

    def _abandon(self, batch: Crossings) -> None:
        for position_id in batch.predicted:
            self.index.forget(position_id)
        for hit in batch.hits:
            self.book.restore(hit)

    async def drained(self) -> None:
        """Wait until every queued crossing is committed (tests, demo, shutdown)."""
        await self._idle.wait()

    # ---------------------------------------------------------------- change feed

    async def follow(self) -> None:
        """Apply the store's changes to the book: new or amended positions and triggers are
        live within one round-trip of their commit. Runs until cancelled."""
        while True:
            changes = await self._store.changes(
                self.cursor, groups=WATCHED_GROUPS, limit=5000, wait=1.0
            )
            for change in changes:
                try:
                    self.index.apply(change)
                except (KeyError, ValueError, Rejected) as exc:
                    self._bad_document(change.path, exc)
                self.cursor = change.seq
            if changes:
                self._metrics.changes.inc(len(changes))
                self._gauges()

    # ---------------------------------------------------------------- book events

    def _symbols_changed(self, gained: frozenset[str], lost: frozenset[str]) -> None:
        if self._on_symbols_changed is not None:
            self._on_symbols_changed(gained, lost)

    def _gauges(self) -> None:
        self._metrics.levels.set(self.book.levels_count())
        self._metrics.keys.set(len(self.book))
