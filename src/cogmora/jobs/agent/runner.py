"""One agent run as the scheduler and `cogmora agent run` need it: from a stored config to
an `AgentDecision`, whatever goes wrong on the way.

`run_agent` already turns a provider's or a service's failure into the decision; this
layer adds what happens around it: gathering the context (the user may be gone, KuCoin
may be down), choosing the provider (a config may ask for an LLM this server has none
of), and the run's timeout. A run cut short by its timeout still reports what it applied
before the cut, from the applier's own record.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime

from cogmora.domain.agent import AgentConfig, AgentDecision, ProviderKind
from cogmora.domain.models import Doc
from cogmora.domain.timeutil import to_iso
from cogmora.jobs.agent.applier import ServiceApplier
from cogmora.jobs.agent.gather import ContextBuilder
from cogmora.jobs.agent.provider import AgentProvider
from cogmora.jobs.agent.run import RunIds, run_agent
from cogmora.jobs.scheduler import describe
from cogmora.services.clock import Clock
from cogmora.services.positions import Positions
from cogmora.services.triggers import Triggers

LLM_NOT_CONFIGURED = (
    "provider 'llm' is not configured on this server: set COGMORA_LLM_URL and COGMORA_LLM_MODEL"
)


def slot_decision_id(slot: datetime) -> str:
    """One decision per user and slot: a retried run overwrites its own log entry."""
    return "slot-" + to_iso(slot)[:19].replace("-", "").replace(":", "") + "Z"


@dataclass(frozen=True, slots=True)
class Providers:
    builtin: AgentProvider
    llm: AgentProvider | None = None

    def pick(self, kind: ProviderKind) -> AgentProvider | None:
        return self.builtin if kind is ProviderKind.BUILTIN else self.llm


@dataclass(frozen=True, slots=True)
class RunRequest:
    uid: str
    config: AgentConfig
    decision_id: str
    run_key: str  # the seed of the run's idempotency keys: the same on every retry
    scheduled_for: datetime | None = None
    attempt: int = 1


class AgentRunner:
    def __init__(
        self,
        builder: ContextBuilder,
        providers: Providers,
        positions: Positions,
        triggers: Triggers,
        clock: Clock,
        timeout_seconds: float = 120.0,
    ) -> None:
        self._builder = builder
        self._providers = providers
        self._positions = positions
        self._triggers = triggers
        self._clock = clock
        self._timeout = timeout_seconds

    async def run(self, req: RunRequest) -> AgentDecision:
        now = self._clock.now()
        ids = RunIds(req.decision_id, now, req.scheduled_for)
        provider = self._providers.pick(req.config.provider)
        if provider is None:
            return failed(req, now, LLM_NOT_CONFIGURED)
        applier = ServiceApplier(self._positions, self._triggers, req.run_key)
        notes: list[str] = []
        try:
            async with asyncio.timeout(self._timeout):
                ctx, notes = await self._builder.build(req.uid, req.config, now)
                decision = await run_agent(ctx, provider, applier, ids)
        except TimeoutError:
            error = f"the run timed out after {self._timeout:g}s"
            return replace(failed(req, now, error), applied=tuple(applier.applied))
        except Exception as exc:  # the store or KuCoin failed before the provider ran
            return failed(req, now, f"could not gather the context: {describe(exc)}")
        return replace(decision, inputs=_with_run(decision.inputs, req, notes))


def failed(req: RunRequest, now: datetime, error: str) -> AgentDecision:
    """A decision for a run that never reached (or never finished with) its provider."""
    inputs: Doc = {"now": to_iso(now), "symbols": list(req.config.symbols)}
    return AgentDecision(
        id=req.decision_id,
        uid=req.uid,
        created_at=now,
        scheduled_for=req.scheduled_for,
        provider=req.config.provider.value,
        inputs=_with_run(inputs, req, []),
        error=error,
    )


def _with_run(inputs: Doc, req: RunRequest, notes: list[str]) -> Doc:
    out = {**inputs, "run": {"key": req.run_key, "attempt": req.attempt}}
    if notes:
        out["notes"] = notes
    return out
