from __future__ import annotations

from decimal import Decimal

import pytest
from agent_testkit import DOWN, NOW, UP, context, position

from cogmora.domain.agent import (
    Action,
    AgentDecision,
    CancelTriggerAction,
    ClosePositionAction,
    HoldAction,
    OpenPositionAction,
    PlaceTriggerAction,
    RiskLimits,
    Usage,
)
from cogmora.domain.enums import Market, Side
from cogmora.errors import ConfigError, InsufficientBalance, Temporary
from cogmora.jobs.agent.builtin import BuiltinProvider
from cogmora.jobs.agent.context import AgentContext
from cogmora.jobs.agent.provider import ProviderResult
from cogmora.jobs.agent.run import RunIds, run_agent

D = Decimal
IDS = RunIds("d1", NOW, NOW)


class RecordingApplier:
    """An in-memory ActionApplier: records what it is asked to do, fails when told to."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.applied: list[Action] = []
        self._fail = fail or {}

    async def _do(self, action: Action, key: str, result: str) -> str:
        if key in self._fail:
            raise self._fail[key]
        self.applied.append(action)
        return result

    async def open_position(self, uid: str, action: OpenPositionAction) -> str:
        return await self._do(action, action.symbol, f"pos-{len(self.applied)}")

    async def place_trigger(self, uid: str, action: PlaceTriggerAction) -> str:
        return await self._do(action, action.symbol, f"trg-{len(self.applied)}")

    async def cancel_trigger(self, uid: str, action: CancelTriggerAction) -> str:
        return await self._do(action, action.trigger_id, action.trigger_id)

    async def close_position(self, uid: str, action: ClosePositionAction) -> str:
        return await self._do(action, action.position_id, action.position_id)


class ScriptedProvider:
    """A provider that returns a fixed result, or raises a fixed exception."""

    name = "scripted"

    def __init__(self, result: ProviderResult | None = None, exc: Exception | None = None):
        self._result = result or ProviderResult()
        self._exc = exc

    async def decide(self, ctx: AgentContext) -> ProviderResult:
        if self._exc is not None:
            raise self._exc
        return self._result


def spot_open(notional: str) -> OpenPositionAction:
    return OpenPositionAction("BTC-USDT", Market.SPOT, Side.LONG, notional=D(notional))


async def test_a_builtin_run_applies_its_opens_and_logs_everything() -> None:
    """Accepted opens reach the applier; the decision records the resulting ids and inputs."""
    applier = RecordingApplier()
    ctx = context({"BTC-USDT": UP, "XBTUSDTM": DOWN})
    decision = await run_agent(ctx, BuiltinProvider(), applier, IDS)
    assert [a.side for a in applier.applied] == [Side.LONG, Side.SHORT]  # type: ignore[union-attr]
    assert [a.result_id for a in decision.applied] == ["pos-0", "pos-1"]
    assert decision.refused == () and decision.error is None
    assert decision.provider == "builtin"
    assert decision.inputs == ctx.log_summary()
    assert AgentDecision.from_doc("d1", decision.to_doc()) == decision


async def test_actions_refused_by_the_guard_are_logged_and_never_applied() -> None:
    """An over-limit open is refused with the guard's reason; the rest still applies."""
    result = ProviderResult(actions=(spot_open("5000"), spot_open("100")), rationale="r")
    applier = RecordingApplier()
    decision = await run_agent(context({"BTC-USDT": UP}), ScriptedProvider(result), applier, IDS)
    assert applier.applied == [spot_open("100")]
    assert [r.reason for r in decision.refused] == [
        "notional 5000 exceeds maxPositionNotional 1000"
    ]
    assert decision.refused[0].action == spot_open("5000").to_doc()


async def test_a_provider_that_raises_becomes_a_logged_error() -> None:
    """A crashing provider yields a decision with its error and applies nothing."""
    applier = RecordingApplier()
    provider = ScriptedProvider(exc=RuntimeError("boom"))
    decision = await run_agent(context({"BTC-USDT": UP}), provider, applier, IDS)
    assert decision.error == "provider failed: RuntimeError: boom"
    assert applier.applied == []


async def test_actions_from_a_provider_that_reported_an_error_are_not_applied() -> None:
    """An error voids the result: its actions are refused, not applied."""
    result = ProviderResult(actions=(spot_open("100"),), error="reply is not valid JSON")
    applier = RecordingApplier()
    decision = await run_agent(context({"BTC-USDT": UP}), ScriptedProvider(result), applier, IDS)
    assert applier.applied == []
    assert decision.error == "reply is not valid JSON"
    assert decision.refused[0].reason == "not applied: the provider reported an error"


async def test_a_service_refusal_is_logged_and_the_run_goes_on() -> None:
    """Insufficient balance on one open is a refusal with the service's message."""
    ctx = context(
        {"BTC-USDT": UP, "XBTUSDTM": DOWN},
        positions=(position("p1", "ETHUSDTM", Side.LONG),),
    )
    actions = (spot_open("100"), ClosePositionAction("p1"))
    applier = RecordingApplier({"BTC-USDT": InsufficientBalance(D(100), D(5))})
    decision = await run_agent(ctx, ScriptedProvider(ProviderResult(actions)), applier, IDS)
    assert applier.applied == [ClosePositionAction("p1")]
    assert [r.reason for r in decision.refused] == ["insufficient balance: need 100, have 5"]
    assert decision.error is None


async def test_a_temporary_failure_is_a_refusal_with_its_reason() -> None:
    """A store hiccup refuses that action and the run continues."""
    applier = RecordingApplier({"BTC-USDT": Temporary("database is busy")})
    result = ProviderResult((spot_open("100"),))
    decision = await run_agent(context({"BTC-USDT": UP}), ScriptedProvider(result), applier, IDS)
    assert decision.refused[0].reason == "not applied, temporary failure: database is busy"
    assert decision.error is None


@pytest.mark.parametrize("exc", [ConfigError("X", "broken"), KeyError("bug")])
async def test_a_fatal_or_unexpected_failure_stops_applying_and_is_logged(exc: Exception) -> None:
    """After a failure that is not the action's fault, the remaining actions are not applied."""
    ctx = context(
        {"BTC-USDT": UP, "XBTUSDTM": UP},
        positions=(position("p1", "XBTUSDTM", Side.LONG),),
    )
    actions = (spot_open("100"), HoldAction("wait"), ClosePositionAction("p1"))
    applier = RecordingApplier({"BTC-USDT": exc})
    decision = await run_agent(ctx, ScriptedProvider(ProviderResult(actions)), applier, IDS)
    assert applier.applied == []
    assert decision.error is not None and decision.error.startswith("applying failed")
    assert [r.reason for r in decision.refused][1:] == [
        "not applied: the run stopped after an error"
    ]


async def test_holds_are_not_sent_to_the_applier() -> None:
    """A hold is a decision to do nothing, recorded but not applied."""
    applier = RecordingApplier()
    result = ProviderResult((HoldAction("nothing to do"),), usage=Usage(10, 2, 1))
    decision = await run_agent(context({"BTC-USDT": UP}), ScriptedProvider(result), applier, IDS)
    assert applier.applied == []
    assert decision.applied == ()
    assert decision.actions == (HoldAction("nothing to do"),)
    assert decision.usage == Usage(10, 2, 1)


async def test_opening_past_the_daily_loss_limit_is_refused_but_closing_is_not() -> None:
    """With the day's loss at the limit, only the close goes through."""
    ctx = context(
        {"BTC-USDT": UP},
        positions=(position("p1", "BTC-USDT", Side.LONG),),
        realized_loss_today=D(100),
        limits=RiskLimits(max_daily_loss=D(100)),
    )
    actions = (spot_open("100"), ClosePositionAction("p1"))
    applier = RecordingApplier()
    decision = await run_agent(ctx, ScriptedProvider(ProviderResult(actions)), applier, IDS)
    assert applier.applied == [ClosePositionAction("p1")]
    assert decision.refused[0].reason == "daily realized loss 100 reached maxDailyLoss 100"
