"""The port every decision-maker implements: context in, proposed actions out.

A provider only proposes. It never applies anything and never sees the store; the risk
guard and then the services decide what actually happens. A provider that cannot decide
(bad model output, budget spent, endpoint down) says so in `error` with no actions,
rather than raising: a failed run is a logged run, not a crashed scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cogmora.domain.agent import Action, Refusal, Usage
from cogmora.jobs.agent.context import AgentContext


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """Proposed actions with the overall rationale; `refused` holds output already rejected
    by the provider's own validation (e.g. a model's out-of-schema actions)."""

    actions: tuple[Action, ...] = ()
    rationale: str = ""
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    refused: tuple[Refusal, ...] = ()


class AgentProvider(Protocol):
    @property
    def name(self) -> str:
        """Stored in the decision log: `builtin` or `llm`."""
        ...

    async def decide(self, ctx: AgentContext) -> ProviderResult: ...
