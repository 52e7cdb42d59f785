"""The JSON schema a model's reply must follow, and the strict check of a reply against it.

The schema is written for OpenAI's strict structured outputs: every property is listed
in `required` (optional ones are nullable) and no object allows extra keys. Endpoints that
ignore `response_format` still get the schema in the prompt, and every reply is checked
here whatever the endpoint promised.

A reply is all or nothing: if any action in it is invalid, none is applied. A model that
got one action wrong has misunderstood something, and applying "the rest" of a plan whose
parts were meant together (close A, open B) could leave the account in a state nobody
chose.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cogmora.domain.agent.actions import ACTION_TYPES, Action, action_from_doc
from cogmora.domain.agent.decision import Refusal
from cogmora.domain.agent.fields import opt_text
from cogmora.errors import ValidationError

MAX_ACTIONS = 20


def _variant(cls: type[Action]) -> dict[str, Any]:
    """One action's object schema, from the fields it declares."""
    props = {"type": {"type": "string", "enum": [cls.TYPE]}}
    props |= {field.key: field.kind.schema for field in cls.FIELDS}
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def action_list_schema() -> dict[str, Any]:
    """The reply `{rationale, actions: [...]}` as JSON Schema; a fresh copy on every call."""
    return copy.deepcopy(
        {
            "type": "object",
            "properties": {
                "rationale": {"type": "string"},
                "actions": {
                    "type": "array",
                    "items": {"anyOf": [_variant(cls) for cls in ACTION_TYPES.values()]},
                },
            },
            "required": ["rationale", "actions"],
            "additionalProperties": False,
        }
    )


def response_format() -> dict[str, Any]:
    """The chat-completions `response_format` asking for a reply that matches the schema."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "agent_actions", "strict": True, "schema": action_list_schema()},
    }


@dataclass(frozen=True, slots=True)
class CheckedReply:
    """A reply that passed (`error` None, `actions` set) or failed (`error` and `refused`)."""

    rationale: str
    actions: tuple[Action, ...] = ()
    refused: tuple[Refusal, ...] = ()
    error: str | None = None


def check_reply(reply: object) -> CheckedReply:
    """Check a decoded reply strictly; never raises for bad input, reports what was wrong."""
    if not isinstance(reply, Mapping):
        return CheckedReply("", error="reply must be a JSON object with rationale and actions")
    extra = sorted(str(k) for k in reply if k not in ("rationale", "actions"))
    if extra:
        return CheckedReply("", error=f"reply has unknown fields: {', '.join(extra)}")
    try:
        rationale = opt_text(reply, "rationale", "", max_len=4000)
    except ValidationError as exc:
        return CheckedReply("", error=str(exc))
    items = reply.get("actions")
    if not isinstance(items, list):
        return CheckedReply(rationale, error="actions must be a list")
    if len(items) > MAX_ACTIONS:
        return CheckedReply(rationale, error=f"actions must hold at most {MAX_ACTIONS} actions")
    actions: list[Action | None] = []
    problems: list[str | None] = []
    for i, item in enumerate(items):
        try:
            actions.append(action_from_doc(item, f"actions[{i}]"))
            problems.append(None)
        except ValidationError as exc:
            actions.append(None)
            problems.append(str(exc))
    bad = [p for p in problems if p is not None]
    if not bad:
        return CheckedReply(rationale, tuple(a for a in actions if a is not None))
    refused = tuple(
        Refusal(_raw(item), problem or "not applied: another action in the reply is invalid")
        for item, problem in zip(items, problems, strict=True)
    )
    return CheckedReply(rationale, refused=refused, error="invalid actions: " + "; ".join(bad))


def _raw(item: object) -> dict[str, Any]:
    """What the model sent, kept for the log even when it is not an object."""
    if isinstance(item, Mapping):
        return {str(k)[:100]: _loggable(v, 1) for k, v in list(item.items())[:30]}
    return {"invalid": repr(item)[:200]}


def _loggable(value: object, depth: int) -> Any:
    """A bounded copy: a hostile reply must not make the log entry huge or deep."""
    if isinstance(value, str):
        return value[:500]
    if value is None or isinstance(value, bool | int):
        return value
    if depth >= 4:
        return repr(value)[:200]
    if isinstance(value, list):
        return [_loggable(v, depth + 1) for v in value[:20]]
    if isinstance(value, Mapping):
        return {str(k)[:100]: _loggable(v, depth + 1) for k, v in list(value.items())[:20]}
    return str(value)[:200]
