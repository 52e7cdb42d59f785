"""`users/{uid}/agentDecisions/{id}`: what one agent run saw, decided, why, and what came of it.

Every run writes one, including runs that failed or refused everything: a user asking
"why did the agent not trade?" deserves the same answer as one asking why it did.
Refused actions are kept as documents rather than typed actions because the model may
have sent something that is not a valid action at all; the log must still show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cogmora.domain.agent.actions import Action, action_from_doc
from cogmora.domain.models import Doc
from cogmora.domain.paths import decision_path
from cogmora.domain.timeutil import from_iso, opt_from_iso, opt_iso, to_iso


@dataclass(frozen=True, slots=True)
class Usage:
    """Model calls made and tokens counted by the endpoint's own `usage` report."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.calls + other.calls,
        )

    def to_doc(self) -> Doc:
        return {
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "calls": self.calls,
        }

    @classmethod
    def from_doc(cls, doc: Doc | None) -> Usage:
        doc = doc or {}
        return cls(
            int(doc.get("promptTokens", 0)),
            int(doc.get("completionTokens", 0)),
            int(doc.get("calls", 0)),
        )


@dataclass(frozen=True, slots=True)
class Applied:
    """An action that was carried out; `result_id` is the position or trigger it made or hit."""

    action: Action
    result_id: str | None = None

    def to_doc(self) -> Doc:
        return {"action": self.action.to_doc(), "resultId": self.result_id}

    @classmethod
    def from_doc(cls, doc: Doc) -> Applied:
        return cls(action_from_doc(doc["action"]), doc.get("resultId"))


@dataclass(frozen=True, slots=True)
class Refusal:
    """An action that was not applied, as the document it came as, and the reason why."""

    action: Doc
    reason: str

    @classmethod
    def of(cls, action: Action, reason: str) -> Refusal:
        return cls(action.to_doc(), reason)

    def to_doc(self) -> Doc:
        return {"action": self.action, "reason": self.reason}

    @classmethod
    def from_doc(cls, doc: Doc) -> Refusal:
        return cls(dict(doc["action"]), str(doc["reason"]))


@dataclass(frozen=True, slots=True)
class AgentDecision:
    id: str
    uid: str
    created_at: datetime
    provider: str
    inputs: Doc = field(default_factory=dict)
    actions: tuple[Action, ...] = ()
    rationale: str = ""
    applied: tuple[Applied, ...] = ()
    refused: tuple[Refusal, ...] = ()
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    scheduled_for: datetime | None = None

    @property
    def path(self) -> str:
        return decision_path(self.uid, self.id)

    def to_doc(self) -> Doc:
        return {
            "uid": self.uid,
            "createdAt": to_iso(self.created_at),
            "scheduledFor": opt_iso(self.scheduled_for),
            "provider": self.provider,
            "inputs": self.inputs,
            "actions": [a.to_doc() for a in self.actions],
            "rationale": self.rationale,
            "applied": [a.to_doc() for a in self.applied],
            "refused": [r.to_doc() for r in self.refused],
            "error": self.error,
            "usage": self.usage.to_doc(),
        }

    @classmethod
    def from_doc(cls, did: str, doc: Doc) -> AgentDecision:
        actions: list[Any] = doc.get("actions") or []
        return cls(
            id=did,
            uid=doc["uid"],
            created_at=from_iso(doc["createdAt"]),
            provider=doc["provider"],
            inputs=dict(doc.get("inputs") or {}),
            actions=tuple(action_from_doc(a) for a in actions),
            rationale=doc.get("rationale") or "",
            applied=tuple(Applied.from_doc(a) for a in doc.get("applied") or []),
            refused=tuple(Refusal.from_doc(r) for r in doc.get("refused") or []),
            error=doc.get("error"),
            usage=Usage.from_doc(doc.get("usage")),
            scheduled_for=opt_from_iso(doc.get("scheduledFor")),
        )
