"""Shared set-up for benchmarks: users and positions written in bulk, straight to a store.

Bulk set-up is not what is measured; what each benchmark measures goes through the real
code path (engine, settler, API).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import NamedTuple

from cogmora import emulators
from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side, Source
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import Position, User
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import user_path
from cogmora.store.port import Store, Tx


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    return next(
        (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")),
        platform.processor() or "unknown CPU",
    )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: on a shared machine, what a figure was taken under."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine() -> str:
    """CPU model, cores, Python and the load average now: printed by every benchmark, so a
    figure read elsewhere says what it was measured on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpu_model()}, {cpus} cores, Python {platform.python_version()}, "
        f"load average {load_average()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def spread(values: list[float], fmt: str = "{:,.3f}") -> str:
    """`min / median / max (n=N)` of repeated measurements."""
    ordered = sorted(values)
    mid = statistics.median(ordered)
    return (
        f"{fmt.format(ordered[0])} / {fmt.format(mid)} / {fmt.format(ordered[-1])}"
        f" (min / median / max of {len(ordered)})"
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    """The value below which a share `p` of `values` falls (nearest rank, no interpolation:
    p99 of 30 samples is the largest); NaN when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def ratio(ours: float, theirs: float) -> str:
    """Ours over theirs (both rates, or both times inverted by the caller), as `N.NNx`."""
    return f"{ours / theirs:,.2f}x" if theirs else "n/a"


async def write_users(
    store: Store, uids: Iterable[str], balance: Decimal, chunk: int = 5000
) -> None:
    """Users with `balance`, `chunk` a transaction (Firestore takes 500 writes at most)."""
    now = datetime.now(UTC)
    every = list(uids)
    for first in range(0, len(every), chunk):

        def users(tx: Tx, some: list[str] = every[first : first + chunk]) -> None:
            for uid in some:
                tx.set(user_path(uid), User(uid, balance, now).to_doc())

        await store.transact(users)


async def write_positions(
    store: Store, positions: Iterable[Position], chunk: int = 5000
) -> list[Position]:
    """The positions' documents as they are, `chunk` a transaction; returns them."""
    written: list[Position] = []
    rest = iter(positions)
    while batch := list(islice(rest, chunk)):

        def write(tx: Tx, batch: list[Position] = batch) -> None:
            for p in batch:
                tx.set(p.path, p.to_doc())

        await store.transact(write)
        written += batch
    return written


async def bulk_positions(
    store: Store,
    count: int,
    *,
    symbol: str = "BTC-USDT",
    market: Market = Market.SPOT,
    side: Side = Side.LONG,
    entry: Decimal = Decimal("60000"),
    stop_loss: Decimal | None = Decimal("59000"),
    users: int = 1000,
    chunk: int = 5000,
) -> list[str]:
    """`count` open positions spread over `users` users with ample balance."""
    fees = FeeSchedule()
    now = datetime.now(UTC)
    uids = [f"bench{i:05d}" for i in range(users)]
    await write_users(store, uids, Decimal("1000000000"), chunk)
    request = OpenRequest(
        symbol,
        market,
        side,
        qty=Decimal("0.01"),
        stop_loss=stop_loss,
        leverage=Decimal(10) if market is Market.FUTURES else None,
        source=Source.API,
    )
    positions = (
        build_position(request, uids[i % users], new_id(), entry, fees, now) for i in range(count)
    )
    return [p.id for p in await write_positions(store, positions, chunk)]


# ---- closing positions for the settlement benchmarks (SQLite and PostgreSQL)

USERS = 1000
FEES = FeeSchedule()
REASONS = (CloseReason.MANUAL, CloseReason.STOP_LOSS, CloseReason.TAKE_PROFIT)


def closing_position(i: int, uid: str, now: datetime) -> Position:
    """Position number `i`, already `closing`: a deterministic mix of markets and outcomes."""
    entry = Decimal(60000) + i % 997
    if i % 3 == 0:
        request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=Decimal("0.01"))
    else:
        side = Side.LONG if i % 2 else Side.SHORT
        request = OpenRequest(
            "XBTUSDTM", Market.FUTURES, side, qty=Decimal("0.013"), leverage=Decimal(1 + i % 20)
        )
    p = build_position(request, uid, new_id(), entry, FEES, now)
    if i % 11 == 0 and p.details.liquidation_price is not None:
        reason, price = CloseReason.LIQUIDATION, p.details.liquidation_price
    else:
        reason, price = REASONS[i % 3], entry * (Decimal(1) + Decimal((i % 41) - 20) / 1000)
    return p.with_details(
        status=PositionStatus.CLOSING,
        close_reason=reason,
        close_price=price,
        close_requested_at=now,
    )


async def fill_closing(
    store: Store, n: int, chunk: int = 5000, uids: list[str] | None = None
) -> None:
    """`n` closing positions over USERS users (or `uids`) with ample balance."""
    now = datetime.now(UTC)
    uids = uids or [f"bench{i:05d}" for i in range(USERS)]
    await write_users(store, uids, Decimal(10_000_000), chunk)
    closing = (closing_position(i, uids[i % len(uids)], now) for i in range(n))
    await write_positions(store, closing, chunk)


@contextmanager
def firestore_emulator(start_within: float = 90.0) -> Iterator[str]:
    """host:port of FIRESTORE_EMULATOR_HOST, or of an emulator of the bench's own on a free
    port, stopped (its whole process group) however the bench ends: normal exit,
    exception, Ctrl-C, SIGTERM, SIGHUP. The tests start theirs with the same code
    (`cogmora.emulators`)."""
    with emulators.firestore_emulator(start_within, exit_on_signals=True) as host:
        yield host


# ---- repeated, interleaved runs (issue 11: figures that hold on another machine)


class Row(NamedTuple):
    """One line of a `Runs.table`: the figure `key`, its label, and the figures (one or a
    tuple) whose medians it is compared with, if any. Rates are divided by `vs`'s median; a
    time or latency (`lower=True`) divides `vs`'s median by its own: either way above 1x
    means better."""

    key: str
    label: str
    vs: str | tuple[str, ...] | None = None
    fmt: str = "{:,.0f}"
    lower: bool = False


class Runs:
    """Every figure of every round, by name.

    Why medians and rounds: on this shared machine the load changes by the minute, so one
    run says little; each way runs once per round (interleaved, so a busy minute falls on
    every way alike) and ratios are taken between medians, which one lucky or unlucky
    round does not move.
    """

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return median(self.values[key])

    def spread(self, key: str, fmt: str = "{:,.3f}") -> str:
        return spread(self.values[key], fmt)

    def table(self, rows: Sequence[Row]) -> str:
        """A markdown table: min / median / max of each figure and its ratio of medians."""
        rounds = max(len(v) for v in self.values.values())
        out = [
            f"| figure ({rounds} rounds) | min | median | max | ratio of medians |",
            "|---|---|---|---|---|",
        ]
        for row in rows:
            ordered = sorted(self.values[row.key])
            low, mid, high = (row.fmt.format(v) for v in (ordered[0], median(ordered), ordered[-1]))
            versus = "; ".join(self._versus(row, median(ordered)))
            out.append(f"| {row.label} | {low} | **{mid}** | {high} | {versus} |")
        return "\n".join(out)

    def _versus(self, row: Row, ours: float) -> Iterator[str]:
        others = (row.vs,) if isinstance(row.vs, str) else row.vs or ()
        for other in others:
            theirs = self.median(other)
            if row.lower:
                yield f"{ratio(theirs, ours)} {other} (its / this)"
            else:
                yield f"{ratio(ours, theirs)} {other}"


def add_repeat(parser: argparse.ArgumentParser, default: int = 5) -> None:
    """`--repeat N` (`--repeats N` too: the emulator benches' older spelling still works)."""
    parser.add_argument(
        "--repeat",
        "--repeats",
        dest="repeat",
        type=int,
        default=default,
        help="rounds; every way runs once a round, and figures are min / median / max",
    )


@contextmanager
def on_machine() -> Iterator[None]:
    """`machine()` printed before and after what it wraps (also when that fails): a figure
    is read with the load it was taken under, and a long bench's load moves meanwhile."""
    print(f"machine at start: {machine()}", flush=True)
    try:
        yield
    finally:
        print(f"machine at end: {machine()}", flush=True)


def rounds(repeat: int) -> Iterator[int]:
    """Round numbers 1..repeat, each announced on stderr with the load: a long bench on a
    busy machine shows where it is, and stdout keeps only the figures."""
    for i in range(1, repeat + 1):
        print(f"round {i}/{repeat}, load average {load_average()}", file=sys.stderr, flush=True)
        yield i
