"""`Idempotency-Key` support, inside the same transaction as the effect it guards.

Recording the answer in the transaction that opens the position is what makes a retry
safe: a crash can lose both or neither, never just the record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from cogmora.domain.models import Doc
from cogmora.domain.timeutil import to_iso
from cogmora.errors import ValidationError
from cogmora.store.port import Tx

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    uid: str
    key: str
    route: str
    fingerprint: str

    @classmethod
    def of(cls, uid: str, key: str | None, route: str, body: Any) -> IdempotencyKey | None:
        if key is None:
            return None
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValidationError(
                "Idempotency-Key", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters"
            )
        digest = hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()
        return cls(uid, key, route, digest)

    @property
    def path(self) -> str:
        digest = hashlib.sha256(f"{self.uid}\0{self.key}".encode()).hexdigest()[:40]
        return f"idempotency/{digest}"


def replay(tx: Tx, key: IdempotencyKey | None) -> Doc | None:
    """The first answer given for this key, or None if it is new."""
    if key is None:
        return None
    doc = tx.get(key.path)
    if doc is None:
        return None
    if doc["route"] != key.route or doc["fingerprint"] != key.fingerprint:
        raise ValidationError(
            "Idempotency-Key", "Idempotency-Key was already used for a different request"
        )
    answer: Doc = doc["response"]
    return answer


def record(tx: Tx, key: IdempotencyKey | None, response: Doc, now: datetime) -> None:
    if key is None:
        return
    tx.create(
        key.path,
        {
            "uid": key.uid,
            "route": key.route,
            "fingerprint": key.fingerprint,
            "response": response,
            "at": to_iso(now),
        },
    )
