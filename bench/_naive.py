"""The seed's way of evaluating a tick, for comparison: an indexed query per tick, then a scan.

The seed's worker ran, on every tick, `openPositions where symbol == S and
details.status == "open"` (and the same for `tradeTriggers` / "active"), then checked each
returned document. Here that is a real SQLite file in WAL mode holding the same documents
as the book (Firestore-shaped JSON, one row per position or trigger) in a table
`(id, symbol, status, doc)` with a composite index on `(symbol, status)`. To be generous
to the naive way, positions and triggers share the table and one query per tick fetches
both (`status IN ('open', 'active')`, one index range scan each), and nothing is written
back when something crosses.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from cogmora.domain.crossing import position_reason, trigger_fires
from cogmora.domain.enums import Side, TriggerOp
from cogmora.domain.ticks import PriceKind

PositionRow = tuple[str, str, Side, Decimal | None, Decimal | None, Decimal | None]
TriggerRow = tuple[str, str, TriggerOp, Decimal]

QUERY = "SELECT id, doc FROM docs WHERE symbol = ? AND status IN ('open', 'active')"


def _s(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _position_doc(row: PositionRow, rng: random.Random) -> dict[str, Any]:
    _, symbol, side, sl, tp, liq = row
    futures = liq is not None
    entry = (sl or tp or liq or Decimal(1)) * Decimal("1.01")
    return {
        "uid": f"user{rng.randrange(100_000)}",
        "symbol": symbol,
        "market": "futures" if futures else "spot",
        "side": side.value,
        "qty": "0.5",
        "entryPrice": _s(entry),
        "leverage": "10" if futures else "1",
        "margin": "120.50000000",
        "feeOpen": "0.07230000",
        "openedAt": "2024-05-01T12:00:00.000000Z",
        "source": "api",
        "details": {
            "status": "open",
            "stopLoss": _s(sl),
            "takeProfit": _s(tp),
            "liquidationPrice": _s(liq),
            "closeReason": None,
            "closePrice": None,
            "closeRequestedAt": None,
        },
    }


def _trigger_doc(row: TriggerRow, rng: random.Random) -> dict[str, Any]:
    _, symbol, op, price = row
    return {
        "uid": f"user{rng.randrange(100_000)}",
        "symbol": symbol,
        "market": "spot",
        "condition": {"op": op.value, "price": _s(price)},
        "action": {
            "side": "long",
            "qty": "0.1",
            "leverage": "1",
            "stopLoss": None,
            "takeProfit": None,
        },
        "expiresAt": None,
        "createdAt": "2024-05-01T12:00:00.000000Z",
        "details": {
            "status": "active",
            "firedAt": None,
            "firedPrice": None,
            "positionId": None,
            "error": None,
        },
    }


def build_database(
    path: Path, positions: list[PositionRow], triggers: list[TriggerRow]
) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE docs (id TEXT PRIMARY KEY, symbol TEXT NOT NULL, status TEXT NOT NULL,"
        " doc TEXT NOT NULL)"
    )
    rng = random.Random(11)

    def rows() -> Iterator[tuple[str, str, str, str]]:
        for p in positions:
            yield p[0], p[1], "open", json.dumps(_position_doc(p, rng), separators=(",", ":"))
        for t in triggers:
            yield t[0], t[1], "active", json.dumps(_trigger_doc(t, rng), separators=(",", ":"))

    db.execute("BEGIN")
    db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", rows())
    db.execute("COMMIT")
    db.execute("CREATE INDEX docs_symbol_status ON docs (symbol, status)")
    db.execute("ANALYZE")
    return db


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def evaluate(db: sqlite3.Connection, symbol: str, price: Decimal, kind: PriceKind) -> list[str]:
    """One tick the seed's way: query the symbol's open documents and check each one."""
    hit = []
    for key, text in db.execute(QUERY, (symbol,)):
        doc = json.loads(text)
        condition = doc.get("condition")
        if condition is not None:
            if trigger_fires(TriggerOp(condition["op"]), Decimal(condition["price"]), price, kind):
                hit.append(key)
            continue
        details = doc["details"]
        reason = position_reason(
            Side(doc["side"]),
            _dec(details["stopLoss"]),
            _dec(details["takeProfit"]),
            _dec(details["liquidationPrice"]),
            price,
            kind,
        )
        if reason is not None:
            hit.append(key)
    return hit


# ---- the best a database can do per tick: an indexed range query on the level itself

LEVEL_QUERY = (
    "SELECT id FROM levels WHERE symbol = ? AND below = 1 AND level >= ?"
    " UNION ALL SELECT id FROM levels WHERE symbol = ? AND below = 0 AND level <= ?"
)


def build_level_index(
    path: Path, positions: list[PositionRow], triggers: list[TriggerRow]
) -> sqlite3.Connection:
    """One row per resting level, `(symbol, below, level)` indexed, the level in units of
    1e-8 (exact): a tick is then two index range scans, the rows it crosses and no others."""
    from cogmora.domain.crossing import Direction, Reason, direction, trigger_direction

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE levels (id TEXT NOT NULL, symbol TEXT NOT NULL, below INTEGER NOT NULL,"
        " level INTEGER NOT NULL)"
    )

    def units(value: Decimal) -> int:
        return int(value.scaleb(8))

    def rows() -> Iterator[tuple[str, str, int, int]]:
        reasons = (Reason.STOP_LOSS, Reason.TAKE_PROFIT, Reason.LIQUIDATION)
        for key, symbol, side, *levels in positions:
            for reason, value in zip(reasons, levels, strict=True):
                if value is not None:
                    below = direction(side, reason) is Direction.AT_OR_BELOW
                    yield key, symbol, int(below), units(value)
        for key, symbol, op, price in triggers:
            below = trigger_direction(op) is Direction.AT_OR_BELOW
            yield key, symbol, int(below), units(price)

    db.execute("BEGIN")
    db.executemany("INSERT INTO levels VALUES (?, ?, ?, ?)", rows())
    db.execute("COMMIT")
    db.execute("CREATE INDEX levels_symbol_level ON levels (symbol, below, level)")
    db.execute("ANALYZE")
    return db


def evaluate_levels(db: sqlite3.Connection, symbol: str, price: Decimal) -> list[str]:
    """One tick against the level index: what a trade price crosses (exact, in 1e-8 units)."""
    scaled = price.scaleb(8)
    floor = int(scaled.to_integral_value(rounding="ROUND_FLOOR"))
    ceil = int(scaled.to_integral_value(rounding="ROUND_CEILING"))
    return [key for (key,) in db.execute(LEVEL_QUERY, (symbol, ceil, symbol, floor))]
