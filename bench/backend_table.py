"""Issue 7's table for one backend, with `cogmora worker`, `jobs` and `api` as three processes.

One command per backend:
`python bench/backend_table.py --backend {sqlite,postgres,firestore} [--opens 1000]
[--storms 1000,10000] [--samples 30] [--repeat 3]`.

The three processes are the installed console script on one store (one SQLite file, one
PostgreSQL schema, or one Firestore project on an EMULATOR this script starts on a free
port unless FIRESTORE_EMULATOR_HOST is set), against the KuCoin simulator on loopback in
this process. This process talks to them through HTTP and the simulator only, and sees
what they commit through its own store instance's change feed (another process's view,
so every time below includes the feed's delivery to a fourth process).

1. Opens through the API: 16 concurrent clients over 5 users (`--opens` futures longs with
   a stop loss); opens/s, 5xx and other failures. Reference: one client, 100 opens.
2. Tick to `closing`: positions with stops at distinct levels; one tick crosses exactly one;
   time from just before the simulator writes the frame to the `closing` document on this
   process's feed. `--repeat` rounds of `--samples`. Reference: the store's own floor, a
   commit by this process to its arrival on its own feed.
3. Storms: one tick crosses every stop: the `--opens` positions opened in 1, then (a fresh
   deployment) `--storm` positions written before the processes start; time to all
   `closing` and to all settled (`closed`, by the jobs process's close handler).
   Reference: the per-position time of the smaller storm (how it scales).
Emulator figures are the emulator's, on a shared machine; not production Firestore's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _setup import add_repeat, firestore_emulator, load_average, on_machine, percentile

from cogmora.cli.stores import open_store
from cogmora.domain.enums import Market, Side, Source
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import user_path
from cogmora.services.ledger import AccountBook
from cogmora.services.positions import book_open
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx

SYMBOL = "XBTUSDTM"
COGMORA = str(Path(sys.executable).with_name("cogmora"))
PG = "postgresql://127.0.0.1:5432/test"
SRC = os.environ.get("BENCH_SRC", str(Path(__file__).resolve().parent.parent / "src"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mmm(values: list[float]) -> str:
    return f"{min(values):.0f}/{statistics.median(values):.0f}/{max(values):.0f}"


def new_url(backend: str, tmp: Path) -> str:
    tag = uuid.uuid4().hex[:10]
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'bench-{tag}.db'}"
    if backend == "postgres":
        return f"{PG}?schema=bench_{tag}"
    return f"firestore://demo-bench-{tag}"


def drop(url: str) -> None:
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("=", 1)[1]}" CASCADE')


class Follower:
    """This process's view: every openPositions change on its own store's feed, with the
    wall time it arrived."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.status: dict[str, str] = {}
        self.arrived: dict[tuple[str, str], int] = {}  # (id, status) -> first arrival ns
        self.requested: dict[str, int] = {}  # id -> closeRequestedAt (the worker's clock), ns
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    async def start(self) -> None:
        cursor = await self.store.head()

        async def run() -> None:
            nonlocal cursor
            while True:
                got = await self.store.changes(
                    cursor, groups=frozenset({"openPositions"}), limit=20_000, wait=0.5
                )
                now = time.time_ns()
                for c in got:
                    cursor = c.seq
                    if c.doc is None:
                        continue
                    pid = c.path.rsplit("/", 1)[1]
                    st = c.doc.get("details", {}).get("status", "")
                    self.status[pid] = st
                    self.arrived.setdefault((pid, st), now)
                    at = c.doc.get("details", {}).get("closeRequestedAt")
                    if at and pid not in self.requested:
                        when = datetime.fromisoformat(str(at))
                        self.requested[pid] = int(when.timestamp() * 1e9)
                    if st == "closed":
                        self.arrived.setdefault((pid, "closing"), now)
                if got:
                    self.changed.set()

        self._task = asyncio.create_task(run())

    def count(self, ids: set[str], statuses: tuple[str, ...]) -> int:
        return sum(1 for i in ids if self.status.get(i) in statuses)

    async def until(self, check: Any, within: float) -> bool:
        deadline = time.monotonic() + within
        while not check():
            if time.monotonic() > deadline:
                return False
            self.changed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 0.2)
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task


@dataclass
class Deployment:
    url: str
    env: dict[str, str]
    http: httpx.AsyncClient
    sim: KucoinSimulator
    follower: Follower
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def seed_users(users: int) -> list[str]:
    return [f"bench{u}" for u in range(users)]


async def seed_positions(store: Store, uids: list[str], n: int, price: Decimal) -> None:
    """`n` futures longs booked as the API would (margin debited), before any process runs."""
    from cogmora.domain.models import User

    now = datetime.now(UTC)

    def users(tx: Tx) -> None:
        for uid in uids:
            tx.set(user_path(uid), User(uid, Decimal("1000000000"), now).to_doc())

    await store.transact(users)
    request = OpenRequest(
        SYMBOL,
        Market.FUTURES,
        Side.LONG,
        qty=Decimal("0.01"),
        leverage=Decimal(10),
        stop_loss=(price * Decimal("0.95")).quantize(Decimal("0.1")),
        source=Source.API,
    )
    fees = FeeSchedule()
    chunk = 150  # a position and a ledger entry each, under Firestore's 500 writes
    for start in range(0, n, chunk):

        def write(tx: Tx, start: int = start) -> None:
            book = AccountBook.from_docs(tx.get_many([user_path(u) for u in uids]))
            for i in range(start, min(n, start + chunk)):
                p = build_position(request, uids[i % len(uids)], new_id(), price, fees, now)
                book_open(tx, book, p)
            for wpath, doc in book.writes():
                tx.set(wpath, doc)

        await store.transact(write)


@asynccontextmanager
async def deployment(
    backend: str, tmp: Path, users: int, seed: int = 0
) -> AsyncIterator[Deployment]:
    url = new_url(backend, tmp)
    sim = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=11))
    await sim.start()
    store = open_store(url)
    await store.start()
    uids = seed_users(users)
    if seed:
        t0 = time.perf_counter()
        await seed_positions(store, uids, seed, sim.price(SYMBOL))
        print(f"  (seeded {seed} positions in {time.perf_counter() - t0:.1f} s)", flush=True)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "COGMORA_STORE": url,
        "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
        "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
        "COGMORA_API_PORT": str(port),
        "COGMORA_LOG_LEVEL": "WARNING",
    }
    http = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        timeout=60,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )
    follower = Follower(store)
    d = Deployment(url, env, http, sim, follower)
    try:
        for name in ("worker", "jobs", "api"):
            log = (tmp / f"{name}-{url.rsplit('-', 1)[-1][:10]}.log").open("wb")
            d.procs[name] = subprocess.Popen(  # noqa: ASYNC220 (set-up, not measured)
                [COGMORA, name], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 180
        while True:
            try:
                if (await http.get("/healthz")).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not come up")
            await asyncio.sleep(0.2)
        for uid in uids:
            out = subprocess.run(  # noqa: ASYNC221 (set-up, not measured)
                [COGMORA, "users", "create", uid, "--balance", "1000000000"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode == 0:
                d.tokens[uid] = json.loads(out.stdout)["token"]
        await follower.start()
        if seed:
            await asyncio.wait_for(sim.wait_subscribed([SYMBOL]), 180)
        yield d
    finally:
        await follower.stop()
        await http.aclose()
        for proc in d.procs.values():
            proc.terminate()
        for proc in d.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        await store.close()
        await sim.stop()
        drop(url)


def level(price: Decimal, factor: str) -> str:
    return str((price * Decimal(factor)).quantize(Decimal("0.1")))


async def open_many(
    d: Deployment, n: int, clients: int, stop: str | None
) -> tuple[float, list[str], dict[str, int]]:
    """`n` opens by `clients` concurrent callers; (seconds, ids, failures by kind)."""
    uids = sorted(d.tokens)
    todo = iter(range(n))
    ids: list[str] = []
    fails: dict[str, int] = {}

    async def client() -> None:
        for k in todo:
            uid = uids[k % len(uids)]
            body = {
                "symbol": SYMBOL,
                "market": "futures",
                "side": "long",
                "qty": "0.01",
                "leverage": "10",
            }
            if stop is not None:
                body["stopLoss"] = stop
            try:
                r = await d.http.post(
                    "/v1/positions", json=body, headers={"Authorization": f"Bearer {d.tokens[uid]}"}
                )
            except httpx.HTTPError as exc:
                fails[type(exc).__name__] = fails.get(type(exc).__name__, 0) + 1
                continue
            if r.status_code == 201:
                ids.append(r.json()["id"])
            else:
                key = f"{r.status_code // 100}xx"
                fails[key] = fails.get(key, 0) + 1
                if fails[key] <= 2:
                    print(f"    {r.status_code}: {r.text[:200]}", flush=True)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - began, ids, fails


async def store_floor(d: Deployment, samples: int) -> list[float]:
    """A commit by this process to its arrival on this process's feed (ms)."""
    store = d.follower.store
    out = []
    for k in range(samples):
        cursor = await store.head()
        t0 = time.time_ns()

        def write(tx: Tx, k: int = k) -> None:
            tx.set(f"users/floor/openPositions/f{k}", {"details": {"status": "x"}})

        await store.transact(write)
        while not await store.changes(cursor, groups=frozenset({"openPositions"}), wait=1.0):
            pass
        out.append((time.time_ns() - t0) / 1e6)
    return out


async def tick_to_closing(d: Deployment, samples: int) -> tuple[list[float], list[float], int]:
    """One round: `samples` positions at distinct stop levels, each crossed by its own tick."""
    base = d.sim.price(SYMBOL)
    await d.sim.set_price(SYMBOL, str(base))
    stops = [level(base, f"{0.99 - 0.001 * i:.3f}") for i in range(samples)]
    ids = []
    for stop in stops:
        _, got, _ = await open_many(d, 1, 1, stop)
        ids += got
    await d.follower.until(lambda: d.follower.count(set(ids), ("open",)) == len(ids), 60)
    await asyncio.sleep(1.0)  # the worker's feed delivers as ours does; give it the margin
    lat: list[float] = []
    decided: list[float] = []
    missed = 0
    for pid, stop in zip(ids, stops, strict=False):
        cross = str(Decimal(stop) - base * Decimal("0.0004"))
        t0 = time.time_ns()
        await d.sim.set_price(SYMBOL, cross)
        if await d.follower.until(lambda pid=pid: (pid, "closing") in d.follower.arrived, 20):
            lat.append((d.follower.arrived[(pid, "closing")] - t0) / 1e6)
            if pid in d.follower.requested:
                decided.append((d.follower.requested[pid] - t0) / 1e6)
        else:
            missed += 1
    return decided, lat, missed


async def storm(d: Deployment, ids: set[str], within: float) -> tuple[float, float, int, int]:
    """One tick under every stop: (s to all closing, s to all closed, closing, closed)."""
    f = d.follower
    base = d.sim.price(SYMBOL)
    t0 = time.monotonic()
    await d.sim.set_price(SYMBOL, str((base * Decimal("0.94")).quantize(Decimal("0.1"))))
    deadline = t0 + within
    k = 0
    # A live feed goes on ticking: re-send a crossing price every 2 s (a worker still
    # loading its book when the first tick came must not wait for the deadline).
    while not await f.until(lambda: f.count(ids, ("closing", "closed")) == len(ids), 2.0):
        if time.monotonic() > deadline:
            break
        k += 1
        price = base * (Decimal("0.94") - Decimal("0.0001") * (k % 2))
        await d.sim.set_price(SYMBOL, str(price.quantize(Decimal("0.1"))))
    closing = time.monotonic() - t0
    await f.until(lambda: f.count(ids, ("closed",)) == len(ids), within)
    closed = time.monotonic() - t0
    return closing, closed, f.count(ids, ("closing", "closed")), f.count(ids, ("closed",))


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-table-"))
    label = "Firestore EMULATOR" if args.backend == "firestore" else args.backend
    print(f"{label}: worker, jobs, api as 3 processes", flush=True)
    if not args.storms_only:
        async with deployment(args.backend, tmp, args.users) as d:
            base = d.sim.price(SYMBOL)
            secs1, ids1, fails1 = await open_many(d, 100, 1, None)
            ref = len(ids1) / secs1
            print(
                f"opens, 1 client (reference): {len(ids1)} in {secs1:.1f} s = {ref:.0f}/s, "
                f"failures {fails1}; load {load_average()}",
                flush=True,
            )
            secs, ids, fails = await open_many(d, args.opens, args.clients, level(base, "0.95"))
            rate = len(ids) / secs
            print(
                f"opens, {args.clients} clients over {args.users} users: {len(ids)} in {secs:.1f} s"
                f" = {rate:.0f}/s ({rate / ref:.2f}x one client), failures {fails}; "
                f"load {load_average()}",
                flush=True,
            )
            if args.opens_only:
                return
            await asyncio.wait_for(d.sim.wait_subscribed([SYMBOL]), 120)
            floor = await store_floor(d, args.samples)
            print(
                f"store floor (own commit -> own feed): p50 {statistics.median(floor):.0f} ms, "
                f"p99 {percentile(floor, 0.99):.0f} ms; load {load_average()}",
                flush=True,
            )
            p50s, p99s, d50s, d99s = [], [], [], []
            for r in range(args.repeat):
                decided, lat, missed = await tick_to_closing(d, args.samples)
                if not lat:
                    print(f"tick -> closing round {r + 1}: none of {missed} seen", flush=True)
                    continue
                p50s.append(statistics.median(lat))
                p99s.append(percentile(lat, 0.99))
                d50s.append(statistics.median(decided))
                d99s.append(percentile(decided, 0.99))
                print(
                    f"tick -> closing round {r + 1}: n={len(lat)} missed={missed}; committed "
                    f"(closeRequestedAt) p50 {d50s[-1]:.0f} ms p99 {d99s[-1]:.0f} ms; seen on "
                    f"another process's feed p50 {p50s[-1]:.0f} ms p99 {p99s[-1]:.0f} ms "
                    f"({p50s[-1] / statistics.median(floor):.1f}x the floor's p50); "
                    f"load {load_average()}",
                    flush=True,
                )
            if p50s:
                print(
                    f"tick -> closing over {len(p50s)} rounds of {args.samples}, min/median/max: "
                    f"committed p50 {mmm(d50s)} ms, p99 {mmm(d99s)} ms; seen p50 {mmm(p50s)} ms, "
                    f"p99 {mmm(p99s)} ms; median seen p50 / the floor's p50: "
                    f"{statistics.median(p50s) / statistics.median(floor):.1f}x",
                    flush=True,
                )
    first: tuple[int, tuple[float, float, int, int]] | None = None
    for size in args.storms:
        async with deployment(args.backend, tmp, args.users, seed=size) as d:
            rows = await d.follower.store.read(lambda tx: tx.query(q.open_positions(SYMBOL)))
            stormed = {p.rsplit("/", 1)[1] for p, _ in rows}
            await asyncio.sleep(2.0)
            got = await storm(d, stormed, args.within)
            line = (
                f"storm {len(stormed)}: all closing {got[0]:.1f} s "
                f"({got[2]} of {len(stormed)}), all settled {got[1]:.1f} s ({got[3]}); "
                f"{got[2] / got[0]:.0f} closing/s, "
                f"{got[3] / got[1]:.0f} settled/s"
            )
            if first is None:
                first = (len(stormed), got)
            else:
                n0, g0 = first
                line += (
                    f"; per position vs the {n0} storm: to closing "
                    f"{(got[0] / len(stormed)) / (g0[0] / n0):.2f}x, to settled "
                    f"{(got[1] / len(stormed)) / (g0[1] / n0):.2f}x"
                )
            print(f"{line}; load {load_average()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgres", "firestore"), required=True)
    parser.add_argument("--opens", type=int, default=1000)
    parser.add_argument(
        "--storms", type=lambda v: [int(x) for x in v.split(",") if x], default=[1000, 10_000]
    )
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--samples", type=int, default=30)
    add_repeat(parser, default=3)
    parser.add_argument("--opens-only", action="store_true")
    parser.add_argument("--storms-only", action="store_true")
    parser.add_argument("--within", type=float, default=600.0)
    args = parser.parse_args()
    with on_machine():
        if args.backend == "firestore":
            with firestore_emulator():
                asyncio.run(main_async(args))
        else:
            asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
