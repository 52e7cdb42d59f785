"""Users, bearer tokens and deposits.

Tokens are random and stored only as SHA-256 hashes (`tokens/{hash}`): a leaked database
does not leak credentials, and lookup stays one indexed read. Writes to a user's balance
run in the user document's lane (`store.lanes`), as every money path of this process
does, so they never abort each other.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections import OrderedDict
from decimal import Decimal

from cogmora.domain import money
from cogmora.domain.enums import LedgerKind
from cogmora.domain.models import LedgerEntry, User
from cogmora.domain.paths import user_path
from cogmora.errors import Conflict, NotFound, ValidationError
from cogmora.services.clock import Clock
from cogmora.services.ledger import AccountBook
from cogmora.store import queries as q
from cogmora.store.lanes import lanes
from cogmora.store.port import Store, Tx

UID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Every API request resolves its bearer token; a token's user never changes, so a known
# token is remembered for a while (one store read per TOKEN_TTL, not per request). The TTL
# is what a token deleted from the store by hand may still be honoured for.
TOKEN_TTL = 60.0
TOKEN_CACHE = 10_000


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def check_uid(uid: str) -> None:
    if not UID_PATTERN.match(uid):
        raise ValidationError("uid", "uid must be 1 to 64 characters of letters, digits, . _ -")


def check_amount(amount: Decimal, field: str) -> Decimal:
    """Finite, below 10^16, and exact at the 8 stored places: a larger or finer amount would
    be rounded on its way into the ledger (or overflow it), booking money nobody deposited."""
    return money.require_places(money.parse(amount, field), field)


class Accounts:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()  # hash -> (uid, until)

    async def create_user(
        self, uid: str, balance: Decimal, token: str | None = None
    ) -> tuple[User, str]:
        """Create the user with `token` (a new random one if None).

        Safe to retry with the same token: when the user already exists AND the token is
        theirs, the earlier attempt did create it (its answer was lost), and the user is
        returned as if this call had made it; a user made by anyone else is a Conflict.
        """
        check_uid(uid)
        check_amount(balance, "balance")
        if balance < 0:
            raise ValidationError("balance", "balance must not be negative")
        token = token or new_token()
        now = self._clock.now()
        token_path = f"tokens/{hash_token(token)}"

        def body(tx: Tx) -> User:
            existing, mine = tx.get_many([user_path(uid), token_path])
            if existing is not None:
                if mine is not None and mine.get("uid") == uid:
                    return User.from_doc(existing)
                raise Conflict(f"user {uid} already exists")
            book = AccountBook([User(uid, Decimal(0), now)])
            if balance > 0:
                book.post(uid, [(LedgerKind.DEPOSIT, balance)], now, note="initial balance")
            tx.create(user_path(uid), book.user(uid).to_doc())
            tx.create(token_path, {"uid": uid})
            for path, doc in book.writes():
                if path != user_path(uid):
                    tx.create(path, doc)
            return book.user(uid)

        return await lanes(self._store).transact([user_path(uid)], body), token

    async def deposit(self, uid: str, amount: Decimal) -> User:
        if check_amount(amount, "amount") <= 0:
            raise ValidationError("amount", "amount must be greater than 0")
        now = self._clock.now()

        def body(tx: Tx) -> User:
            book = AccountBook.from_docs([tx.get(user_path(uid))])
            book.post(uid, [(LedgerKind.DEPOSIT, amount)], now, note="deposit")
            for path, doc in book.writes():
                tx.set(path, doc)
            return book.user(uid)

        return await lanes(self._store).transact([user_path(uid)], body)

    async def get_user(self, uid: str) -> User:
        def body(tx: Tx) -> User:
            doc = tx.get(user_path(uid))
            if doc is None:
                raise NotFound(f"user {uid} not found")
            return User.from_doc(doc)

        return await self._store.read(body)

    async def ledger(self, uid: str, after: int = 0) -> list[LedgerEntry]:
        """The user's entries with seq > after, in booking order."""
        query = (
            q.Query("ledger", parent=user_path(uid)).where("seq", ">", after).order_by("seq", "asc")
        )
        rows = await self._store.read(lambda tx: tx.query(query))
        return [LedgerEntry.from_doc(path.rsplit("/", 1)[1], doc) for path, doc in rows]

    async def uid_for_token(self, token: str) -> str | None:
        digest = hash_token(token)
        known = self._tokens.get(digest)
        if known is not None and known[1] > time.monotonic():
            self._tokens.move_to_end(digest)
            return known[0]
        path = f"tokens/{digest}"

        def body(tx: Tx) -> str | None:
            doc = tx.get(path)
            return None if doc is None else str(doc["uid"])

        uid = await self._store.read(body)
        if uid is None:  # unknown tokens are not remembered: a new one works at once
            self._tokens.pop(digest, None)
            return None
        self._tokens[digest] = (uid, time.monotonic() + TOKEN_TTL)
        self._tokens.move_to_end(digest)
        while len(self._tokens) > TOKEN_CACHE:
            self._tokens.popitem(last=False)
        return uid
