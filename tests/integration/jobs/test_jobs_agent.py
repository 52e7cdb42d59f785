"""The agent end to end on SQLite: store -> context -> provider (builtin on the simulator's
candles, or an LLM behind a fake OpenAI server) -> risk guard -> services -> decision log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fake_openai_server import FakeOpenAI
from jobs_testkit import agent_positions, config_doc, decisions, jobs_for, save_config

from cogmora.cli.compose import System, build_system
from cogmora.cli.jobs import Jobs
from cogmora.domain.agent import AgentConfig, RiskLimits
from cogmora.domain.enums import Side
from cogmora.domain.paths import agent_config_path
from cogmora.jobs.agent.builtin import BuiltinParams, signal
from cogmora.jobs.agent.context import AgentContext, Candle
from cogmora.jobs.agent.llm import BUDGET_EXHAUSTED
from cogmora.jobs.agent.runner import LLM_NOT_CONFIGURED, RunRequest, slot_decision_id
from cogmora.jobs.agent.store_budget import StoreCallBudget
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator
from cogmora.store.sqlite import SqliteStore

D = Decimal
SLOT = datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
DUE = datetime(2026, 1, 1, 0, 15, 1, tzinfo=UTC)


async def run_slot(system: System, jobs: Jobs) -> None:
    system.clock.set(DUE)  # type: ignore[attr-defined]
    assert await jobs.agents.run_due() == 1


# ---------------------------------------------------------------- builtin


async def test_the_builtin_agent_trades_the_simulators_trends(
    system: System, sim: KucoinSimulator, make_user
) -> None:
    """On the simulator's 15-minute candles the builtin agent opens a spot long on an
    uptrend and a futures short on a downtrend, holds on a spot downtrend and a flat
    market, and logs all of it."""
    symbols = ["ETH-USDT", "ETHUSDTM", "BTC-USDT", "SOL-USDT"]
    await make_user("ann", "10000")
    await save_config(system, "ann", symbols=symbols)
    jobs = jobs_for(system)
    expected = {"ETH-USDT": Side.LONG, "ETHUSDTM": Side.SHORT, "BTC-USDT": Side.SHORT}
    for symbol in symbols:  # what the documented rules say about these exact candles
        series = await jobs.market.candles(symbol, "15min", DUE, 100)
        ctx_trend = signal(_ctx(symbol, series), symbol, BuiltinParams())
        assert ctx_trend is not None
        assert ctx_trend.trend is expected.get(symbol), f"the simulator's {symbol} changed"

    await run_slot(system, jobs)

    [decision] = await decisions(system.store, "ann")
    assert decision["error"] is None and decision["provider"] == "builtin"
    assert decision["scheduledFor"] == "2026-01-01T00:15:00.000000Z"
    assert [a["type"] for a in decision["actions"]] == [
        "open_position",
        "open_position",
        "hold",
        "hold",
    ]
    assert "spot cannot short" in decision["actions"][2]["rationale"]
    assert "no trend" in decision["actions"][3]["rationale"]
    assert decision["refused"] == []
    applied = {a["action"]["symbol"]: a for a in decision["applied"]}
    positions = {p["symbol"]: p for p in await agent_positions(system.store, "ann")}
    assert set(applied) == set(positions) == {"ETH-USDT", "ETHUSDTM"}
    for symbol, item in applied.items():
        position = positions[symbol]
        assert position["side"] == item["action"]["side"] == expected[symbol].value
        assert position["details"]["stopLoss"] == item["action"]["stopLoss"]
        assert position["details"]["takeProfit"] == item["action"]["takeProfit"]
    assert positions["ETHUSDTM"]["leverage"] == "2.00000000"
    inputs = decision["inputs"]
    assert inputs["account"]["balance"] == "10000"
    assert inputs["candles"]["ETH-USDT"]["count"] == 100
    assert inputs["candles"]["ETH-USDT"]["interval"] == "15min"
    assert inputs["run"] == {"key": "2026-01-01T00:15:00.000000Z", "attempt": 1}
    account = await system.positions.account("ann")
    assert account.balance < D(10000)  # margin and fees went through the ledger
    assert (await config_doc(system.store, "ann"))["nextRunAt"] == "2026-01-01T00:30:00.000000Z"


def _ctx(symbol: str, series: tuple[Candle, ...]) -> AgentContext:
    return AgentContext(
        uid="x",
        now=DUE,
        balance=D(1),
        equity=D(1),
        symbols=(symbol,),
        limits=RiskLimits(),
        candles={symbol: series},
    )


async def test_a_run_that_cannot_read_its_user_is_logged_not_crashed(
    system: System, make_user
) -> None:
    """An agent config left behind by a deleted user yields an error decision."""
    await make_user("ann")
    await save_config(system, "ann")
    await system.store.transact(lambda tx: tx.delete("users/ann"))
    jobs = jobs_for(system)
    await run_slot(system, jobs)
    [decision] = await decisions(system.store, "ann")
    assert "user ann not found" in decision["error"]
    assert decision["applied"] == []


# ---------------------------------------------------------------- llm


@pytest.fixture
async def llm_system(
    store: SqliteStore,
    sim: KucoinSimulator,
    fake_llm: FakeOpenAI,
    catalog: SymbolCatalog,
    clock: object,
) -> AsyncIterator[System]:
    settings = Settings(
        kucoin_spot_url=sim.spot_url,
        kucoin_futures_url=sim.futures_url,
        llm_url=fake_llm.url,
        llm_model="fake-model",
        llm_api_key="sk-test",
        llm_daily_calls=2,
    )
    built = build_system(settings, store, catalog=catalog, clock=clock)  # type: ignore[arg-type]
    await built.accounts.create_user("ann", D(10000))
    await save_config(built, "ann", provider="llm", symbols=["ETH-USDT", "ETHUSDTM"])
    yield built
    await built.aclose()


def open_eth(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "open_position",
        "symbol": "ETH-USDT",
        "market": "spot",
        "side": "long",
        "qty": None,
        "notional": "200",
        "leverage": None,
        "stopLoss": "3400",
        "takeProfit": "3700",
        "rationale": "uptrend",
    }
    doc.update(changes)
    return doc


async def test_the_llm_agent_applies_what_the_guard_accepts_and_logs_the_rest(
    llm_system: System, fake_llm: FakeOpenAI
) -> None:
    """A valid open is applied through the positions service; an action over the user's
    leverage limit is refused with its reason and never applied."""
    fake_llm.reply(
        {
            "rationale": "ETH up, futures overheated",
            "actions": [
                open_eth(),
                open_eth(
                    symbol="ETHUSDTM",
                    market="futures",
                    side="short",
                    leverage="50",
                    stopLoss="3600",
                    takeProfit="3300",
                ),
            ],
        },
        usage=(900, 80),
    )
    jobs = jobs_for(llm_system)
    await run_slot(llm_system, jobs)

    [decision] = await decisions(llm_system.store, "ann")
    assert decision["provider"] == "llm" and decision["error"] is None
    assert decision["rationale"] == "ETH up, futures overheated"
    assert decision["usage"] == {"promptTokens": 900, "completionTokens": 80, "calls": 1}
    [applied] = decision["applied"]
    assert applied["action"]["symbol"] == "ETH-USDT"
    [refused] = decision["refused"]
    assert refused["action"]["symbol"] == "ETHUSDTM"
    assert refused["reason"] == "leverage 50 exceeds maxLeverage 3"
    [position] = await agent_positions(llm_system.store, "ann")
    assert position["symbol"] == "ETH-USDT" and position["source"] == "agent"
    assert applied["resultId"] == decision["applied"][0]["resultId"]
    [request] = fake_llm.requests
    assert request.headers["Authorization"] == "Bearer sk-test"
    budget = StoreCallBudget(llm_system.store, 2)
    assert await budget.spent("ann", DUE.date()) == 1


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param("{not json", id="malformed-json"),
        pytest.param(
            '{"rationale": "x", "actions": [{"type": "open_position", "symbol": '
            '"ETH-USDT", "market": "spot", "side": "long", "notional": "200", '
            '"stopLos": "3400"}]}',
            id="misspelt-key",
        ),
        pytest.param(
            '{"rationale": "x", "actions": [{"type": "buy_everything"}]}', id="unknown-action"
        ),
    ],
)
async def test_invalid_model_output_is_logged_and_never_applied(
    llm_system: System, fake_llm: FakeOpenAI, reply: str
) -> None:
    """Malformed or out-of-schema replies leave an error decision and no position."""
    fake_llm.reply_text(reply)
    await run_slot(llm_system, jobs_for(llm_system))
    [decision] = await decisions(llm_system.store, "ann")
    assert decision["error"]
    assert decision["applied"] == []
    assert await agent_positions(llm_system.store, "ann") == []


async def test_the_daily_call_budget_is_kept_in_the_store(
    llm_system: System, fake_llm: FakeOpenAI
) -> None:
    """With two calls a day, the third run of the day is logged as over budget without a call."""
    jobs = jobs_for(llm_system)
    for minutes in (15, 30, 45):
        fake_llm.reply({"rationale": "wait", "actions": []})
        llm_system.clock.set(SLOT.replace(minute=minutes, second=1))  # type: ignore[attr-defined]
        assert await jobs.agents.run_due() == 1
    log = await decisions(llm_system.store, "ann")
    assert [d["error"] for d in reversed(log)] == [None, None, BUDGET_EXHAUSTED]
    assert len(fake_llm.requests) == 2


async def test_a_retried_slot_replays_the_same_open_instead_of_opening_again(
    llm_system: System, fake_llm: FakeOpenAI
) -> None:
    """The model proposes the same open on the retry of a crashed slot; the slot's
    idempotency key returns the first position, so the account holds one."""
    jobs = jobs_for(llm_system)
    llm_system.clock.set(DUE)  # type: ignore[attr-defined]
    [claim] = await jobs.agents.claim(10)
    fake_llm.reply({"rationale": "first", "actions": [open_eth(rationale="first try")]})
    req = RunRequest(
        "ann",
        AgentConfig.from_doc(claim.doc),
        slot_decision_id(claim.slot),
        claim.run_key,
        claim.slot,
        claim.attempt,
    )
    first = await jobs.runner.run(req)  # ... and the process dies before completing
    [opened] = first.applied

    llm_system.clock.set(DUE + jobs.scheduler.lease)  # type: ignore[attr-defined]
    # The retry's context shows the position, but this model opens again regardless.
    fake_llm.reply({"rationale": "again", "actions": [open_eth(rationale="second try")]})
    assert await jobs.agents.run_due() == 1
    [decision] = await decisions(llm_system.store, "ann")
    assert decision["inputs"]["run"]["attempt"] == 2
    [applied] = decision["applied"]
    assert applied["resultId"] == opened.result_id
    assert len(await agent_positions(llm_system.store, "ann")) == 1


async def test_an_llm_config_on_a_server_without_llm_is_logged_as_unconfigured(
    system: System, make_user
) -> None:
    """A stored llm config (saved before the endpoint was removed) logs a clear error."""
    await make_user("ann")
    await save_config(system, "ann")
    doc = await config_doc(system.store, "ann")
    await system.store.transact(
        lambda tx: tx.set(agent_config_path("ann"), {**doc, "provider": "llm"})
    )
    await run_slot(system, jobs_for(system))
    [decision] = await decisions(system.store, "ann")
    assert decision["error"] == LLM_NOT_CONFIGURED
