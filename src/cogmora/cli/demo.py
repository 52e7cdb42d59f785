"""`cogmora demo`: the whole system, offline, against the built-in KuCoin simulator.

It starts the simulator (a random walk with a little extra volatility so levels get
crossed), a fresh SQLite store, the worker, the close handler and the API; creates demo
users with positions and triggers through the real HTTP API; shows a live terminal view
of prices, fires, closes and balances; and ends with a summary that checks every user's
ledger against their balance.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from cogmora.cli.compose import System, build_system
from cogmora.cli.processes import start_components
from cogmora.domain.money import quantize
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore

SPOT_SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT"]
FUTURES_SYMBOLS = ["XBTUSDTM", "ETHUSDTM", "SOLUSDTM"]
USERS = {"alice": "25000", "bob": "10000", "carol": "5000"}


@dataclass
class DemoState:
    events: deque[str] = field(default_factory=lambda: deque(maxlen=12))
    counts: Counter[str] = field(default_factory=Counter)
    tokens: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fmt(value: Any, places: int = 2) -> str:
    try:
        return f"{Decimal(str(value)):,.{places}f}"
    except Exception:
        return str(value)


async def _seed(
    http: httpx.AsyncClient, sim: KucoinSimulator, state: DemoState, rng: random.Random
) -> None:
    """Positions with levels a few tenths of a percent away, and triggers on both sides."""
    for uid, token in state.tokens.items():
        auth = {"Authorization": f"Bearer {token}"}
        for symbol in SPOT_SYMBOLS[:3]:
            price = sim.price(symbol)
            body: dict[str, Any] = {
                "symbol": symbol,
                "market": "spot",
                "side": "long",
                "notional": "500",
                "stopLoss": str(quantize(price * Decimal("0.997"))),
                "takeProfit": str(quantize(price * Decimal("1.003"))),
            }
            await _post(http, "/v1/positions", body, auth, state, f"{uid} opens {symbol}")
        for symbol in FUTURES_SYMBOLS:
            price = sim.price(symbol)
            side = rng.choice(["long", "short"])
            sign = Decimal(1) if side == "long" else Decimal(-1)
            body = {
                "symbol": symbol,
                "market": "futures",
                "side": side,
                "notional": "2000",
                "leverage": str(rng.choice([5, 10, 20])),
                "stopLoss": str(quantize(price * (1 - sign * Decimal("0.004")))),
                "takeProfit": str(quantize(price * (1 + sign * Decimal("0.004")))),
            }
            await _post(http, "/v1/positions", body, auth, state, f"{uid} {side}s {symbol}")
        for symbol in SPOT_SYMBOLS:
            price = sim.price(symbol)
            for op, factor in (("above", "1.002"), ("below", "0.998")):
                body = {
                    "symbol": symbol,
                    "market": "spot",
                    "condition": {"op": op, "price": str(quantize(price * Decimal(factor)))},
                    "action": {
                        "side": "long",
                        "notional": "300",
                        "stopLoss": str(quantize(price * Decimal(factor) * Decimal("0.996"))),
                    },
                }
                await _post(http, "/v1/triggers", body, auth, state, f"{uid} trigger {op} {symbol}")


async def _agent_and_watchlist(http: httpx.AsyncClient, system: System, state: DemoState) -> None:
    """Alice switches her builtin agent on (and runs it once now); Bob watches a few pairs."""
    from cogmora.cli.jobs import run_agent_now

    alice = {"Authorization": f"Bearer {state.tokens['alice']}"}
    bob = {"Authorization": f"Bearer {state.tokens['bob']}"}
    config = {
        "enabled": True,
        "schedule": "every 1m",
        "provider": "builtin",
        "symbols": ["BTC-USDT", "XBTUSDTM", "ETHUSDTM"],
        "risk": {
            "maxLeverage": 5,
            "maxPositionNotional": "2000",
            "maxOpenPositions": 10,
            "maxDailyLoss": "500",
        },
    }
    response = await http.put("/v1/agent", json=config, headers=alice)
    if response.status_code >= 400:
        state.events.appendleft(f"[red]agent config: {response.json().get('detail')}")
        return
    await http.put("/v1/watchlist", json={"symbols": [*SPOT_SYMBOLS, "NOPE-USDT"]}, headers=bob)
    assert system.jobs is not None, "the demo starts the scheduler before the agent"
    decision = await run_agent_now(system.jobs, "alice")
    doc = decision.to_doc()
    state.counts["agent runs"] += 1
    state.events.appendleft(
        f"[magenta]alice's agent: {len(doc.get('applied') or [])} applied, "
        f"{len(doc.get('refused') or [])} refused: {str(doc.get('rationale') or '')[:60]}"
    )


async def _post(
    http: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    auth: dict[str, str],
    state: DemoState,
    label: str,
) -> None:
    response = await http.post(path, json=body, headers=auth)
    if response.status_code >= 400:
        state.events.appendleft(f"[red]{label}: {response.json().get('detail')}")
    else:
        state.counts["api " + path] += 1


async def _watch(system: System, state: DemoState) -> None:
    """Narrate the store's change feed: fires, closes and settlements as they commit."""
    cursor = await system.store.head()
    while True:
        for change in await system.store.changes(
            cursor, groups=frozenset({"openPositions", "tradeTriggers"}), wait=1.0
        ):
            cursor = change.seq
            doc = change.doc or {}
            details = doc.get("details", {})
            status = details.get("status")
            who, what = doc.get("uid", "?"), doc.get("symbol", "?")
            if change.group == "openPositions" and status == "closing":
                state.counts[f"closing:{details.get('closeReason')}"] += 1
                state.events.appendleft(
                    f"[yellow]{who} {what} {details.get('closeReason')} at "
                    f"{_fmt(details.get('closePrice'), 4)}"
                )
            elif change.group == "openPositions" and status == "closed":
                state.counts["settled"] += 1
                pnl = Decimal(doc.get("realizedPnl", "0"))
                color = "green" if pnl >= 0 else "red"
                state.events.appendleft(f"[{color}]{who} {what} settled, P&L {_fmt(pnl)} USDT")
            elif change.group == "openPositions" and status == "open" and doc.get("triggerId"):
                state.counts["trigger opens"] += 1
            elif change.group == "tradeTriggers" and status in ("triggered", "failed"):
                state.counts[f"trigger {status}"] += 1
                state.events.appendleft(
                    f"[cyan]{who} trigger {doc['condition']['op']} "
                    f"{_fmt(doc['condition']['price'], 4)} on {what} {status} at "
                    f"{_fmt(details.get('firedPrice'), 4)}"
                )


async def _balances(system: System) -> dict[str, dict[str, Decimal]]:
    out = {}
    for uid in USERS:
        view = await system.positions.account(uid)
        ledger = await system.accounts.ledger(uid)
        out[uid] = {
            "balance": view.balance,
            "equity": view.equity,
            "upnl": view.unrealized_pnl,
            "ledger": sum((e.amount for e in ledger), Decimal(0)),
            "deposits": sum((e.amount for e in ledger if e.kind.value == "deposit"), Decimal(0)),
        }
    return out


def _metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def _ticks(registry: CollectorRegistry) -> float:
    return sum(
        _metric(registry, "cogmora_engine_ticks_total", market=m) for m in ("spot", "futures")
    )


def _view(
    system: System,
    sim: KucoinSimulator,
    state: DemoState,
    balances: dict[str, dict[str, Decimal]],
    duration: float,
) -> Group:
    prices = Table(title="Prices (simulated KuCoin)", expand=True)
    prices.add_column("symbol")
    prices.add_column("last", justify="right")
    for symbol in SPOT_SYMBOLS + FUTURES_SYMBOLS:
        quote = system.live.get(symbol)
        prices.add_row(symbol, _fmt(quote.price, 4) if quote else "-")
    accounts = Table(title="Accounts (USDT)", expand=True)
    for col in ("user", "balance", "equity", "unrealized"):
        accounts.add_column(col, justify="right" if col != "user" else "left")
    for uid, b in balances.items():
        accounts.add_row(uid, _fmt(b["balance"]), _fmt(b["equity"]), _fmt(b["upnl"]))
    reg = system.registry
    worker = system.worker
    health = worker.health() if worker else {}
    feeds = " ".join(
        f"{m}:{'up' if f['connected'] else 'down'}" for m, f in health.get("feeds", {}).items()
    )
    elapsed = time.monotonic() - state.started
    stats = (
        f"t={elapsed:4.0f}/{duration:.0f}s  feeds {feeds}  "
        f"ticks {_ticks(reg):,.0f}  "
        f"commits {_metric(reg, 'cogmora_engine_commits_total'):,.0f}  "
        f"levels {health.get('book', {}).get('levels', 0)}  "
        f"closes {sum(v for k, v in state.counts.items() if k.startswith('closing:'))}  "
        f"fires {state.counts['trigger triggered']}"
    )
    events = "\n".join(state.events) or "waiting for the market to move..."
    return Group(
        Panel(stats, title="Cogmora demo"), prices, accounts, Panel(events, title="Events")
    )


async def run_demo(duration: float, seed: int, keep_db: Path | None, console: Console) -> int:
    rng = random.Random(seed)
    sim = KucoinSimulator(SimulatorConfig(seed=seed, tick_rate=8.0, volatility=Decimal("0.0006")))
    await sim.start()
    tmp = tempfile.TemporaryDirectory(prefix="cogmora-demo-")
    db = keep_db or Path(tmp.name) / "demo.db"
    if keep_db is not None:
        await asyncio.to_thread(keep_db.unlink, missing_ok=True)
    port = _free_port()
    settings = Settings(
        store_url=f"sqlite:///{db}",
        kucoin_spot_url=sim.spot_url,
        kucoin_futures_url=sim.futures_url,
        api_port=port,
        log_level="ERROR",
        log_json=False,
    )
    store = SqliteStore(db)
    await store.start()
    system = build_system(settings, store)
    state = DemoState()
    tasks: list[asyncio.Task[None]] = []
    try:
        await start_components(system, ("worker", "close-handler", "scheduler", "api"))
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
        system.closers.append(http.aclose)
        for _ in range(250):
            with contextlib.suppress(httpx.TransportError):
                await http.get("/healthz")
                break
            await asyncio.sleep(0.02)
        for uid, balance in USERS.items():
            _, state.tokens[uid] = await system.accounts.create_user(uid, Decimal(balance))
        await _seed(http, sim, state, rng)
        tasks.append(asyncio.create_task(_watch(system, state)))
        await _agent_and_watchlist(http, system, state)
        console.print(
            f"[bold]Cogmora demo[/] API on http://127.0.0.1:{port}/docs "
            f"(simulator {sim.spot_url}); store {db}"
        )
        deadline = time.monotonic() + duration
        balances = await _balances(system)
        if console.is_terminal:
            with Live(
                _view(system, sim, state, balances, duration), console=console, refresh_per_second=4
            ) as live:
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    balances = await _balances(system)
                    live.update(_view(system, sim, state, balances, duration))
        else:
            next_print = 0.0
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                if time.monotonic() >= next_print:
                    balances = await _balances(system)
                    console.print(_view(system, sim, state, balances, duration).renderables[0])
                    next_print = time.monotonic() + 5
        await system.settler.settle_all()
        balances = await _balances(system)
        return _summary(system, state, balances, console)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await system.supervisor.stop()
        await system.aclose()
        await store.close()
        await sim.stop()
        tmp.cleanup()


def _summary(
    system: System, state: DemoState, balances: dict[str, dict[str, Decimal]], console: Console
) -> int:
    reg = system.registry
    table = Table(title="Summary")
    for col in ("user", "deposits", "balance", "equity", "ledger sum", "ledger == balance"):
        table.add_column(col, justify="right" if col != "user" else "left")
    ok = True
    for uid, b in balances.items():
        same = b["ledger"] == b["balance"]
        ok &= same
        table.add_row(
            uid,
            _fmt(b["deposits"]),
            _fmt(b["balance"], 8),
            _fmt(b["equity"]),
            _fmt(b["ledger"], 8),
            "[green]yes" if same else "[red]NO",
        )
    console.print(table)
    p50 = _quantile(reg, 0.5)
    p99 = _quantile(reg, 0.99)
    closes = {k.split(":", 1)[1]: v for k, v in state.counts.items() if k.startswith("closing:")}
    console.print(
        f"positions opened via API: {state.counts['api /v1/positions']}, "
        f"triggers placed: {state.counts['api /v1/triggers']}, "
        f"triggers fired: {state.counts['trigger triggered']} "
        f"(failed: {state.counts['trigger failed']}), closes by reason: {dict(closes)}, "
        f"settled: {state.counts['settled']}, agent runs: {state.counts['agent runs']}"
    )
    console.print(
        f"ticks evaluated: {_ticks(reg):,.0f}; "
        f"tick -> commit latency p50 <= {p50}, p99 <= {p99} (histogram bucket bounds)"
    )
    console.print("[green]every ledger sums to its balance" if ok else "[red]LEDGER MISMATCH")
    return 0 if ok else 1


def _quantile(registry: CollectorRegistry, q: float) -> str:
    name = "cogmora_engine_tick_to_commit_seconds"
    total = registry.get_sample_value(f"{name}_count") or 0.0
    if not total:
        return "n/a"
    for metric in registry.collect():
        if metric.name != name:
            continue
        for sample in metric.samples:
            if sample.name.endswith("_bucket") and sample.value >= q * total:
                bound = float(sample.labels["le"])
                return f"{bound * 1000:g} ms" if bound != float("inf") else "inf"
    return "n/a"
