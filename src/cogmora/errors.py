"""The project's errors, grouped by what the caller should do about them.

    CogmoraError
    ├── Rejected            bad input: answer 4xx, never retry
    │   ├── ValidationError   422, names the field and the rule broken
    │   ├── InsufficientBalance 422
    │   ├── NotFound          404 (also another user's id)
    │   └── Conflict          409 (stale price, wrong status, lost a race)
    ├── Temporary           retry with backoff: network, contention, a peer that is down
    │   └── FeedResync        a change-feed cursor fell behind what is kept: rebuild, then follow
    └── Fatal               stop and say why: bad configuration, an undeclared query
        ├── ConfigError
        └── FailedPrecondition

Adapters translate library exceptions into these at the boundary, so nothing above an
adapter ever catches `sqlite3.OperationalError` or `httpx.ConnectError`.
"""

from __future__ import annotations


class CogmoraError(Exception):
    """Root of every error the project raises on purpose."""


class Rejected(CogmoraError):
    """The request is wrong; repeating it unchanged gives the same answer. (Which HTTP
    status each kind answers is the API's business: `api.errors.STATUS`.)"""


class ValidationError(Rejected):
    """A field breaks a rule; the message names both."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InsufficientBalance(Rejected):
    def __init__(self, need: object, have: object) -> None:
        super().__init__(f"insufficient balance: need {need}, have {have}")
        self.need = need
        self.have = have


class NotFound(Rejected):
    """Unknown id, or another user's (the API never says which)."""


class Conflict(Rejected):
    """The request is well formed but the world is not in the state it needs."""


class Temporary(CogmoraError):
    """Retry later with backoff: the network, a busy database, a peer that is restarting."""


class Fatal(CogmoraError):
    """Nothing will fix this at run time: stop and tell the operator."""


class ConfigError(Fatal):
    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class FailedPrecondition(Fatal):
    """Code ran a query the registry does not declare: Firestore would refuse it in production."""


class FeedResync(Temporary):
    """A change-feed reader's cursor is older than what the store still keeps (the feed was
    pruned past it, or a listener could not confirm what it delivered): the reader must
    rebuild its view from the registered queries and follow from `head()` again, never
    carry on as if nothing had been missed."""
