"""One agent run: ask the provider, pass its proposals through the risk guard, apply what
survives through the services, and record all of it as one `AgentDecision`.

The run never raises for anything a provider or a service can do wrong (only for
cancellation): whatever happens becomes the decision's `error` or a refusal with its
reason, so the scheduler can always write the log entry and move on. An action reaches
the applier only if it is a valid typed action, came from a provider that reported no
error, and passed the guard.

The applier is a port: the store-backed services implement it (the scheduler wires it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cogmora.domain.agent import (
    Action,
    AgentDecision,
    Applied,
    CancelTriggerAction,
    ClosePositionAction,
    HoldAction,
    OpenPositionAction,
    PlaceTriggerAction,
    Refusal,
    check_actions,
)
from cogmora.errors import Rejected, Temporary
from cogmora.jobs.agent.context import AgentContext
from cogmora.jobs.agent.provider import AgentProvider, ProviderResult


class ActionApplier(Protocol):
    """Carries out accepted actions for `uid`; each returns the id of what it made or hit.

    Raises cogmora errors: Rejected (the service refused: insufficient balance, no fresh
    price, already closing), Temporary (try again later), Fatal (stop).
    """

    async def open_position(self, uid: str, action: OpenPositionAction) -> str: ...

    async def place_trigger(self, uid: str, action: PlaceTriggerAction) -> str: ...

    async def cancel_trigger(self, uid: str, action: CancelTriggerAction) -> str: ...

    async def close_position(self, uid: str, action: ClosePositionAction) -> str: ...


@dataclass(frozen=True, slots=True)
class RunIds:
    decision_id: str
    created_at: datetime
    scheduled_for: datetime | None = None


async def run_agent(
    ctx: AgentContext, provider: AgentProvider, applier: ActionApplier, ids: RunIds
) -> AgentDecision:
    try:
        result = await provider.decide(ctx)
    except Exception as exc:  # a provider bug must not take the scheduler down with it
        result = ProviderResult(error=f"provider failed: {type(exc).__name__}: {exc}")
    refused: list[Refusal] = list(result.refused)
    error = result.error
    if error is not None:
        refused.extend(
            Refusal.of(a, "not applied: the provider reported an error") for a in result.actions
        )
        accepted: list[Action] = []
    else:
        accepted, guard_refused = check_actions(result.actions, ctx.limits, ctx.guard_facts())
        refused.extend(Refusal.of(a, reason) for a, reason in guard_refused)
    applied: list[Applied] = []
    for i, action in enumerate(accepted):
        if isinstance(action, HoldAction):
            continue
        try:
            applied.append(Applied(action, await _apply(applier, ctx.uid, action)))
        except Rejected as exc:
            refused.append(Refusal.of(action, str(exc)))
        except Temporary as exc:
            refused.append(Refusal.of(action, f"not applied, temporary failure: {exc}"))
        except Exception as exc:  # Fatal, or a bug in a service
            # Something is broken beyond this action: stop applying, say so, keep the log.
            error = f"applying failed: {type(exc).__name__}: {exc}"
            refused.append(Refusal.of(action, error))
            refused.extend(
                Refusal.of(a, "not applied: the run stopped after an error")
                for a in accepted[i + 1 :]
                if not isinstance(a, HoldAction)
            )
            break
    return AgentDecision(
        id=ids.decision_id,
        uid=ctx.uid,
        created_at=ids.created_at,
        scheduled_for=ids.scheduled_for,
        provider=provider.name,
        inputs=ctx.log_summary(),
        actions=result.actions,
        rationale=result.rationale,
        applied=tuple(applied),
        refused=tuple(refused),
        error=error,
        usage=result.usage,
    )


async def _apply(applier: ActionApplier, uid: str, action: Action) -> str:
    if isinstance(action, OpenPositionAction):
        return await applier.open_position(uid, action)
    if isinstance(action, PlaceTriggerAction):
        return await applier.place_trigger(uid, action)
    if isinstance(action, CancelTriggerAction):
        return await applier.cancel_trigger(uid, action)
    if isinstance(action, ClosePositionAction):
        return await applier.close_position(uid, action)
    raise TypeError(f"not an applicable action: {action!r}")
