"""The risk guard: every action a provider proposes passes here before anything is applied.

Rules, in the order they are checked (the first broken one is the reason given):

- Closing a position and cancelling a trigger reduce risk and are always allowed, provided
  the position is open / the trigger is active and this run has not already asked for it.
  A hold is always allowed.
- An opening action (open a position now, or place a trigger that will open one) is
  refused when: its symbol is not one of the agent's symbols; today's net realized loss
  has reached `maxDailyLoss`; its leverage exceeds `maxLeverage`; there is no price to
  value it at (opens use the latest price, triggers their own level); its notional
  (`notional`, or `qty` times that price) exceeds `maxPositionNotional`; its SL/TP sit on
  the wrong side of that price or past liquidation (the same check the positions service
  makes); a trigger that has already expired; or it would take the account past
  `maxOpenPositions`.
- Open-position slots count open positions, the agent's still-active triggers (each is a
  position waiting to happen) and everything this run has already accepted. Closes and
  cancels in the same run do not free a slot: they take effect asynchronously and may
  lose a race, and the guard does not bet on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from cogmora.domain.agent.actions import (
    Action,
    CancelTriggerAction,
    ClosePositionAction,
    HoldAction,
    OpenPositionAction,
    PlaceTriggerAction,
)
from cogmora.domain.agent.config import RiskLimits
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.money import MONEY_CONTEXT, ONE, ZERO, in_money_context
from cogmora.domain.orders import precheck
from cogmora.errors import ValidationError


@dataclass(frozen=True, slots=True)
class GuardFacts:
    """What the guard needs to know about the account at the time of the run.

    `realized_loss_today` is the net realized loss since UTC midnight as a positive number
    (zero when the day is in profit).
    """

    now: datetime
    symbols: frozenset[str]
    prices: Mapping[str, Decimal]
    open_position_ids: frozenset[str] = frozenset()
    active_trigger_ids: frozenset[str] = frozenset()
    pending_agent_triggers: int = 0
    realized_loss_today: Decimal = ZERO
    fees: FeeSchedule = field(default_factory=FeeSchedule)


Refused = tuple[Action, str]


@in_money_context
def check_actions(
    actions: Iterable[Action], limits: RiskLimits, facts: GuardFacts
) -> tuple[list[Action], list[Refused]]:
    """Split proposed actions into those that may be applied and those refused, with reasons."""
    accepted: list[Action] = []
    refused: list[Refused] = []
    closing: set[str] = set()
    cancelling: set[str] = set()
    slots_used = len(facts.open_position_ids) + facts.pending_agent_triggers
    for action in actions:
        reason: str | None
        if isinstance(action, HoldAction):
            reason = None
        elif isinstance(action, ClosePositionAction):
            reason = _check_target(
                action.position_id, facts.open_position_ids, closing, "position", "open", "closed"
            )
        elif isinstance(action, CancelTriggerAction):
            reason = _check_target(
                action.trigger_id,
                facts.active_trigger_ids,
                cancelling,
                "trigger",
                "active",
                "cancelled",
            )
        elif isinstance(action, OpenPositionAction | PlaceTriggerAction):
            reason = _check_opening(action, limits, facts, slots_used)
            if reason is None:
                slots_used += 1
        else:  # a provider bug, not a user's mistake; refused all the same
            reason = f"not an action: {type(action).__name__}"
        if reason is None:
            accepted.append(action)
        else:
            refused.append((action, reason))
    return accepted, refused


def _check_target(
    target: str, live: frozenset[str], done: set[str], noun: str, state: str, verb: str
) -> str | None:
    if target not in live:
        return f"{noun} {target} is not {state}"
    if target in done:
        return f"{noun} {target} is already {verb} by this run"
    done.add(target)
    return None


def _check_opening(
    action: OpenPositionAction | PlaceTriggerAction,
    limits: RiskLimits,
    facts: GuardFacts,
    slots_used: int,
) -> str | None:
    symbol = action.symbol
    if symbol not in facts.symbols:
        return f"symbol {symbol} is not one of the agent's symbols"
    if facts.realized_loss_today >= limits.max_daily_loss:
        return (
            f"daily realized loss {fmt(facts.realized_loss_today)} reached "
            f"maxDailyLoss {fmt(limits.max_daily_loss)}"
        )
    leverage = action.leverage if action.leverage is not None else ONE
    if leverage > limits.max_leverage:
        return f"leverage {fmt(leverage)} exceeds maxLeverage {fmt(limits.max_leverage)}"
    if isinstance(action, OpenPositionAction):
        price = facts.prices.get(symbol)
        if price is None or price <= 0:
            return f"no price for {symbol}"
        reference = "current price"
    else:
        if action.expires_at is not None and action.expires_at <= facts.now:
            return "expiresAt must be in the future"
        price = action.price
        reference = "trigger price"
    notional = action.notional if action.notional is not None else (action.qty or ZERO) * price
    if notional > limits.max_position_notional:
        return (
            f"notional {fmt(notional)} exceeds maxPositionNotional "
            f"{fmt(limits.max_position_notional)}"
        )
    try:
        precheck(action.to_request(), price, facts.fees, reference)
    except ValidationError as exc:
        return str(exc)
    if slots_used >= limits.max_open_positions:
        return (
            f"maxOpenPositions {limits.max_open_positions} reached: {len(facts.open_position_ids)} "
            f"open, {facts.pending_agent_triggers} pending agent triggers, "
            f"{slots_used - len(facts.open_position_ids) - facts.pending_agent_triggers} "
            "accepted in this run"
        )
    return None


def fmt(value: Decimal) -> str:
    """A decimal for a human: no exponent, no trailing zeros (`20`, not `2E+1` or `20.00`)."""
    return format(value.normalize(MONEY_CONTEXT), "f")
