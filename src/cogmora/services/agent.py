"""A user's agent config and decision log, for the API.

The config document also carries the scheduler's `run` bookkeeping (see
`cogmora.jobs.scheduler`); this service never shows it and never overwrites it. Saving a
config keeps its `nextRunAt` when the agent stays on with the same schedule, so editing
symbols or limits neither skips a due slot nor breaks the lease of a run in flight; a
new schedule (or switching on) starts from the first slot after now. A save reads the user
document, so it runs in the user's document lane (`store.lanes`) and waits for this
process's opens instead of aborting them.
"""

from __future__ import annotations

from dataclasses import replace

from cogmora.domain.agent import AgentConfig, ProviderKind
from cogmora.domain.models import Doc
from cogmora.domain.paths import agent_config_path, user_path
from cogmora.domain.timeutil import opt_from_iso
from cogmora.errors import NotFound, ValidationError
from cogmora.services.clock import Clock
from cogmora.store import queries as q
from cogmora.store.lanes import lanes
from cogmora.store.port import Store, Tx

MAX_DECISIONS = 500
LLM_MISSING = (
    "provider 'llm' needs an LLM endpoint, and this server has none: set COGMORA_LLM_URL "
    "and COGMORA_LLM_MODEL (any OpenAI-compatible chat-completions server), or use 'builtin'"
)


class AgentConfigs:
    def __init__(self, store: Store, clock: Clock, llm_configured: bool) -> None:
        self._store = store
        self._clock = clock
        self._llm = llm_configured

    async def get(self, uid: str) -> AgentConfig:
        """The stored config, or the (disabled) defaults for a user who never saved one."""

        def body(tx: Tx) -> AgentConfig:
            if tx.get(user_path(uid)) is None:
                raise NotFound(f"user {uid} not found")
            doc = tx.get(agent_config_path(uid))
            return AgentConfig() if doc is None else AgentConfig.from_doc(doc)

        return await self._store.read(body)

    async def put(self, uid: str, body: object) -> AgentConfig:
        config = AgentConfig.from_input(body)
        if config.provider is ProviderKind.LLM and not self._llm:
            raise ValidationError("provider", LLM_MISSING)
        now = self._clock.now()
        path = agent_config_path(uid)

        def write(tx: Tx) -> AgentConfig:
            if tx.get(user_path(uid)) is None:
                raise NotFound(f"user {uid} not found")
            old = tx.get(path)
            saved = replace(config.rescheduled(now), updated_at=now)
            keep = (
                old is not None
                and config.enabled
                and old.get("enabled") is True
                and old.get("schedule") == config.schedule
                and old.get("nextRunAt") is not None
            )
            if keep and old is not None:
                saved = replace(saved, next_run_at=opt_from_iso(old["nextRunAt"]))
            doc = saved.to_doc()
            if keep and old is not None:
                doc["nextRunAt"] = old["nextRunAt"]  # byte for byte: a lease compares it
            if old is not None and "run" in old:
                doc["run"] = old["run"]
            tx.set(path, doc)
            return saved

        return await lanes(self._store).transact([user_path(uid)], write)

    async def decisions(self, uid: str, limit: int = 50) -> list[Doc]:
        """The decision log, newest first."""
        if not 1 <= limit <= MAX_DECISIONS:
            raise ValidationError("limit", f"limit must be from 1 to {MAX_DECISIONS}")
        query = (
            q.Query("agentDecisions", parent=user_path(uid))
            .order_by("createdAt", "desc")
            .limited(limit)
        )
        rows = await self._store.read(lambda tx: tx.query(query))
        return [{"id": path.rsplit("/", 1)[1], **doc} for path, doc in rows]
