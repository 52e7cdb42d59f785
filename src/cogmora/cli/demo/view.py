"""The demo's live terminal view: prices, accounts, feed state, and the latest events as
narrated from the store's change feed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from cogmora.cli.compose import System
from cogmora.cli.demo.script import FUTURES_SYMBOLS, SPOT_SYMBOLS, USERS, DemoState
from cogmora.domain.enums import PositionStatus
from cogmora.domain.models import Position
from cogmora.domain.positions import mark_value
from cogmora.errors import FeedResync


def fmt(value: Any, places: int = 2) -> str:
    try:
        return f"{Decimal(str(value)):,.{places}f}"
    except Exception:
        return str(value)


@dataclass(frozen=True, slots=True)
class OpenRow:
    uid: str
    position: Position
    last: Decimal | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one refresh of the view reads from the store (the rest is in memory)."""

    balances: dict[str, dict[str, Decimal]]
    open_rows: list[OpenRow]


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


async def snapshot(system: System, started: bool) -> Snapshot:
    """Balances and open positions, once the demo users exist (empty before)."""
    if not started:
        return Snapshot({}, [])
    rows = []
    for uid in USERS:
        for p in await system.positions.list_for_user(uid, PositionStatus.OPEN):
            quote = system.live.get(p.symbol)
            rows.append(OpenRow(uid, p, quote.price if quote else None))
    return Snapshot(await balances_of(system), rows)


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def ticks_evaluated(registry: CollectorRegistry) -> float:
    return sum(
        metric(registry, "cogmora_engine_ticks_total", market=m) for m in ("spot", "futures")
    )


def _prices(system: System, state: DemoState) -> Table:
    table = Table(title="Prices (simulated KuCoin)", expand=True)
    for col in ("symbol", "last", "since start", ""):
        table.add_column(col, justify="left" if col == "symbol" else "right", no_wrap=True)
    for symbol in SPOT_SYMBOLS + FUTURES_SYMBOLS:
        quote = system.live.get(symbol)
        if quote is None:
            table.add_row(symbol, "-", "", "")
            continue
        first = state.first_prices.setdefault(symbol, quote.price)
        before = state.last_prices.get(symbol, quote.price)
        state.last_prices[symbol] = quote.price
        change = (quote.price - first) / first * 100
        color = "green" if change >= 0 else "red"
        arrow = "[green]▲" if quote.price > before else "[red]▼" if quote.price < before else " "
        table.add_row(symbol, fmt(quote.price, 4), f"[{color}]{change:+.2f}%", arrow)
    return table


def _accounts(snap: Snapshot) -> Table:
    table = Table(title="Accounts (USDT)", expand=True)
    for col in ("user", "balance", "equity", "unrealized P&L"):
        table.add_column(col, justify="right" if col != "user" else "left", no_wrap=True)
    for uid, b in snap.balances.items():
        color = "green" if b["upnl"] >= 0 else "red"
        table.add_row(uid, fmt(b["balance"]), fmt(b["equity"]), f"[{color}]{fmt(b['upnl'])}")
    return table


def _open_positions(snap: Snapshot, limit: int = 12) -> Table:
    table = Table(title=f"Open positions ({len(snap.open_rows)})", expand=True)
    for col in ("user", "symbol", "side", "entry", "last", "P&L", "stop", "target"):
        table.add_column(
            col, justify="left" if col in ("user", "symbol", "side") else "right", no_wrap=True
        )
    for row in snap.open_rows[:limit]:
        p, d = row.position, row.position.details
        pnl = "-"
        if row.last is not None:
            value = mark_value(p.market, p.side, p.qty, p.entry_price, p.margin, row.last)
            gain = value - p.margin
            pnl = f"[{'green' if gain >= 0 else 'red'}]{fmt(gain)}"
        side = (
            p.side.value
            if p.market.value == "spot"
            else f"{p.side.value} {p.leverage.normalize():f}x"
        )
        table.add_row(
            row.uid,
            p.symbol,
            side,
            fmt(p.entry_price, 4),
            fmt(row.last, 4) if row.last is not None else "-",
            pnl,
            fmt(d.stop_loss, 4) if d.stop_loss is not None else "-",
            fmt(d.take_profit, 4) if d.take_profit is not None else "-",
        )
    if len(snap.open_rows) > limit:
        table.add_row("", f"... and {len(snap.open_rows) - limit} more", *[""] * 6)
    return table


def render(system: System, state: DemoState, snap: Snapshot, duration: float) -> Group:
    reg = system.registry
    worker = system.worker
    health = worker.health() if worker else {}
    feeds = ", ".join(
        f"{m} {'[green]connected[/]' if f['connected'] else '[red]down[/]'}"
        for m, f in health.get("feeds", {}).items()
    )
    elapsed = time.monotonic() - state.started
    closes = sum(v for k, v in state.counts.items() if k.startswith("closing:"))
    stats = (
        f"{state.stage}   {elapsed:3.0f}s of {duration:.0f}s\n"
        f"KuCoin feeds: {feeds or 'starting'}   trades seen {ticks_evaluated(reg):,.0f}   "
        f"stops, targets and triggers watched {health.get('book', {}).get('entries', 0)}   "
        f"closed {closes}   triggers fired {state.counts['trigger triggered']}"
    )
    events = "\n".join(state.events) or "waiting for the market to move..."
    parts: list[Any] = [Panel(stats, title="Cogmora demo"), _prices(system, state)]
    if snap.balances:
        parts += [_accounts(snap), _open_positions(snap)]
    parts.append(Panel(events, title="What just happened"))
    return Group(*parts)


async def narrate(system: System, state: DemoState) -> None:
    """Narrate the store's change feed: fires, closes and settlements as they commit."""
    cursor = await system.store.head()
    while True:
        try:
            changes = await system.store.changes(
                cursor, groups=frozenset({"openPositions", "tradeTriggers"}), wait=1.0
            )
        except FeedResync:  # a narration may skip what it fell behind on: say so, go on
            cursor = await system.store.head()
            state.events.appendleft("[dim]the change feed moved on without us; resynced")
            continue
        for change in changes:
            cursor = change.seq
            doc = change.doc or {}
            details = doc.get("details", {})
            status = details.get("status")
            who, what = doc.get("uid", "?"), doc.get("symbol", "?")
            if change.group == "openPositions" and status == "closing":
                state.counts[f"closing:{details.get('closeReason')}"] += 1
                reason = str(details.get("closeReason", "")).replace("_", " ")
                state.events.appendleft(
                    f"[yellow]{who}'s {what} hit its {reason} at "
                    f"{fmt(details.get('closePrice'), 4)}: closing"
                )
            elif change.group == "openPositions" and status == "closed":
                state.counts["settled"] += 1
                pnl = Decimal(doc.get("realizedPnl", "0"))
                color = "green" if pnl >= 0 else "red"
                state.events.appendleft(f"[{color}]{who}'s {what} closed, P&L {fmt(pnl)} USDT")
            elif change.group == "openPositions" and status == "open" and doc.get("triggerId"):
                state.counts["trigger opens"] += 1
            elif change.group == "tradeTriggers" and status in ("triggered", "failed"):
                state.counts[f"trigger {status}"] += 1
                state.events.appendleft(
                    f"[cyan]{who} trigger {doc['condition']['op']} "
                    f"{fmt(doc['condition']['price'], 4)} on {what} {status} at "
                    f"{fmt(details.get('firedPrice'), 4)}"
                )
