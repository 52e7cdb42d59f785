"""Document ids in Firestore's auto-id form: 20 characters of [A-Za-z0-9].

Ids are globally unique (120 bits of randomness), so the trigger book can key levels by id
alone, across users.
"""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(20))
