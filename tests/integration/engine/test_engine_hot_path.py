"""The engine fed raw spot ticker frames through its prefiltered hot path, on a real store."""

from __future__ import annotations

from decimal import Decimal

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side
from cogmora.domain.orders import OpenRequest

from .conftest import Rig

D = Decimal


def frame(symbol: str, price: str) -> bytes:
    return (
        b'{"type":"message","topic":"/market/ticker:%s","subject":"trade.ticker",'
        b'"data":{"sequence":"1","price":"%s","size":"0.1","time":1714564800000}}'
        % (symbol.encode(), price.encode())
    )


async def test_hot_path_frames_stop_out_a_position_and_leave_the_last_price(rig: Rig) -> None:
    """Frames far from the level only move the live price; the one at the stop loss
    closes the position at its own price, and the live price is the burst's last."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("BTC-USDT", "60000")
    doc = await rig.system.positions.open(
        "u", OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D("1"), stop_loss=D("59000"))
    )
    await rig.synced()
    hot = rig.engine.hot_path()
    hot.on_frames([frame("BTC-USDT", "59500.5"), frame("ETH-USDT", "3000")])
    quote = rig.system.live.get("BTC-USDT")
    assert quote is not None and quote.price == D("59500.5")
    hot.on_frames([frame("BTC-USDT", "59000"), frame("BTC-USDT", "59100.25")])
    await rig.settle()
    position = await rig.system.positions.get("u", str(doc["id"]))
    assert position.status is PositionStatus.CLOSED
    assert position.details.close_reason is CloseReason.STOP_LOSS
    assert position.details.close_price == D("59000")
    quote = rig.system.live.get("BTC-USDT")
    assert quote is not None and quote.price == D("59100.25")
    assert hot.exact == 1

