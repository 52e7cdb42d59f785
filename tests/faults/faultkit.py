"""The fault suite's common parts: seeded storms, the audit every fault run ends with, the
processes it kills, and the figures it records for RELIABILITY.md.

A run is repeatable: everything random (where a kill lands, which levels a storm crosses)
comes from `random.Random(seed)`, and the seed is printed with every failure. The full
runs are behind the `faults` marker; `tries()` gives the small default-suite count unless
COGMORA_FAULT_TRIES says otherwise. A suite writes only its `one_try`; `run_tries` runs it
seeded, audits, sums and records the row, the same for every fault.

Audit (after every try, on every backend, through the Store port):
- lost: a position whose stop loss the price crossed that is not `closed` (still `open`,
  or left `closing`);
- doubled: a position with more than one `close`/`liquidation` ledger entry, or an opened
  Idempotency-Key with more than one position;
- contradictory: a closed position that should not have closed (its level was never
  crossed), or whose `closeReason` names a level it did not have, or a ledger that does
  not sum to its user's balance.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cogmora.domain.enums import Market, Side, Source
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import User
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import user_path
from cogmora.services.accounts import Accounts
from cogmora.services.clock import SystemClock
from cogmora.services.ledger import AccountBook
from cogmora.services.positions import book_open
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx

COGMORA = str(Path(sys.executable).with_name("cogmora"))
DEFAULT_SEED = 20261201
SYMBOL = "BTC-USDT"
ENTRY = Decimal("60000")
CROSSED_STOP = Decimal("59000")  # the storm's price (58000) crosses it
SAFE_STOP = Decimal("50000")  # never crossed: closing one of these is firing wrongly
STORM_PRICE = Decimal("58000")


def seed() -> int:
    """The run's seed: COGMORA_FAULT_SEED, else a fixed one, so a rerun is the same run."""
    return int(os.environ.get("COGMORA_FAULT_SEED", DEFAULT_SEED))


def long_run(request: Any) -> None:
    """Skip the long version of a suite unless it was selected with `-m faults` (the
    default run has its small seeded version beside it)."""
    import pytest

    if "faults" not in (request.config.option.markexpr or ""):
        pytest.skip("the long fault run: select it with -m faults")


def tries(default: int) -> int:
    """How many tries a suite makes: COGMORA_FAULT_TRIES overrides the suite's default."""
    return int(os.environ.get("COGMORA_FAULT_TRIES", default))


@dataclass
class Storm:
    """Who holds what: positions whose stop the storm crosses, and positions it must not."""

    users: list[str]
    crossed: set[str] = field(default_factory=set)
    safe: set[str] = field(default_factory=set)
    balance: Decimal = Decimal("1000000")


async def seed_storm(
    store: Store,
    positions: int,
    users: int,
    rng: random.Random,
    safe_share: float = 0.1,
    create_users: bool = True,
    crossed_stop: Decimal = CROSSED_STOP,
) -> Storm:
    """Users and spot longs at 60000, each with a stop at 59000 (crossed by the storm) or,
    for about `safe_share` of them, at 50000 (never crossed), booked as the API books them
    (`create_users=False`: more positions for the users an earlier storm created)."""
    storm = Storm([f"u{i}" for i in range(users)])
    accounts = Accounts(store, SystemClock())
    for uid in storm.users if create_users else ():
        await accounts.create_user(uid, storm.balance)
    fees = FeeSchedule()
    now = datetime.now(UTC)
    # Several commits: one 10,000-row tx is slow, and Firestore takes 499 writes at most
    # (each position writes itself and a ledger entry; the users are written once more).
    chunk = 5000 if store.max_writes_per_tx >= 10_000 else (store.max_writes_per_tx - users) // 3
    for start in range(0, positions, chunk):

        def write(tx: Tx, start: int = start) -> None:
            book = AccountBook.from_docs(tx.get_many([user_path(u) for u in storm.users]))
            for i in range(start, min(positions, start + chunk)):
                safe = rng.random() < safe_share
                request = OpenRequest(
                    SYMBOL,
                    Market.SPOT,
                    Side.LONG,
                    qty=Decimal("0.01"),
                    stop_loss=SAFE_STOP if safe else crossed_stop,
                    source=Source.API,
                )
                p = build_position(request, storm.users[i % users], new_id(), ENTRY, fees, now)
                (storm.safe if safe else storm.crossed).add(p.id)
                book_open(tx, book, p)
            for wpath, doc in book.writes():
                tx.set(wpath, doc)

        await store.transact(write)
    return storm


@dataclass
class Findings:
    lost: int = 0
    doubled: int = 0
    contradictory: int = 0
    closing_left: int = 0
    detail: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.doubled or self.contradictory or self.closing_left)

    def add(self, other: Findings) -> None:
        self.lost += other.lost
        self.doubled += other.doubled
        self.contradictory += other.contradictory
        self.closing_left += other.closing_left
        self.detail.extend(other.detail[:5])


@dataclass
class Books:
    """What the store holds for a set of users, read in one snapshot."""

    positions: dict[str, dict[str, Any]]
    closes: Counter[str]
    ledger_ok: dict[str, bool]
    balances: dict[str, Decimal]


async def read_books(store: Store, users: Iterable[str]) -> Books:
    uids = list(users)

    def body(tx: Tx) -> Books:
        positions: dict[str, dict[str, Any]] = {}
        closes: Counter[str] = Counter()
        ledger_ok: dict[str, bool] = {}
        balances: dict[str, Decimal] = {}
        for uid in uids:
            user = User.from_doc(tx.get(user_path(uid)) or {})
            balances[uid] = user.balance
            for path, doc in tx.query(q.user_newest_first("openPositions", uid, "openedAt")):
                positions[path.rsplit("/", 1)[1]] = doc
            entries = tx.query(
                q.Query("ledger", parent=user_path(uid)).where("seq", ">", 0).order_by("seq", "asc")
            )
            ledger_ok[uid] = sum(Decimal(d["amount"]) for _, d in entries) == user.balance
            for _, d in entries:
                if d["kind"] in ("close", "liquidation") and d.get("positionId"):
                    closes[d["positionId"]] += 1
        return Books(positions, closes, ledger_ok, balances)

    return await store.read(body)


def _level_contradiction(doc: Mapping[str, Any]) -> str | None:
    """A closed position whose reason names a level it did not have, or that the close
    price did not reach."""
    d = doc["details"]
    reason, price = d.get("closeReason"), d.get("closePrice")
    if reason == "stop_loss":
        stop = d.get("stopLoss")
        if stop is None:
            return "stop_loss without a stopLoss"
        if price is not None and not d.get("recovered") and Decimal(price) > Decimal(stop):
            return f"stop_loss at {price} above its stop {stop}"
    if reason == "take_profit" and d.get("takeProfit") is None:
        return "take_profit without a takeProfit"
    return None


def judge(books: Books, crossed: set[str], safe: set[str]) -> Findings:
    """The audit of one try (see the module docstring for what each count means)."""
    f = Findings()
    for pid in crossed:
        doc = books.positions.get(pid)
        status = None if doc is None else doc["details"]["status"]
        if status != "closed":
            f.lost += 1
            f.detail.append(f"{pid}: crossed, left {status}")
    for pid, doc in books.positions.items():
        status = doc["details"]["status"]
        if status == "closing":
            f.closing_left += 1
        if pid in safe and status != "open":
            f.contradictory += 1
            f.detail.append(f"{pid}: stop never crossed, yet {status}")
        if status == "closed":
            reason = _level_contradiction(doc)
            if reason:
                f.contradictory += 1
                f.detail.append(f"{pid}: {reason}")
            if books.closes[pid] == 0:
                f.lost += 1
                f.detail.append(f"{pid}: closed without a close ledger entry")
    for pid, n in books.closes.items():
        if n > 1:
            f.doubled += 1
            f.detail.append(f"{pid}: credited {n} times")
    for uid, ok in books.ledger_ok.items():
        if not ok:
            f.contradictory += 1
            f.detail.append(f"{uid}: ledger does not sum to the balance")
    return f


async def audit(store: Store, storm: Storm) -> Findings:
    return judge(await read_books(store, storm.users), storm.crossed, storm.safe)


async def progress(store: Store) -> tuple[int, int]:
    """(positions no longer open, positions closed) across every user."""

    def body(tx: Tx) -> tuple[int, int]:
        closing = len(tx.query(q.positions_with_status("closing")))
        closed = len(tx.query(q.positions_with_status("closed")))
        return closing + closed, closed

    return await store.read(body)


async def settled(store: Store, storm: Storm) -> bool:
    """Every crossed stop closed (or more: the audit judges which), nothing left `closing`."""
    not_open, closed = await progress(store)
    return closed >= len(storm.crossed) and not_open == closed


def fresh_dir(path: Path) -> Path:
    """A try's own directory (its store and its processes' logs)."""
    path.mkdir(parents=True, exist_ok=True)
    return path


# processes ---------------------------------------------------------------------------


def quiet_market(rng: random.Random | None = None, **config: Any) -> SimulatorConfig:
    """The simulator's config for a fault run: no ticks or marks of its own, so every
    price is one the suite sends; seeded from the try's rng when given."""
    seeded = {} if rng is None else {"seed": rng.randrange(1 << 30)}
    return SimulatorConfig(tick_rate=0, mark_rate=0, **seeded, **config)


def subscribed(sim: KucoinSimulator, symbol: str = SYMBOL) -> bool:
    """A worker's feed is subscribed to the symbol's trades (it will see the next one)."""
    return f"/market/ticker:{symbol}" in sim.subscribed_topics()


def process_env(store_url: str, sim: Any, **extra: str) -> dict[str, str]:
    """What a `cogmora` process under test is started with: its store and the simulator."""
    return {
        "COGMORA_STORE": store_url,
        "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
        "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
        "COGMORA_LOG_LEVEL": "WARNING",
        **extra,
    }


async def start(args: list[str], env: Mapping[str, str], log: Path) -> asyncio.subprocess.Process:
    """`cogmora ARGS` as a user starts it, its output kept in `log` for a failure's report."""
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            COGMORA, *args, env={**os.environ, **env}, stdout=out, stderr=out
        )
    finally:
        out.close()


@asynccontextmanager
async def running(
    args: list[str], env: Mapping[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`cogmora ARGS` for the block, stopped after it (thawed first, in case the suite
    froze it with SIGSTOP; a no-op if the suite killed it)."""
    proc = await start(args, env, log)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
        await stop(proc)


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def stop(proc: asyncio.subprocess.Process, within: float = 30) -> None:
    """SIGTERM, and SIGKILL if it has not stopped in time (the figure is not about it)."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), within)
        except TimeoutError:
            await kill(proc)


# figures -----------------------------------------------------------------------------


@dataclass
class Figure:
    """One row of RELIABILITY.md's table."""

    fault: str
    tries: int
    lost: int
    doubled: int
    contradictory: int
    seed: int
    seconds: float
    note: str = ""

    @property
    def result(self) -> str:
        return "pass" if not (self.lost or self.doubled or self.contradictory) else "FAIL"


def record(figure: Figure) -> None:
    """Append the row to COGMORA_FAULT_REPORT (JSON lines), when set: the long runs that
    RELIABILITY.md quotes write their rows there."""
    target = os.environ.get("COGMORA_FAULT_REPORT")
    if not target:
        return
    row = {**asdict(figure), "result": figure.result, "at": datetime.now(UTC).isoformat()}
    with open(target, "a") as out:
        out.write(json.dumps(row) + "\n")


Try = Callable[[Path, random.Random], Awaitable[tuple[Findings, str]]]


async def run_tries(fault: str, n: int, tmp: Path, one_try: Try, about: str) -> Findings:
    """`n` tries of one fault, each in a directory of its own and drawing from one seeded
    rng (so a rerun is the same run), their findings summed and recorded as the fault's
    row: `about` says what each try was, then where the first tries' faults landed."""
    rng = random.Random(seed())
    total = Findings()
    watch = Stopwatch()
    notes = []
    for i in range(n):
        found, where = await one_try(fresh_dir(tmp / f"try{i}"), rng)
        notes.append(where)
        total.add(found)
    record(
        Figure(
            fault,
            n,
            total.lost,
            total.doubled,
            total.contradictory + total.closing_left,
            seed(),
            watch.seconds,
            f"{about}; {'; '.join(notes[:3])}...",
        )
    )
    return total


class Stopwatch:
    def __init__(self) -> None:
        self.began = time.monotonic()

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self.began, 1)
