"""The demo's live terminal view: prices, accounts, feed state, and the latest events as
narrated from the store's change feed."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from cogmora.cli.compose import System
from cogmora.cli.demo.script import FUTURES_SYMBOLS, SPOT_SYMBOLS, USERS, DemoState


def fmt(value: Any, places: int = 2) -> str:
    try:
        return f"{Decimal(str(value)):,.{places}f}"
    except Exception:
        return str(value)


async def balances_of(system: System) -> dict[str, dict[str, Decimal]]:
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


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def ticks_evaluated(registry: CollectorRegistry) -> float:
    return sum(
        metric(registry, "cogmora_engine_ticks_total", market=m) for m in ("spot", "futures")
    )


def render(
    system: System,
    state: DemoState,
    balances: dict[str, dict[str, Decimal]],
    duration: float,
) -> Group:
    prices = Table(title="Prices (simulated KuCoin)", expand=True)
    prices.add_column("symbol")
    prices.add_column("last", justify="right")
    for symbol in SPOT_SYMBOLS + FUTURES_SYMBOLS:
        quote = system.live.get(symbol)
        prices.add_row(symbol, fmt(quote.price, 4) if quote else "-")
    accounts = Table(title="Accounts (USDT)", expand=True)
    for col in ("user", "balance", "equity", "unrealized"):
        accounts.add_column(col, justify="right" if col != "user" else "left")
    for uid, b in balances.items():
        accounts.add_row(uid, fmt(b["balance"]), fmt(b["equity"]), fmt(b["upnl"]))
    reg = system.registry
    worker = system.worker
    health = worker.health() if worker else {}
    feeds = " ".join(
        f"{m}:{'up' if f['connected'] else 'down'}" for m, f in health.get("feeds", {}).items()
    )
    elapsed = time.monotonic() - state.started
    stats = (
        f"t={elapsed:4.0f}/{duration:.0f}s  feeds {feeds}  "
        f"ticks {ticks_evaluated(reg):,.0f}  "
        f"commits {metric(reg, 'cogmora_engine_commits_total'):,.0f}  "
        f"levels {health.get('book', {}).get('levels', 0)}  "
        f"closes {sum(v for k, v in state.counts.items() if k.startswith('closing:'))}  "
        f"fires {state.counts['trigger triggered']}"
    )
    events = "\n".join(state.events) or "waiting for the market to move..."
    return Group(
        Panel(stats, title="Cogmora demo"), prices, accounts, Panel(events, title="Events")
    )


async def narrate(system: System, state: DemoState) -> None:
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
                    f"{fmt(details.get('closePrice'), 4)}"
                )
            elif change.group == "openPositions" and status == "closed":
                state.counts["settled"] += 1
                pnl = Decimal(doc.get("realizedPnl", "0"))
                color = "green" if pnl >= 0 else "red"
                state.events.appendleft(f"[{color}]{who} {what} settled, P&L {fmt(pnl)} USDT")
            elif change.group == "openPositions" and status == "open" and doc.get("triggerId"):
                state.counts["trigger opens"] += 1
            elif change.group == "tradeTriggers" and status in ("triggered", "failed"):
                state.counts[f"trigger {status}"] += 1
                state.events.appendleft(
                    f"[cyan]{who} trigger {doc['condition']['op']} "
                    f"{fmt(doc['condition']['price'], 4)} on {what} {status} at "
                    f"{fmt(details.get('firedPrice'), 4)}"
                )
