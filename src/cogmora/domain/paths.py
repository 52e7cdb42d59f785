"""Where each document lives: every Firestore path of the data model (SPEC section 3), in
one place, so the SQL backends, Firestore, the rules file and the code agree."""

from __future__ import annotations

from datetime import date


def user_path(uid: str) -> str:
    return f"users/{uid}"


def position_path(uid: str, pid: str) -> str:
    return f"users/{uid}/openPositions/{pid}"


def trigger_path(uid: str, tid: str) -> str:
    return f"users/{uid}/tradeTriggers/{tid}"


def history_path(uid: str, pid: str) -> str:
    return f"users/{uid}/positionHistory/{pid}"


def ledger_path(uid: str, lid: str) -> str:
    return f"users/{uid}/ledger/{lid}"


def watch_path(uid: str, symbol: str) -> str:
    return f"users/{uid}/watchlist/{symbol}"


def agent_config_path(uid: str) -> str:
    return f"users/{uid}/agent/config"


def decision_path(uid: str, did: str) -> str:
    return f"users/{uid}/agentDecisions/{did}"


def budget_path(uid: str, day: date) -> str:
    """A user's LLM call counter for one UTC day."""
    return f"users/{uid}/llmBudget/{day.isoformat()}"


def price_path(symbol: str) -> str:
    return f"prices/{symbol}"
