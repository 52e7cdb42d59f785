"""Ticks in, compare-and-set writes out: the worker's reflexes.

`on_ticks` runs synchronously in the event loop for each burst a feed hands over: it
updates live prices and asks the book which levels each tick crosses (a dict lookup and
two comparisons when nothing crosses). Crossings are queued whole, per burst, and a single
commit task writes them with `services.crossings.apply_crossings`, one transaction per
round; crossings that arrive while a commit is in flight ride in the next one (group
commit), so a storm costs a few large transactions, not one per position. Where the
backend caps a transaction, a batch goes in parts, each handed to the store as soon as
the one before it has committed; the Python for a part (its PositionHits, its book
bookkeeping) runs while the store works on the part beside it.

A trigger's fire is predicted in the book at once: its new position's levels go in before
the commit, so a later tick of the same burst can close it, in the same transaction. If
the transaction then refuses the open, the predicted levels are taken out again.

Each crossing carries the level the book crossed, and commits only while that level is
still stored (SPEC 5.1); one whose level changed is judged again, at its tick's price,
against the stored levels (`rejudge_positions`), and the book ends holding what is
stored, whichever of the commit and the change's feed entry comes first.

A transaction that fails for a temporary reason is retried with the same crossings until
it commits (the compare-and-set makes retries safe), because dropping it would miss a stop
loss whose tick may never come back. Any other exception, at any step (`faults.Step`),
ends with what the step had taken out of the book committed or put back: a failing tick
puts back its own levels, a failing transaction is split until the crossing that fails is
alone (the others commit), and a failure after a commit re-reads the burst's documents.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import operator
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import Any, TypeVar

import structlog

from cogmora.domain.book import Hit, TriggerBook, TriggerLevel
from cogmora.domain.crossing import Reason, close_reason
from cogmora.domain.enums import Market, PositionStatus, TriggerStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.gap import GapFill
from cogmora.domain.ids import new_id
from cogmora.domain.models import Doc, Position, Trigger
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import position_path, trigger_path
from cogmora.domain.takeprofits import split_leg_key
from cogmora.domain.ticks import Tick
from cogmora.engine.book_sync import NOT_PUT, WATCHED_GROUPS, BookIndex, fill, load_all
from cogmora.engine.faults import FaultHook, Step
from cogmora.engine.metrics import EngineMetrics
from cogmora.engine.prefilter import HotPath, Regions
from cogmora.engine.trail_writes import TrailingWriter
from cogmora.errors import FeedResync, Rejected, Temporary
from cogmora.gcpause import gc_paused as _gc_paused
from cogmora.services.clock import Clock
from cogmora.services.crossings import (
    BurstOutcome,
    PositionHit,
    TriggerHit,
    apply_crossings,
    keep_peak,
    rejudge_positions,
)
from cogmora.services.prices import LivePrices
from cogmora.store.port import Change, Store, Tx

log = structlog.get_logger("cogmora.engine")
SymbolsChanged = Callable[[frozenset[str], frozenset[str]], None]
Committed = Callable[[BurstOutcome, "Crossings"], None]
T = TypeVar("T")
_REJUDGE_ROUNDS = 3
_REASON_OF = operator.attrgetter("reason")
_POSITION_ID = operator.attrgetter("position_id")
_CLOSE_REASONS = {r: close_reason(r) for r in Reason if r is not Reason.TRIGGER}


# A position crossing's PositionHit, as its arguments (`Crossings.materialize`).
_PositionArgs = tuple[Any, ...]


@dataclass(slots=True)
class Crossings:
    """What one or more bursts crossed, waiting for their transaction.

    A position crossing is recorded as its PositionHit's arguments and built only when
    `positions` is first read: a storm's 100,000 are then built part by part while the
    previous part is in the store's hands (`Engine._process`), not inside the tick's call.
    """

    _positions: list[PositionHit] = field(default_factory=list)
    triggers: list[TriggerHit] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)  # to restore if the write is abandoned
    predicted: list[str] = field(default_factory=list)  # positions put in the book early
    first_ns: int = 0  # arrival of the earliest crossing tick
    _raw: list[_PositionArgs] = field(default_factory=list)  # after `_positions`, in order

    @property
    def positions(self) -> list[PositionHit]:
        if self._raw:
            self.materialize()
        return self._positions

    @positions.setter
    def positions(self, value: list[PositionHit]) -> None:
        self._raw = []
        self._positions = value

    def add_position(self, args: _PositionArgs) -> None:
        self._raw.append(args)

    def materialize(self) -> None:
        if not self._raw:
            return
        raw, self._raw = self._raw, []
        with _gc_paused():
            self._positions += [PositionHit(*args) for args in raw]

    def __len__(self) -> int:
        return len(self._positions) + len(self._raw) + len(self.triggers)

    def extend(self, other: Crossings) -> None:
        if other._positions:  # keep the order: ours, then theirs
            self.materialize()
            self._positions += other._positions
        self._raw += other._raw
        self.triggers += other.triggers
        self.hits += other.hits
        self.predicted += other.predicted
        if not self.first_ns or (other.first_ns and other.first_ns < self.first_ns):
            self.first_ns = other.first_ns

    def keys(self) -> list[str]:
        """Every book key this holds out of the book or put in early."""
        return [h.key for h in self.hits] + self.predicted


@dataclass(slots=True)
class _WatchedIndex(BookIndex):
    """The book's index, noting which keys the change feed touched while a crossing of
    theirs was in flight: for those the feed's view is newer than anything the commit
    read, so the engine leaves them as the feed set them."""

    inflight: dict[str, int] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)

    def apply(self, change: Change) -> None:
        key = change.path.rsplit("/", 1)[1]
        if key in self.inflight:
            self.touched.add(key)
        BookIndex.apply(self, change)

    def hold(self, keys: list[str]) -> None:
        inflight = self.inflight
        fresh = dict.fromkeys(keys, 1)  # a storm: distinct keys, none in flight yet
        if len(fresh) == len(keys) and inflight.keys().isdisjoint(fresh):
            inflight.update(fresh)
            return
        for key in keys:
            inflight[key] = inflight.get(key, 0) + 1

    def release(self, keys: list[str]) -> None:
        inflight = self.inflight
        # A storm's part: every key held once. Popped in one C-level pass; should any
        # count be other than 1 (a key held twice, or not at all), the counts go back
        # and the keys are released one by one.
        popped = list(map(inflight.pop, keys, repeat(0)))
        if popped.count(1) == len(popped):
            if self.touched:
                self.touched.difference_update(keys)
            return
        for key, n in zip(keys, popped, strict=True):
            if n:
                inflight[key] = n
        for key in keys:
            n = inflight.get(key, 0) - 1
            if n > 0:
                inflight[key] = n
            else:
                inflight.pop(key, None)
                self.touched.discard(key)

    def may_put(self, key: str) -> bool:
        """Whether a settling crossing may set `key` from what it read: no other crossing
        of it is in flight and the feed has not set it since it left the book."""
        return key not in self.touched and self.inflight.get(key, 0) <= 1


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
        faults: FaultHook | None = None,
    ) -> None:
        self._store = store
        self._fees = fees
        self._clock = clock
        self._live = live
        self._metrics = metrics
        self._on_symbols_changed = on_symbols_changed
        self._on_committed = on_committed
        self._faults = faults
        self.book = TriggerBook(on_symbols_changed=self._symbols_changed)
        self.index: _WatchedIndex = _WatchedIndex(self.book)
        # Trailing peaks move in the book on every tick; stored once a second (SPEC 5.2).
        self.trailing = TrailingWriter(store, self.book, self.index.owners, metrics=metrics)
        self._pending = Crossings()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # Each crossing writes at most ~6 documents (a trigger that opens a position).
        self._chunk = max(1, store.max_writes_per_tx // 6)
        self.cursor = 0
        # For /healthz (read-only outside): since when (time.monotonic) a commit attempt has
        # been outstanding without a success after it, and the last failure's text.
        self.unconfirmed_since: float | None = None
        self.last_commit_error: str | None = None

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
        """Evaluate one burst; queue its crossings for one transaction.

        Whatever raises while a tick is evaluated, the levels it took out of the book go
        back before the next tick (a well-formed frame with an absurd price must not
        disarm stops); the burst's other ticks are still evaluated.
        """
        with _gc_paused():
            self._on_ticks(ticks)

    def _on_ticks(self, ticks: list[Tick]) -> None:
        at = self._clock.now()
        live, cross, faults = self._live, self.book.cross, self._faults
        found: Crossings | None = None
        for tick in ticks:
            try:
                if faults is not None:
                    faults.check(Step.PRICE)
                live.update(tick, at)
            except Exception as exc:  # the live price is for display and opens; stops still run
                self._failed(Step.PRICE, exc, symbol=tick.symbol, price=str(tick.price))
            try:
                hits = cross(tick.symbol, tick.price, tick.kind)
            except Exception as exc:  # the book judges the price before it takes anything out
                self._failed(Step.CROSS, exc, symbol=tick.symbol, price=str(tick.price))
                continue
            if not hits:
                continue
            crossed = Crossings(first_ns=tick.received_ns or time.time_ns())
            try:
                if faults is not None:
                    faults.check(Step.CROSS)
                self._record(crossed, tick, hits, at)
            except Exception as exc:
                self._failed(Step.CROSS, exc, symbol=tick.symbol, price=str(tick.price))
                self._put_back_unqueued(crossed, hits)
                continue
            if found is None:
                found = crossed
            else:
                found.extend(crossed)
        if ticks:
            self._metrics.ticks.labels(ticks[0].market.value).inc(len(ticks))
        if found is not None:
            try:
                if faults is not None:
                    faults.check(Step.QUEUE)
                self.index.hold(found.keys())
            except Exception as exc:
                self._failed(Step.QUEUE, exc, crossings=len(found))
                self._put_back_unqueued(found, found.hits)
                return
            self._pending.extend(found)
            self._idle.clear()
            self._wake.set()

    def hot_path(
        self,
        sink: Callable[[list[Tick]], None] | None = None,
        regions: Callable[[], Regions] | None = None,
        held: Callable[[], Collection[str]] | None = None,
    ) -> HotPath:
        """Spot ticker frames into `sink` (default: `on_ticks`), a Tick built only for a
        frame near a level or the edge of the price filter's `regions` (`engine.prefilter`);
        the others set the live price and count as evaluated ticks. The worker's sink is
        the gap replay in front of the filter in front of `on_ticks`."""
        return HotPath(
            self.book,
            sink or self.on_ticks,
            self._live,
            self._clock.now,
            regions=regions,
            held=held,
            on_quiet=self._metrics.ticks.labels(Market.SPOT.value).inc,
        )

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
        add, taken = found.add_position, found.hits
        price, kind = tick.price, tick.kind
        reasons = _CLOSE_REASONS
        for hit in hits:
            uid = owners.get(hit.key)
            if uid is None:
                # Cannot happen while the index is consistent; if it ever does, the level
                # goes back rather than leave the book without being written anywhere.
                log.error("crossed a level with no known owner; restored", key=hit.key)
                self.book.restore(hit)
                continue
            if hit.reason is Reason.TRIGGER:
                levels = hit.levels()
                assert isinstance(levels, TriggerLevel)
                position_id = self._predict(hit.key, tick, at, found)
                if position_id is None:
                    self.book.restore(hit)  # the transaction would fail the same way
                    continue
                found.triggers.append(
                    TriggerHit(
                        uid,
                        hit.key,
                        tick.price,
                        position_id,
                        levels.op,
                        levels.price,
                        tick.kind,
                        recovered=recovered,
                    )
                )
            else:
                # What can fail (a level, a peak) is worked out here, within the tick's
                # guard; the PositionHit itself is built later (`Crossings`).
                trail = hit.trailing()
                if trail is None:
                    add((uid, hit.key, reasons[hit.reason], price, hit.level(), kind, recovered))
                else:
                    add(
                        (
                            uid,
                            hit.key,
                            reasons[hit.reason],
                            price,
                            hit.level(),
                            kind,
                            recovered,
                            trail.spec,
                            trail.peak_price(),
                        )
                    )
            taken.append(hit)

    def _predict(self, trigger_id: str, tick: Tick, at: datetime, found: Crossings) -> str | None:
        """Put the position this fire will open into the book now; returns its id, or None
        when building it failed for a reason the transaction would fail on too."""
        position_id = new_id()
        trigger = self.index.triggers.get(trigger_id)
        if trigger is None:
            return position_id
        request = OpenRequest.from_action(
            trigger.symbol, trigger.market, trigger.action, trigger.id
        )
        try:
            if self._faults is not None:
                self._faults.check(Step.PREDICT)
            position = build_position(request, trigger.uid, position_id, tick.price, self._fees, at)
        except Rejected:
            return position_id  # the transaction will record why it failed
        except Exception as exc:  # e.g. InvalidOperation from an absurd price
            self._failed(Step.PREDICT, exc, trigger=trigger_id, price=str(tick.price))
            return None
        try:
            self.index.put_position(position)
        except Exception as exc:
            self._failed(Step.PREDICT, exc, trigger=trigger_id, price=str(tick.price))
            self.index.forget(position_id)
            return None
        found.predicted.append(position_id)
        return position_id

    def _put_back_unqueued(self, found: Crossings, hits: list[Hit]) -> None:
        """Undo a tick or burst that never reached the queue: nothing is in flight yet."""
        predicted = set(found.predicted)
        for position_id in predicted:
            self.index.forget(position_id)
        for hit in hits:
            if hit.key not in predicted:
                self.book.restore(hit)

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
            if self.unconfirmed_since is None:
                self.unconfirmed_since = time.monotonic()
            try:
                rest = await self._process(batch)
            except Exception as exc:  # a bug past every step's own guard: keep the writer alive
                self._failed(Step.COMMIT, exc, crossings=len(batch))
                await self._reconcile(batch.positions, batch.triggers)
                self.index.release(batch.keys())
                continue
            if rest is None:
                delay = 0.01
                continue
            rest.extend(self._pending)
            self._pending = rest
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _process(self, batch: Crossings) -> Crossings | None:
        """Commit a batch part by part (parts only where the backend caps a transaction;
        a trigger's position and any hit on it stay in the trigger's part). Returns what is
        left to retry after a temporary failure, or None."""
        parts = self._parts(batch, self._chunk)
        running: asyncio.Task[BurstOutcome] | None = None
        try:
            for i, part in enumerate(parts):
                if running is None:
                    running = await self._start(part)
                later = parts[i + 1] if i + 1 < len(parts) else None
                if later is not None:
                    later.materialize()  # while `part` is in the store's hands
                try:
                    outcome = await running
                except Temporary as exc:
                    running = None
                    self.last_commit_error = f"{type(exc).__name__}: {exc}"
                    self._metrics.commit_errors.labels("temporary").inc()
                    log.warning("burst commit failed; retrying", error=str(exc))
                    rest = Crossings(first_ns=batch.first_ns)
                    for left in parts[i:]:
                        rest.extend(left)
                    return rest
                except Exception as exc:
                    running = None
                    self.last_commit_error = f"{type(exc).__name__}: {exc}"
                    self._metrics.commit_errors.labels("error").inc()
                    self._failed(Step.COMMIT, exc, crossings=len(part))
                    await self._isolate(part)
                    continue
                running = None
                self.unconfirmed_since = None
                self.last_commit_error = None
                if later is not None:
                    # The next part commits while this one's book catches up: its keys
                    # are other keys, and a judging again of this one's queues behind it.
                    running = await self._start(later)
                await self._finish(part, outcome)
            return None
        finally:
            if running is not None and not running.done():
                running.cancel()  # cancelled mid-batch: as if the commit were in flight

    async def _start(self, part: Crossings) -> asyncio.Task[BurstOutcome]:
        """The part's transaction, handed to the store before this returns."""
        task = asyncio.ensure_future(self._transact_part(part))
        await asyncio.sleep(0)  # let it reach the store
        return task

    async def _transact_part(self, part: Crossings) -> BurstOutcome:
        part.materialize()  # here, not in the store's thread
        began = time.perf_counter()
        outcome = await self._store.transact(
            functools.partial(self._burst_body, part=part, now=self._clock.now())
        )
        self._metrics.commits.inc()
        self._metrics.commit_seconds.observe(time.perf_counter() - began)
        if part.first_ns:
            self._metrics.tick_to_commit.observe(max(0.0, (time.time_ns() - part.first_ns) / 1e9))
        return outcome

    def _burst_body(self, tx: Tx, part: Crossings, now: datetime) -> BurstOutcome:
        outcome = apply_crossings(tx, part.positions, part.triggers, self._fees, now)
        if self._faults is not None:
            self._faults.check(Step.COMMIT)  # after the writes: the transaction rolls them back
        return outcome

    async def _isolate(self, part: Crossings) -> None:
        """A part whose transaction raised (not temporarily): commit its halves apart until
        the crossing that fails is alone, and put that one back (its transaction rolled
        back, so the book goes back to what the store still holds)."""
        halves = self._parts(part, max(1, (len(part) + 1) // 2))
        if len(halves) == 1:
            self._put_back(part)
            return
        for half in halves:
            try:
                outcome = await self._retrying(functools.partial(self._transact_part, half))
            except Exception as exc:
                self._failed(Step.COMMIT, exc, crossings=len(half))
                await self._isolate(half)
                continue
            await self._finish(half, outcome)

    def _put_back(self, part: Crossings) -> None:
        predicted = set(part.predicted)
        for position_id in predicted:
            self.index.forget(position_id)
        for hit in part.hits:
            if hit.key not in predicted and self.index.may_put(hit.key):
                self.book.restore(hit)
        self.index.release(part.keys())
        self._gauges()

    async def _finish(self, part: Crossings, outcome: BurstOutcome) -> None:
        """After a commit: judge the missed crossings again, then bring the book up to date;
        if that raises, the part's documents are read back and the book set from them."""
        try:
            await self._rejudge(outcome)
            try:
                self._after(outcome, part)
            except Exception as exc:
                self._failed(Step.AFTER, exc, crossings=len(part))
                await self._reconcile(part.positions, part.triggers)
        finally:
            self.index.release(part.keys())
            self._gauges()

    async def _rejudge(self, outcome: BurstOutcome) -> None:
        missed, outcome.missed = outcome.missed, []
        for _ in range(_REJUDGE_ROUNDS):
            if not missed:
                return
            try:
                body = functools.partial(self._rejudge_body, hits=missed, now=self._clock.now())
                more = await self._retrying(functools.partial(self._store.transact, body))
            except Exception as exc:
                self._failed(Step.REJUDGE, exc, crossings=len(missed))
                await self._reconcile(missed, [])
                return
            missed, more.missed = more.missed, []
            outcome.merge(more)
        if missed:
            log.error("crossings still missing after judging again; re-read", count=len(missed))
            await self._reconcile(missed, [])

    def _rejudge_body(self, tx: Tx, hits: list[PositionHit], now: datetime) -> BurstOutcome:
        outcome = rejudge_positions(tx, hits, now)
        if self._faults is not None:
            self._faults.check(Step.REJUDGE)
        return outcome

    def _after(self, outcome: BurstOutcome, batch: Crossings) -> None:
        index = self.index
        self._metrics.lost.inc(len(outcome.lost))
        self._count_recovered(outcome, batch)
        for reason, count in Counter(map(_REASON_OF, outcome.closing)).items():
            self._metrics.hits.labels(reason.value).inc(count)
        if outcome.rejudged:
            kept = len(outcome.kept) + len(outcome.kept_triggers)
            self._metrics.rejudged.labels("kept").inc(kept)
            self._metrics.rejudged.labels("crossed").inc(max(0, outcome.rejudged - kept))
        opened = {p.id for p in outcome.opened}
        for trigger in outcome.fired:
            self._metrics.fires.labels("triggered").inc()
            index.triggers.pop(trigger.id, None)
            index.created.pop(trigger.id, None)
        for trigger in outcome.failed:
            self._metrics.fires.labels("failed").inc()
            index.triggers.pop(trigger.id, None)
            index.created.pop(trigger.id, None)
        for trigger in outcome.expired:
            self._metrics.fires.labels("expired").inc()
            index.triggers.pop(trigger.id, None)
            index.created.pop(trigger.id, None)
        if self._faults is not None:
            self._faults.check(Step.AFTER)  # half-way: the re-read must finish the job
        for position_id in batch.predicted:
            if position_id not in opened:
                index.forget(position_id)
        # Judged again and still open or active: the book holds what is stored, unless the
        # feed already set it (then the feed's view is the newer one).
        for position in outcome.kept:
            if index.may_put(position.id):
                index.put_position(position)
        for trigger in outcome.kept_triggers:
            if index.may_put(trigger.id):
                index.put_trigger(trigger)
        # A stale change may have put one back in the book: its owner stays.
        owners, created = index.owners.pop, index.created.pop
        for key in self.book.absent(map(_POSITION_ID, outcome.closing)):
            owners(key, None)
            created(key, None)
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

    async def _reconcile(self, positions: list[PositionHit], triggers: list[TriggerHit]) -> None:
        """Set the book from the stored documents of these crossings (the safety net after a
        failure past a commit): open positions and active triggers in, the rest out. An open
        position keeps the further trailing peak its crossing carried (`_put_with_peak`)."""
        # A ladder leg's key is not a document: its position's document decides the leg.
        ids = [(h.uid, _position_of(h.position_id)) for h in positions]
        ids += [(h.uid, h.position_id) for h in triggers]
        paths = list(dict.fromkeys(position_path(uid, pid) for uid, pid in ids))
        tpaths = [trigger_path(h.uid, h.trigger_id) for h in triggers]

        def body(tx: Tx) -> tuple[list[Doc | None], list[Doc | None]]:
            return tx.get_many(paths), tx.get_many(tpaths)

        try:
            pdocs, tdocs = await self._retrying(lambda: self._store.read(body))
        except Exception:
            log.exception("could not re-read a burst's documents; the book may lag the store")
            return
        trailed: dict[str, list[PositionHit]] = {}  # a storm's: one pass, not one a path
        for h in positions:
            if h.trailing is not None:
                trailed.setdefault(h.position_id, []).append(h)
        index = self.index
        for path, doc in zip(paths, pdocs, strict=True):
            key = path.rsplit("/", 1)[1]
            if not index.may_put(key):
                continue
            if doc is not None and doc["details"]["status"] == PositionStatus.OPEN.value:
                self._put_with_peak(Position.from_doc(key, doc), trailed.get(key, ()))
            else:
                index.forget(key)
        for path, doc in zip(tpaths, tdocs, strict=True):
            key = path.rsplit("/", 1)[1]
            if not index.may_put(key):
                continue
            if doc is not None and doc["details"]["status"] == TriggerStatus.ACTIVE.value:
                index.put_trigger(Trigger.from_doc(key, doc))
            else:
                index.forget(key)

    def _put_with_peak(self, stored: Position, hits: Sequence[PositionHit]) -> None:
        """Put an open position in the book with the furthest trailing peak of its crossings
        where that got further than the stored one (`crossings.keep_peak`): the crossing was
        lost, but the highs the book had seen are market history, and the stored peak is up
        to a writer's round behind them. Such a peak is owed, so the writer's next round
        stores it; without this the stop would fall back behind those highs."""
        position = stored
        for hit in hits:
            position = keep_peak(position, hit)
        self.index.put_position(position)
        if position is not stored:
            self.book.mark_trailing_moved([position.id])

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()` until it does not fail temporarily (after a commit, giving up would
        leave the book and the store apart)."""
        delay = 0.01
        while True:
            try:
                return await call()
            except Temporary as exc:
                self._metrics.commit_errors.labels("temporary").inc()
                log.warning("follow-up transaction failed; retrying", error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _parts(self, batch: Crossings, size: int) -> list[Crossings]:
        """Split into parts of about `size` crossings; a trigger travels with the hits on
        the position it opens, and every hit and prediction with its crossing."""
        if len(batch) <= size:
            return [batch]
        if _aligned(batch):  # a storm: slices, no per-crossing dict, nothing built yet
            raw, built, taken = batch._raw, batch._positions, batch.hits
            return [
                Crossings(
                    built[i : i + size],
                    [],
                    taken[i : i + size],
                    [],
                    batch.first_ns,
                    raw[i : i + size],
                )
                for i in range(0, len(taken), size)
            ]
        hits: dict[str, list[Hit]] = {}
        for hit in batch.hits:
            hits.setdefault(hit.key, []).append(hit)
        born = {t.position_id for t in batch.triggers}
        predicted = set(batch.predicted)
        late: dict[str, list[PositionHit]] = {}
        parts: list[Crossings] = []
        part = Crossings(first_ns=batch.first_ns)
        for p in batch.positions:
            if p.position_id in born:
                late.setdefault(p.position_id, []).append(p)
                continue
            part.positions.append(p)
            part.hits += hits.pop(p.position_id, [])
            if len(part) >= size:
                parts.append(part)
                part = Crossings(first_ns=batch.first_ns)
        for t in batch.triggers:
            part.triggers.append(t)
            part.hits += hits.pop(t.trigger_id, [])
            part.positions += late.pop(t.position_id, [])
            part.hits += hits.pop(t.position_id, [])
            if t.position_id in predicted:
                part.predicted.append(t.position_id)
            if len(part) >= size:
                parts.append(part)
                part = Crossings(first_ns=batch.first_ns)
        if part or not parts:
            parts.append(part)
        for leftover in hits.values():  # a hit with no crossing (restored while recorded)
            parts[-1].hits += leftover
        return parts

    async def drained(self) -> None:
        """Wait until every queued crossing is committed (tests, demo, shutdown)."""
        await self._idle.wait()

    def _failed(self, step: Step, exc: BaseException, **context: object) -> None:
        self._metrics.burst_errors.labels(step.value).inc()
        log.error(
            "burst step failed; its levels were put back or committed",
            step=step.value,
            error=repr(exc),
            exc_info=exc,
            **context,
        )

    # ---------------------------------------------------------------- change feed

    async def follow(self) -> None:
        """Apply the store's changes to the book: new or amended positions and triggers are
        live within one round-trip of their commit. Runs until cancelled."""
        while True:
            try:
                changes = await self._store.changes(
                    self.cursor, groups=WATCHED_GROUPS, limit=5000, wait=1.0
                )
            except FeedResync as exc:
                log.warning("feed cursor fell behind what is kept; reloading", error=str(exc))
                await self._reload()
                continue
            for change in changes:
                try:
                    self.index.apply(change)
                except NOT_PUT as exc:
                    self._bad_document(change.path, exc)
                self.cursor = change.seq
            if changes:
                self._metrics.changes.inc(len(changes))
                self._gauges()

    async def _reload(self) -> None:
        """Bring the book to a fresh snapshot of the store after the feed lost our place.

        Applied to the live book as a difference, never swapped for a new one, so a
        crossing in flight stays coherent: the commit queue is drained first, the keys
        the book held then are the ones a snapshot without them removes, and a position
        predicted while the snapshot loads (not among those keys) is kept. A snapshot
        older than a commit it races may put back levels a crossing just took; the
        commit's compare-and-set refuses a second close, and the changes after `head`,
        replayed next, take them out again (the same as a stale change, see `_after`).
        """
        await self.drained()
        held = set(self.index.owners)
        cursor = await self._store.head()
        positions, triggers = await self._store.read(load_all)
        seen: set[str] = set()
        for path, doc in positions:
            key = path.rsplit("/", 1)[1]
            seen.add(key)
            self._reapply(Change(cursor, "openPositions", None, path, doc))
        for path, doc in triggers:
            key = path.rsplit("/", 1)[1]
            seen.add(key)
            self._reapply(Change(cursor, "tradeTriggers", None, path, doc))
        for key in held - seen:
            if _position_of(key) in seen:  # a leg of a position just put back
                continue
            self.index.forget(key)
        self.cursor = cursor
        self._gauges()
        log.info("book reloaded", positions=len(positions), triggers=len(triggers))

    def _reapply(self, change: Change) -> None:
        try:
            self.index.apply(change)
        except NOT_PUT as exc:
            self._bad_document(change.path, exc)

    # ---------------------------------------------------------------- book events

    def _symbols_changed(self, gained: frozenset[str], lost: frozenset[str]) -> None:
        if self._on_symbols_changed is not None:
            self._on_symbols_changed(gained, lost)

    def _gauges(self) -> None:
        self._metrics.levels.set(self.book.levels_count())
        self._metrics.keys.set(len(self.book))


def _aligned(batch: Crossings) -> bool:
    """Whether the batch is positions only with hit `i` the crossing of position `i` (what
    `_record` makes of ticks that fire no trigger), so that parts are plain slices."""
    if batch.triggers or batch.predicted or (batch._raw and batch._positions):
        return False
    keys = [a[1] for a in batch._raw] or [p.position_id for p in batch._positions]
    return [h.key for h in batch.hits] == keys


def _position_of(key: str) -> str:
    """The position id of a book key: the key itself, or the position of a ladder leg."""
    leg = split_leg_key(key)
    return key if leg is None else leg[0]
