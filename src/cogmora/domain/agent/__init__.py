"""The scheduled trading agent's pure core: actions, configuration, the risk guard, the log.

A package rather than one module so each idea stays small; everything is importable from
`cogmora.domain.agent`.
"""

from __future__ import annotations

from cogmora.domain.agent.actions import (
    ACTION_TYPES,
    Action,
    CancelTriggerAction,
    ClosePositionAction,
    HoldAction,
    OpeningAction,
    OpenPositionAction,
    PlaceTriggerAction,
    action_from_doc,
    is_opening,
)
from cogmora.domain.agent.config import AgentConfig, ProviderKind, RiskLimits
from cogmora.domain.agent.decision import AgentDecision, Applied, Refusal, Usage
from cogmora.domain.agent.guard import GuardFacts, check_actions
from cogmora.domain.agent.schema import (
    CheckedReply,
    action_list_schema,
    check_reply,
    response_format,
)

__all__ = [
    "ACTION_TYPES",
    "Action",
    "AgentConfig",
    "AgentDecision",
    "Applied",
    "CancelTriggerAction",
    "CheckedReply",
    "ClosePositionAction",
    "GuardFacts",
    "HoldAction",
    "OpenPositionAction",
    "OpeningAction",
    "PlaceTriggerAction",
    "ProviderKind",
    "Refusal",
    "RiskLimits",
    "Usage",
    "action_from_doc",
    "action_list_schema",
    "check_actions",
    "check_reply",
    "is_opening",
    "response_format",
]
