"""The trailing writer after a big move: slices, metrics, and no write of a fired stop."""

from __future__ import annotations

from decimal import Decimal as D

from prometheus_client import CollectorRegistry, generate_latest

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Side
from cogmora.domain.trailing import TrailingStop
from cogmora.engine.metrics import EngineMetrics
from cogmora.engine.trail_writes import TrailingWriter
from cogmora.store.sqlite import SqliteStore


async def test_a_big_move_is_written_in_slices_and_counted(store: SqliteStore) -> None:
    """1,200 moved peaks, slices of 100: twelve slices, each position once; the metrics
    say what was written and that nothing is left pending. (No document exists, so the
    compare-and-set writes none: the slices and the counts are what is under test.)"""
    book = TriggerBook()
    spec = TrailingStop(D("0.1"))
    for i in range(1200):
        book.set_position(f"p{i}", "S", Side.LONG, None, None, None, spec, D("100"))
    book.cross("S", D("101"))
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    writer = TrailingWriter(store, book, {f"p{i}": "u" for i in range(1200)},
                            metrics=metrics, slice_size=100)
    assert await writer.flush() == 0
    assert writer.slices == 12
    text = generate_latest(registry).decode()
    assert "cogmora_engine_trailing_writes_pending 0.0" in text
    assert "cogmora_engine_trailing_oldest_pending_seconds 0.0" in text
    assert "cogmora_engine_trailing_written_total 0.0" in text
    assert await writer.flush() == 0 and writer.slices == 12  # nothing moved since
