"""PATCH, manual close and trigger DELETE racing crossings on a real engine and store,
many seeded times: no contradiction (SPEC 5 and 5.1).

After every try: no `closeReason` whose level the position did not store when it closed,
no position closed twice, nothing left `closing`, every level the tick crossed closed (a
second tick at the same price closes nothing more), and at the end every ledger sums to
its balance and the book equals a fresh load from the store.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cogmora.cli.compose import System, build_system
from cogmora.domain.book import TriggerBook
from cogmora.domain.crossing import Reason, direction, position_reason, reached
from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side, TriggerOp, TriggerStatus
from cogmora.domain.models import PriceQuote, TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.domain.ticks import Tick
from cogmora.engine.book_sync import WATCHED_GROUPS, BookIndex, fill, load_all
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.errors import Conflict, ValidationError
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.port import Store

pytestmark = pytest.mark.faults

D = Decimal
SYMBOL = "BTC-USDT"
REASONS = {
    "stop_loss": (Reason.STOP_LOSS, "stopLoss"),
    "take_profit": (Reason.TAKE_PROFIT, "takeProfit"),
    "liquidation": (Reason.LIQUIDATION, "liquidationPrice"),
}


@dataclass
class Tally:
    """One row of RELIABILITY.md: what a race produced over its tries."""

    tries: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: int = 0  # a crossed level left open
    doubled: int = 0  # closed (or fired) twice
    contradictory: int = 0  # a reason whose level was not stored, or a 200 contradicted


@dataclass
class Race:
    system: System
    engine: Engine
    metrics: EngineMetrics
    tasks: list[asyncio.Task[None]]
    # Firestore's commits take tens of ms, not one: to let either side win there, the
    # racing operation may also get a seeded head start of up to this many seconds.
    spread: float = 0.0

    def price(self, price: str) -> None:
        self.system.live.put(PriceQuote(SYMBOL, D(price), self.system.clock.now()))

    def tick(self, price: str) -> None:
        self.engine.on_ticks([Tick(SYMBOL, Market.SPOT, D(price), received_ns=time.time_ns())])

    async def quiet(self) -> None:
        """Every crossing committed, every closing settled, every change in the book."""
        await asyncio.sleep(0)
        await self.engine.drained()
        await self.system.settler.settle_all()
        deadline = time.monotonic() + 60
        while await self.system.store.changes(self.engine.cursor, groups=WATCHED_GROUPS, limit=1):
            assert time.monotonic() < deadline, "the book did not catch up with the change feed"
            await asyncio.sleep(0.005)
        await self.engine.drained()


@pytest.fixture
async def race(race_store: Store) -> AsyncIterator[Race]:
    store = race_store
    system = build_system(Settings(), store, catalog=SymbolCatalog([SYMBOL], []))
    metrics = EngineMetrics(CollectorRegistry())
    engine = Engine(store, system.settings.fees, system.clock, system.live, metrics)
    await engine.load()
    tasks = [asyncio.create_task(engine.run_commits()), asyncio.create_task(engine.follow())]
    await system.accounts.create_user("u", D("1000000000"))
    spread = 0.08 if store.name.startswith("firestore") else 0.0
    yield Race(system, engine, metrics, tasks, spread)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def interleave(
    rng: random.Random, tick: Callable[[], None], other: Awaitable[Any], spread: float = 0.0
) -> Any:
    """Run `other` and the tick in a seeded order, a few event-loop turns apart (a store
    transaction runs in its own thread, so the two really overlap); with `spread`, `other`
    may also run up to that many seconds before the tick (a jitter to place the tick
    inside a slow commit, not a wait for anything)."""
    if rng.random() < 0.5:
        tick()
        for _ in range(rng.randint(0, 6)):
            await asyncio.sleep(0)
        task = asyncio.ensure_future(other)
    else:
        task = asyncio.ensure_future(other)
        for _ in range(rng.randint(0, 40)):
            await asyncio.sleep(0)
            if task.done():
                break
        if spread and not task.done():
            await asyncio.wait({task}, timeout=rng.uniform(0, spread))
        tick()
    try:
        return await task
    except (Conflict, ValidationError) as exc:  # 409, or a 422 against the tick's price
        return exc


def contradictions(doc: dict[str, Any]) -> int:
    """1 if the closed position's reason names a level it did not store or the close price
    does not reach, else 0."""
    reason = doc["closeReason"]
    if reason not in REASONS:
        return 0
    kind, name = REASONS[reason]
    level = doc["details"].get(name)
    if level is None:
        return 1
    return 0 if reached(direction(Side(doc["side"]), kind), D(level), D(doc["closePrice"])) else 1


async def check_try(race: Race, pid: str, price: str, tally: Tally) -> None:
    """The per-try invariants for position `pid` after a tick at `price`."""
    position = await race.system.positions.get("u", pid)
    assert position.status is not PositionStatus.CLOSING, "left closing"
    if position.status is PositionStatus.OPEN:
        d = position.details
        if position_reason(
            position.side, d.stop_loss, d.take_profit, d.liquidation_price, D(price)
        ):
            tally.lost += 1


async def final_checks(race: Race, tally: Tally) -> None:
    system = race.system
    history = await system.positions.history("u", limit=100_000)
    per_position = Counter(h["id"] for h in history)
    tally.doubled += sum(n - 1 for n in per_position.values())
    tally.contradictory += sum(contradictions(h) for h in history)
    ledger = await system.accounts.ledger("u")
    assert sum(e.amount for e in ledger) == (await system.accounts.get_user("u")).balance
    closes = sum(1 for e in ledger if e.kind.value == "close")
    assert closes == len(per_position), (closes, len(per_position))
    closing = await system.positions.list_for_user("u", PositionStatus.CLOSING)
    assert closing == []
    fresh = BookIndex(TriggerBook())
    positions, triggers = await system.store.read(load_all)
    fill(fresh, positions, triggers, lambda path, exc: None)
    for path, _ in positions + triggers:
        key = path.rsplit("/", 1)[1]
        assert race.engine.book.levels_for(key) == fresh.book.levels_for(key), key
    assert len(race.engine.book) == len(fresh.book)


def report(name: str, tally: Tally, race: Race) -> None:
    name = f"{name}, {race.system.store.name.split(':')[0]}"
    for result in ("crossed", "kept"):
        count = race.metrics.rejudged.labels(result)._value.get()
        if count:
            tally.outcomes[f"judged again, {result}"] = int(count)
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(tally.outcomes.items()))
    print(
        f"\n| {name} | {tally.tries} | {tally.lost} | {tally.doubled} | "
        f"{tally.contradictory} | {outcomes} |"
    )


async def open_long(race: Race, **levels: str) -> str:
    race.price("60000")
    doc = await race.system.positions.open(
        "u",
        OpenRequest(
            SYMBOL,
            Market.SPOT,
            Side.LONG,
            qty=D("0.01"),
            stop_loss=D(levels["sl"]) if "sl" in levels else None,
            take_profit=D(levels["tp"]) if "tp" in levels else None,
        ),
    )
    await race.quiet()
    return str(doc["id"])


PATCHES: list[dict[str, Decimal | None]] = [
    {"stopLoss": None},
    {"stopLoss": D("58500")},
    {"stopLoss": D("59500")},
    {"takeProfit": None},
    {"takeProfit": D("62000")},
    {"stopLoss": None, "takeProfit": None},
]


async def test_patch_racing_a_crossing_never_contradicts(race: Race, tries: int) -> None:
    """A PATCH of SL/TP racing the tick through them: the close, if any, names a stored level."""
    rng = random.Random(8_1)
    tally = Tally()
    for _ in range(tries):
        pid = await open_long(race, sl="59000", tp="61000")
        changes = rng.choice(PATCHES)
        price = rng.choice(["58900", "59000", "59200", "61000", "61100"])

        async def patch(c: dict[str, Decimal | None] = changes, p: str = pid) -> Any:
            race.price("60000")  # the API's quote, older than the tick
            return await race.system.positions.amend("u", p, c)

        answer = await interleave(rng, functools.partial(race.tick, price), patch(), race.spread)
        await race.quiet()
        race.tick(price)  # a second tick at the same price: every crossed level closes
        await race.quiet()
        await check_try(race, pid, price, tally)
        position = await race.system.positions.get("u", pid)
        d = position.details
        if isinstance(answer, Conflict):
            code = "409"
            tally.contradictory += position.status is PositionStatus.OPEN  # it was closing
        elif isinstance(answer, ValidationError):
            code = "422"
        else:  # the PATCH answered 200: its levels are what the position holds now
            code = "200"
            for name, value in changes.items():
                stored = d.stop_loss if name == "stopLoss" else d.take_profit
                tally.contradictory += stored != value
        reason = d.close_reason.value if d.close_reason else "open"
        tally.outcomes[f"{code} {reason}"] += 1
        tally.tries += 1
    await final_checks(race, tally)
    report("PATCH vs crossing", tally, race)
    assert (tally.lost, tally.doubled, tally.contradictory) == (0, 0, 0), tally


async def test_manual_close_racing_a_crossing_has_one_winner(race: Race, tries: int) -> None:
    """A manual close racing the stop loss tick: closed once, for the reason of whoever won."""
    rng = random.Random(8_2)
    tally = Tally()
    for _ in range(tries):
        pid = await open_long(race, sl="59000")
        race.price("59100")
        answer = await interleave(
            rng,
            lambda: race.tick("58900"),
            race.system.positions.request_close("u", pid),
            race.spread,
        )
        await race.quiet()
        await check_try(race, pid, "58900", tally)
        position = await race.system.positions.get("u", pid)
        won = not isinstance(answer, Conflict)
        want = CloseReason.MANUAL if won else CloseReason.STOP_LOSS
        tally.contradictory += position.details.close_reason is not want
        tally.outcomes[
            position.details.close_reason.value if position.details.close_reason else "open"
        ] += 1
        tally.tries += 1
    await final_checks(race, tally)
    report("manual close vs crossing", tally, race)
    assert (tally.lost, tally.doubled, tally.contradictory) == (0, 0, 0), tally


async def test_trigger_delete_racing_a_crossing_has_one_winner(race: Race, tries: int) -> None:
    """DELETE of a trigger racing its crossing: cancelled and nothing opened, or fired once."""
    rng = random.Random(8_3)
    tally = Tally()
    for _ in range(tries):
        race.price("60000")
        doc = await race.system.triggers.create(
            "u",
            SYMBOL,
            Market.SPOT,
            TriggerCondition(TriggerOp.BELOW, D("59000")),
            TriggerAction(Side.LONG, qty=D("0.01")),
        )
        tid = str(doc["id"])
        await race.quiet()
        answer = await interleave(
            rng, lambda: race.tick("58900"), race.system.triggers.cancel("u", tid), race.spread
        )
        await race.quiet()
        race.tick("58900")
        await race.quiet()
        trigger = await race.system.triggers.get("u", tid)
        won = not isinstance(answer, Conflict)
        want = TriggerStatus.CANCELLED if won else TriggerStatus.TRIGGERED
        tally.contradictory += trigger.status is not want
        if trigger.status is TriggerStatus.ACTIVE:
            tally.lost += 1
        tally.outcomes[trigger.status.value] += 1
        tally.tries += 1
    opened = await race.system.positions.list_for_user("u")
    fired = await race.system.triggers.list_for_user("u", TriggerStatus.TRIGGERED)
    by_trigger = Counter(p.trigger_id for p in opened)
    tally.doubled += sum(n - 1 for n in by_trigger.values())
    assert len(opened) == len(fired) == tally.outcomes["triggered"]
    await final_checks(race, tally)
    report("trigger DELETE vs crossing", tally, race)
    assert (tally.lost, tally.doubled, tally.contradictory) == (0, 0, 0), tally
