"""What the demo does: its users, the positions and triggers they open through the API,
and the agent and watchlist they switch on."""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from cogmora.cli.compose import System
from cogmora.domain.money import quantize
from cogmora.simulator import KucoinSimulator

SPOT_SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT"]

FUTURES_SYMBOLS = ["XBTUSDTM", "ETHUSDTM", "SOLUSDTM"]

USERS = {"alice": "25000", "bob": "10000", "carol": "5000"}


@dataclass
class DemoState:
    """What the view shows besides the store: the stage of start-up, the narrated events,
    counts, and the prices seen first and last (for change and direction)."""

    stage: str = "starting the KuCoin simulator"
    events: deque[str] = field(default_factory=lambda: deque(maxlen=10))
    counts: Counter[str] = field(default_factory=Counter)
    tokens: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    first_prices: dict[str, Decimal] = field(default_factory=dict)
    last_prices: dict[str, Decimal] = field(default_factory=dict)


async def seed_positions(
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
            if uid == "carol":  # carol also trails a stop 0.2% behind the best price
                body["trailingStop"] = {"callbackRate": "0.002"}
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
            if uid == "carol":  # carol scales out: half at +0.2 %, the rest at +0.4 %
                del body["takeProfit"]
                body["takeProfits"] = [
                    {"price": str(quantize(price * (1 + sign * Decimal(r)))), "fraction": "0.5"}
                    for r in ("0.002", "0.004")
                ]
                body["moveStopToEntryAfter"] = 1
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


async def start_agent_and_watchlist(
    http: httpx.AsyncClient, system: System, state: DemoState
) -> None:
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
