"""A take-profit ladder's legs in the book, each as a key of its own (`{id}#tp{n}`).

A leg is a take-profit-only record of the position's side, so the book's ordinary ladders
find it in O(log n + k) with every other level, and its hit names the leg: a storm of legs
on one tick is one `cross`, and each leg's write is checked against that leg alone. The
position's own key keeps its stop loss and liquidation. Filled legs are not put back; the
change feed's next document of the position says which are left.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from cogmora.domain.enums import Side
from cogmora.domain.models import Position
from cogmora.domain.takeprofits import leg_key

if TYPE_CHECKING:
    from cogmora.engine.book_sync import BookIndex

LegRow = tuple[str, str, Side, Decimal | None, Decimal | None, Decimal | None]


def open_legs(position: Position) -> list[tuple[str, Decimal]]:
    """(key, price) of each leg still to fill."""
    d = position.details
    filled = set(d.legs_filled)
    return [
        (leg_key(position.id, i), leg.price)
        for i, leg in enumerate(d.take_profits)
        if i not in filled
    ]


def put_legs(index: BookIndex, position: Position, second: int) -> None:
    """Make the book hold exactly the position's unfilled legs."""
    wanted = open_legs(position)
    keep = {key for key, _ in wanted}
    for key in index.legs.pop(position.id, ()):
        if key not in keep:
            _drop(index, key)
    for key, price in wanted:
        index.book.set_position(key, position.symbol, position.side, None, price, None)
        index.owners[key] = position.uid
        index.created[key] = second
    if wanted:
        index.legs[position.id] = tuple(keep)


def leg_rows(index: BookIndex, position: Position, second: int) -> list[LegRow]:
    """The bulk load's rows of the position's unfilled legs (and their index entries)."""
    rows: list[LegRow] = []
    for key, price in open_legs(position):
        rows.append((key, position.symbol, position.side, None, price, None))
        index.owners[key] = position.uid
        index.created[key] = second
    if rows:
        index.legs[position.id] = tuple(r[0] for r in rows)
    return rows


def forget_legs(index: BookIndex, position_id: str) -> None:
    for key in index.legs.pop(position_id, ()):
        _drop(index, key)


def _drop(index: BookIndex, key: str) -> None:
    index.book.remove(key)
    index.owners.pop(key, None)
    index.created.pop(key, None)
