"""Document ids in Firestore's auto-id form: 20 characters of [A-Za-z0-9].

Ids are globally unique (about 118 bits of randomness: each random byte maps onto the
62-letter alphabet, a slight bias toward eight letters that costs under 2 bits in all),
so the trigger book can key levels by id alone, across users. One urandom call and one
`bytes.translate`: a settlement storm makes 300,000 of them, and the per-character
`secrets.choice` loop was its hottest line.
"""

from __future__ import annotations

import os
import string

_ALPHABET = (string.ascii_letters + string.digits).encode()
_TABLE = bytes(_ALPHABET[b % len(_ALPHABET)] for b in range(256))


def new_id() -> str:
    return os.urandom(20).translate(_TABLE).decode()
