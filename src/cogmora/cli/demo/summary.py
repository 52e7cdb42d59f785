"""The demo's closing summary: every user's ledger checked against their balance."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.table import Table

from cogmora.cli.compose import System
from cogmora.cli.demo.script import DemoState
from cogmora.cli.demo.view import fmt, ticks_evaluated


def summary(
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
            fmt(b["deposits"]),
            fmt(b["balance"], 8),
            fmt(b["equity"]),
            fmt(b["ledger"], 8),
            "[green]yes" if same else "[red]NO",
        )
    console.print(table)
    p50 = _quantile(reg, 0.5)
    p99 = _quantile(reg, 0.99)
    closes = {
        k.split(":", 1)[1].replace("_", " "): v
        for k, v in sorted(state.counts.items())
        if k.startswith("closing:")
    }
    by_reason = ", ".join(f"{n} by {reason}" for reason, n in closes.items()) or "none"
    console.print(
        f"positions opened through the API: {state.counts['api /v1/positions']}; "
        f"triggers placed: {state.counts['api /v1/triggers']}, fired: "
        f"{state.counts['trigger triggered']}, refused at fire time: "
        f"{state.counts['trigger failed']}; closes: {by_reason}; "
        f"settled: {state.counts['settled']}; agent runs: {state.counts['agent runs']}"
    )
    console.print(
        f"trades evaluated: {ticks_evaluated(reg):,.0f}; from the crossing trade to the close "
        f"committed: half within {p50}, 99% within {p99}"
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
