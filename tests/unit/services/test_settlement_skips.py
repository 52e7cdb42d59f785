"""Settlement goes on past a document it cannot read."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cogmora.domain.enums import Market, PositionStatus, Side
from cogmora.domain.models import Position
from cogmora.domain.orders import OpenRequest
from cogmora.store.port import Tx


async def test_a_broken_closing_position_is_skipped_and_the_rest_settle(
    system: Any, quote: Any, make_user: Any
) -> None:
    """A closing position without a close price stays closing; the others settle."""
    quote("BTC-USDT", "100")
    await make_user("ann", "10000")
    ids = []
    for _ in range(3):
        doc = await system.positions.open(
            "ann", OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=Decimal(1))
        )
        ids.append(doc["id"])
        await system.positions.request_close("ann", doc["id"])
    broken = Position.from_doc(ids[0], (await system.positions.get("ann", ids[0])).to_doc())

    def damage(tx: Tx) -> None:
        doc = broken.to_doc()
        doc["details"]["closePrice"] = None
        tx.set(broken.path, doc)

    await system.store.transact(damage)
    assert await system.settler.settle_all() == 2
    statuses = [(await system.positions.get("ann", i)).status for i in ids]
    assert statuses == [PositionStatus.CLOSING, PositionStatus.CLOSED, PositionStatus.CLOSED]
