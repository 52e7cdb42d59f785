"""The recorded-ticks file: one JSON object per line, the same for recording and replay.

    {"ns": 1731898619520000000, "market": "futures", "symbol": "XBTUSDTM",
     "price": "90503.9", "kind": "trade"}

`ns` is the exchange timestamp (nanoseconds since the epoch) or, when the exchange gave
none, the time the frame arrived. Prices are decimal strings so a replay sees exactly the
prices the feed saw. JSON lines were chosen over a binary format because a recording is
something people grep, cut and hand-edit into test scenarios.

File I/O runs in a worker thread (`asyncio.to_thread`) in large chunks, so neither the
recorder nor the replay blocks the event loop for more than a list append.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

import msgspec

from cogmora.domain.enums import Market
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.errors import ValidationError


class RecordLine(msgspec.Struct, frozen=True):
    ns: int
    market: str
    symbol: str
    price: str
    kind: str = "trade"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(RecordLine)
_MARKETS = {m.value: m for m in Market}
_KINDS = {k.value: k for k in PriceKind}


def encode_tick(tick: Tick) -> bytes:
    """One line of the file (newline included)."""
    line = RecordLine(
        ns=tick.exchange_ns or tick.received_ns,
        market=tick.market.value,
        symbol=tick.symbol,
        price=format(tick.price, "f"),
        kind=tick.kind.value,
    )
    return _encoder.encode(line) + b"\n"


def _to_tick(line: RecordLine, where: str) -> Tick:
    market = _MARKETS.get(line.market)
    kind = _KINDS.get(line.kind)
    if market is None:
        raise ValidationError("market", f"{where}: market must be spot or futures")
    if kind is None:
        raise ValidationError("kind", f"{where}: kind must be trade or mark")
    try:
        price = Decimal(line.price)
    except InvalidOperation:
        raise ValidationError("price", f"{where}: price must be a decimal string") from None
    if not price.is_finite() or price <= 0:
        raise ValidationError("price", f"{where}: price must be a positive number")
    return Tick(line.symbol, market, price, kind, line.ns, line.ns)


def decode_line(raw: bytes | str, where: str = "line") -> Tick:
    """Parse one line; a bad line raises ValidationError naming `where` and the field."""
    try:
        line = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise ValidationError("line", f"{where}: {exc}") from None
    return _to_tick(line, where)


class RecordingWriter:
    """Appends ticks to a recording; `write` only buffers, `flush` hits the disk."""

    def __init__(self, path: Path, *, flush_every: int = 10_000) -> None:
        self.path = path
        self.flush_every = flush_every
        self.written = 0
        self._buffer: list[bytes] = []
        self._file: IO[bytes] | None = None

    async def open(self) -> RecordingWriter:
        self._file = await asyncio.to_thread(self.path.open, "ab")
        return self

    async def __aenter__(self) -> RecordingWriter:
        return await self.open()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def write(self, ticks: Iterable[Tick]) -> None:
        for tick in ticks:
            self._buffer.append(encode_tick(tick))

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def maybe_flush(self) -> None:
        if len(self._buffer) >= self.flush_every:
            await self.flush()

    async def flush(self) -> None:
        if self._file is None:
            raise RuntimeError("RecordingWriter.open() was not awaited")
        if not self._buffer:
            return
        chunk, self._buffer = b"".join(self._buffer), []
        file = self._file
        self.written += chunk.count(b"\n")

        def write() -> None:
            file.write(chunk)
            file.flush()

        await asyncio.to_thread(write)

    async def close(self) -> None:
        if self._file is None:
            return
        await self.flush()
        file, self._file = self._file, None
        await asyncio.to_thread(file.close)


async def read_recording(path: Path, *, chunk_bytes: int = 1 << 20) -> AsyncIterator[list[Tick]]:
    """Yield the file's ticks in chunks (file order); blank lines are skipped."""
    file = await asyncio.to_thread(path.open, "rb")
    try:
        tail = b""
        line_no = 0
        while True:
            block = await asyncio.to_thread(file.read, chunk_bytes)
            if not block:
                break
            block = tail + block
            cut = block.rfind(b"\n")
            if cut < 0:
                tail = block
                continue
            tail = block[cut + 1 :]
            ticks, line_no = _parse_block(block[:cut], path, line_no)
            if ticks:
                yield ticks
        if tail.strip():
            ticks, _ = _parse_block(tail, path, line_no)
            yield ticks
    finally:
        await asyncio.to_thread(file.close)


def _parse_block(block: bytes, path: Path, line_no: int) -> tuple[list[Tick], int]:
    ticks: list[Tick] = []
    for raw in block.split(b"\n"):
        line_no += 1
        if raw.strip():
            ticks.append(decode_line(raw, f"{path}:{line_no}"))
    return ticks, line_no


async def load_recording(path: Path) -> list[Tick]:
    """The whole file in memory (recordings for demos and tests are small)."""
    out: list[Tick] = []
    async for chunk in read_recording(path):
        out.extend(chunk)
    return out


async def count_ticks(path: Path) -> int:
    """Lines in the file, for a progress bar's total."""

    def count() -> int:
        n = 0
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                n += block.count(b"\n")
        return n

    return await asyncio.to_thread(count)
