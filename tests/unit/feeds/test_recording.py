"""The recorded-ticks file: lines, writer, reader and replay."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from cogmora.domain.enums import Market
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.errors import ValidationError
from cogmora.feeds.recording import (
    RecordingWriter,
    count_ticks,
    decode_line,
    encode_tick,
    load_recording,
)
from cogmora.feeds.replay import ReplayFeed

T0 = 1_731_898_619_520_000_000


def ticks(n: int, step_ns: int = 1_000) -> list[Tick]:
    return [
        Tick("BTC-USDT" if i % 2 else "XBTUSDTM", Market.SPOT if i % 2 else Market.FUTURES,
             Decimal("67000.1") + i, PriceKind.MARK if i % 5 == 0 else PriceKind.TRADE,
             T0 + i * step_ns, T0 + i * step_ns)
        for i in range(n)
    ]


def test_a_line_is_the_documented_json_object() -> None:
    """One tick is one JSON line with ns, market, symbol, a decimal-string price and kind."""
    tick = Tick("XBTUSDTM", Market.FUTURES, Decimal("90503.90"), PriceKind.MARK, T0, T0 + 5)
    line = encode_tick(tick)
    assert line.endswith(b"\n")
    assert json.loads(line) == {"ns": T0, "market": "futures", "symbol": "XBTUSDTM",
                                "price": "90503.90", "kind": "mark"}


def test_a_line_round_trips_to_the_same_price_exactly() -> None:
    """Decoding a written line gives back the tick's exact price and timestamp."""
    tick = Tick("PEPE-USDT", Market.SPOT, Decimal("0.0000105"), PriceKind.TRADE, T0, T0)
    assert decode_line(encode_tick(tick)) == tick


def test_received_time_stands_in_when_the_exchange_gave_none() -> None:
    """A tick without an exchange timestamp is recorded at its arrival time."""
    tick = Tick("BTC-USDT", Market.SPOT, Decimal(1), PriceKind.TRADE, 0, 123)
    assert json.loads(encode_tick(tick))["ns"] == 123


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"ns":1,"market":"margin","symbol":"X","price":"1"}', "market"),
        ('{"ns":1,"market":"spot","symbol":"X","price":"1","kind":"bid"}', "kind"),
        ('{"ns":1,"market":"spot","symbol":"X","price":"abc"}', "price"),
        ('{"ns":1,"market":"spot","symbol":"X","price":"-1"}', "price"),
        ('{"ns":"x","market":"spot","symbol":"X","price":"1"}', "line"),
    ],
)
def test_a_bad_line_names_its_place_and_field(line: str, field: str) -> None:
    """A bad line raises ValidationError naming where it is and which field is wrong."""
    with pytest.raises(ValidationError) as info:
        decode_line(line, "rec.jsonl:7")
    assert info.value.field == field
    assert "rec.jsonl:7" in str(info.value)


async def test_writer_and_reader_round_trip_a_file(tmp_path: Path) -> None:
    """Ticks written through the writer are read back in order, all of them."""
    path = tmp_path / "rec.jsonl"
    original = ticks(2500)
    async with RecordingWriter(path, flush_every=1000) as writer:
        for i in range(0, len(original), 300):
            writer.write(original[i : i + 300])
            await writer.maybe_flush()
    assert writer.written == 2500
    assert await load_recording(path) == original
    assert await count_ticks(path) == 2500


async def test_reader_skips_blank_lines_and_reads_a_last_line_without_newline(
    tmp_path: Path,
) -> None:
    """Hand-edited files with blank lines and no final newline still read fully."""
    path = tmp_path / "hand.jsonl"
    lines = [encode_tick(t).decode().strip() for t in ticks(3)]
    path.write_text(lines[0] + "\n\n" + lines[1] + "\n" + lines[2])
    assert await load_recording(path) == ticks(3)


async def test_replay_as_fast_as_possible_delivers_everything_in_bursts(tmp_path: Path) -> None:
    """A fast replay hands over every tick, in order, in bursts of at most burst_size."""
    path = tmp_path / "rec.jsonl"
    async with RecordingWriter(path) as writer:
        writer.write(ticks(250))
    bursts: list[list[Tick]] = []
    progress: list[int] = []
    feed = ReplayFeed(path, bursts.append, burst_size=100, on_progress=progress.append)
    assert await feed.total() == 250
    assert await feed.run() == 250
    assert [len(b) for b in bursts] == [100, 100, 50]
    assert [t for b in bursts for t in b] == ticks(250)
    assert progress[-1] == 250


async def test_paced_replay_groups_ticks_of_one_instant_and_keeps_order(tmp_path: Path) -> None:
    """At recorded pace, ticks within one window form one burst, in file order."""
    path = tmp_path / "rec.jsonl"
    # Three groups of two ticks, 1 ms apart inside a group, 20 ms between groups.
    recorded = [
        Tick("BTC-USDT", Market.SPOT, Decimal(100 + i), PriceKind.TRADE,
             T0 + (i // 2) * 20_000_000 + (i % 2) * 1_000, 0)
        for i in range(6)
    ]
    async with RecordingWriter(path) as writer:
        writer.write(recorded)
    bursts: list[list[Tick]] = []
    await ReplayFeed(path, bursts.append, speed=10.0, window_ns=1_000_000).run()
    assert [len(b) for b in bursts] == [2, 2, 2]
    assert [t.price for b in bursts for t in b] == [Decimal(100 + i) for i in range(6)]
