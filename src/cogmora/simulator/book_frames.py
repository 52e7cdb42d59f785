"""The order book on the wire: level-2 updates, depth snapshots and the REST books.

Spot updates (`/market/level2`) carry every changed level of one trade in one message, each
change numbered inside [sequenceStart, sequenceEnd]; futures updates
(`/contractMarket/level2`) carry one change each, numbered one by one. Either way the
numbers continue the REST snapshot's `sequence`, which is how ccxt's watch_order_book
stitches the stream onto the snapshot it fetched.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cogmora.domain.enums import Market
from cogmora.simulator import book
from cogmora.simulator.frames import message, s
from cogmora.simulator.market import Instrument


def _lots(inst: Instrument) -> bool:
    return inst.market is Market.FUTURES


def levels(inst: Instrument, depth: int) -> tuple[list[book.Level], list[book.Level]]:
    return book.ladder(inst.symbol, inst.top, min(depth, inst.depth), lots=_lots(inst))


def _pairs(side: list[book.Level], lots: bool) -> list[list[Any]]:
    # Spot books are strings; futures books are numbers (prices) and integers (lots).
    if lots:
        return [[p, int(q)] for p, q in side]
    return [[s(p), s(q)] for p, q in side]


def spot_update(inst: Instrument) -> str | None:
    """The `/market/level2:{symbol}` message of the last trade, None if the book kept
    its levels."""
    if inst.book_before is None or inst.book_sequence == inst.book_sequence_before:
        return None
    bids, asks = book.diff(inst.symbol, inst.book_before, inst.top, inst.depth, lots=False)
    seq = inst.book_sequence_before
    out: dict[str, list[list[str]]] = {"asks": [], "bids": []}
    for name, side in (("asks", asks), ("bids", bids)):
        for price, size in side:
            seq += 1
            out[name].append([s(price), s(size), str(seq)])
    data = {"changes": out, "sequenceEnd": inst.book_sequence,
            "sequenceStart": inst.book_sequence_before + 1, "symbol": inst.symbol,
            "time": inst.time_ms}
    return message(f"/market/level2:{inst.symbol}", "trade.l2update", data)


def futures_updates(inst: Instrument) -> list[str]:
    """The `/contractMarket/level2:{symbol}` messages of the last trade, one per change."""
    if inst.book_before is None:
        return []
    bids, asks = book.diff(inst.symbol, inst.book_before, inst.top, inst.depth, lots=True)
    seq = inst.book_sequence_before
    frames = []
    for side_name, side in (("sell", asks), ("buy", bids)):
        for price, size in side:
            seq += 1
            frames.append(
                f'{{"topic":"/contractMarket/level2:{inst.symbol}","type":"message",'
                f'"subject":"level2","sn":{seq},"data":{{"sequence":{seq},'
                f'"change":"{s(price)},{side_name},{int(size)}","timestamp":{inst.time_ms}}}}}'
            )
    return frames


def depth(inst: Instrument, prefix: str, count: int) -> str:
    """`/spotMarket/level2Depth{5,50}` or `/contractMarket/level2Depth{5,50}`: the top
    `count` levels each side."""
    bids, asks = levels(inst, count)
    lots = _lots(inst)
    data: dict[str, Any] = {"asks": _pairs(asks, lots), "bids": _pairs(bids, lots),
                            "timestamp": inst.time_ms}
    if lots:
        data |= {"sequence": inst.book_sequence, "ts": inst.time_ms}
        return message(f"{prefix}:{inst.symbol}", "level2", data, sn=inst.time_ms)
    return message(f"{prefix}:{inst.symbol}", "level2", data)


def rest_book(inst: Instrument, count: int, at_ms: int) -> dict[str, Any]:
    """Spot `level2_{20,100}` / futures `level2/snapshot`, `level2/depth{20,100}`."""
    bids, asks = levels(inst, count)
    if _lots(inst):
        return {"sequence": inst.book_sequence, "symbol": inst.symbol,
                "bids": _pairs(bids, True), "asks": _pairs(asks, True),
                "ts": at_ms * 1_000_000}
    return {"time": at_ms, "sequence": str(inst.book_sequence),
            "bids": _pairs(bids, False), "asks": _pairs(asks, False)}


def level_sizes(inst: Instrument) -> tuple[Decimal, Decimal]:
    return (book.level_size(inst.symbol, inst.best_bid, _lots(inst)),
            book.level_size(inst.symbol, inst.best_ask, _lots(inst)))
