"""The closed vocabularies of the data model (SPEC section 3), as string enums.

Their values are exactly the strings stored in documents and sent in JSON.
"""

from __future__ import annotations

from enum import StrEnum


class Market(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class PositionStatus(StrEnum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class CloseReason(StrEnum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    LIQUIDATION = "liquidation"
    MANUAL = "manual"
    AGENT = "agent"
    TIME_LIMIT = "time_limit"
    TRAILING_STOP = "trailing_stop"


class Source(StrEnum):
    API = "api"
    TRIGGER = "trigger"
    AGENT = "agent"


class TriggerStatus(StrEnum):
    ACTIVE = "active"
    TRIGGERED = "triggered"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


class TriggerOp(StrEnum):
    ABOVE = "above"
    BELOW = "below"


class LedgerKind(StrEnum):
    DEPOSIT = "deposit"
    OPEN = "open"
    CLOSE = "close"
    FEE = "fee"
    LIQUIDATION = "liquidation"
    FUNDING = "funding"
