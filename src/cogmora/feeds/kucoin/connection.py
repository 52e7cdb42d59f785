"""One KuCoin websocket: fresh token, welcome, JSON ping/pong, subscribe/ack, data frames.

The read loop is the hot path. Each frame is decoded at once and its tick appended to a
pending list; the first append schedules a flush with `loop.call_soon`. The reader does not
yield to the event loop while frames are already buffered (aiohttp's queue returns them
without suspending), so the flush runs only once the socket has been drained: everything
read in one go reaches `on_ticks` as one list, and the engine commits once per burst.

With a `FrameSink` (the worker's spot feed: `engine.prefilter.HotPath`), a message frame
is not even parsed as it arrives: the burst's raw frames go to `on_raw`, which reads them
(in C where it is built) and builds Ticks only for the frames that need one. A frame that
does not spell `"message"` is no data message and is decoded at once, so control frames
are still handled as they arrive, in both modes: a subscription's ack resolves its waiter
before the ticks read after it are flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlencode

import aiohttp
import msgspec

from cogmora.domain.ticks import Tick
from cogmora.errors import Temporary
from cogmora.feeds.kucoin.decode import Decoded, FrameDecoder, MalformedFrame
from cogmora.feeds.kucoin.metrics import MarketFeedMetrics
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.feeds.kucoin.schemas import ControlFrame, PingRequest, SubscribeRequest

log = logging.getLogger(__name__)

# Text frames arrive as bytes (decode_text=False): msgspec reads UTF-8 bytes directly.
RawWebSocket = aiohttp.ClientWebSocketResponse[Literal[False]]

_control = msgspec.json.Decoder(ControlFrame)
# What every data message spells (`"type":"message"`) and no control frame does: a frame
# without it is decoded as it arrives.
_MESSAGE = '"message"'
_MESSAGE_BYTES = b'"message"'
_encode = msgspec.json.Encoder().encode


class FrameSink(Protocol):
    """Bursts of raw spot message frames (or the Tick of a frame the reader decoded, as
    `Decoded`), with each frame's arrival; returns how many were ticks. Malformed frames
    go to `on_malformed`, frames with no price to `on_control`, in frame order. After a
    burst with ticks, `last_received_ns`/`last_exchange_ns` are its last tick's."""

    last_received_ns: int
    last_exchange_ns: int

    def on_raw(
        self,
        frames: Sequence[bytes | str | Decoded],
        arrivals: Sequence[int],
        on_malformed: Callable[[MalformedFrame], None] | None = None,
        on_control: Callable[[bytes | str], None] | None = None,
    ) -> int: ...


class LinkDead(Temporary):
    """No pong in time, no ack in time, or the server closed: reconnect."""


class SubscribeError(Exception):
    """KuCoin answered a subscribe/unsubscribe with an error frame."""

    def __init__(self, code: int | str | None, text: str, topic: str) -> None:
        super().__init__(f"{code} {text} ({topic})")
        self.code = int(code) if isinstance(code, int | str) and str(code).isdigit() else 0
        self.text = text
        self.topic = topic


@dataclass(frozen=True, slots=True)
class Timing:
    welcome_timeout_s: float = 10.0
    ack_timeout_s: float = 10.0
    ping_interval_s: float | None = None  # None: the server's pingInterval
    ping_timeout_s: float | None = None  # None: the server's pingTimeout
    close_timeout_s: float = 2.0


class KucoinConnection:
    """Use `await KucoinConnection.open(...)`, then `run()` (until the link dies) alongside
    `request()` calls; `close()` at the end."""

    def __init__(
        self,
        ws: RawWebSocket,
        decoder: FrameDecoder,
        on_ticks: Callable[[list[Tick]], None],
        metrics: MarketFeedMetrics,
        timing: Timing,
        ping_interval_s: float,
        ping_timeout_s: float,
        connect_id: str,
        frames: FrameSink | None = None,
    ) -> None:
        self.ws = ws
        self.connect_id = connect_id
        self.opened = time.monotonic()
        self.last_tick_ns = 0
        # Arrival of the newest frame of any kind: everything the server sent before it
        # has arrived (one ordered stream), so a gap can only start after it.
        self.last_frame_ns = time.time_ns()
        self.last_lag_s: float | None = None
        self.malformed = 0
        self._decoder = decoder
        self._on_ticks = on_ticks
        self._metrics = metrics
        self._timing = timing
        self._ping_interval = ping_interval_s
        self._ping_timeout = ping_timeout_s
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)
        self._pending: list[Tick] = []
        self._hot = frames
        self._parsed: list[bytes | str | Decoded] = []
        self._arrivals: list[int] = []
        self._frames = 0
        self._malformed_unreported = 0
        self.closed_reason: str | None = None

    @classmethod
    async def open(
        cls,
        rest: KucoinRest,
        http: aiohttp.ClientSession,
        decoder: FrameDecoder,
        on_ticks: Callable[[list[Tick]], None],
        metrics: MarketFeedMetrics,
        timing: Timing,
        frames: FrameSink | None = None,
    ) -> KucoinConnection:
        """Token call, websocket upgrade, and the welcome; Temporary on any failure."""
        token = await rest.bullet_public()
        server = token.instance_servers[0]
        connect_id = uuid.uuid4().hex
        query = urlencode({"token": token.token, "connectId": connect_id})
        url = f"{server.endpoint}{'&' if '?' in server.endpoint else '?'}{query}"
        try:
            async with asyncio.timeout(timing.welcome_timeout_s):
                ws = await http.ws_connect(
                    url,
                    autoping=True,
                    heartbeat=None,
                    max_msg_size=8 << 20,
                    timeout=aiohttp.ClientWSTimeout(
                        ws_receive=None, ws_close=timing.close_timeout_s
                    ),
                    decode_text=False,
                )
                try:
                    await cls._await_welcome(ws, connect_id)
                except BaseException:
                    await ws.close()
                    raise
        except TimeoutError:
            raise Temporary(
                f"no welcome from {server.endpoint} in {timing.welcome_timeout_s}s"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Temporary(f"cannot connect to {server.endpoint}: {exc!r}") from exc
        interval = timing.ping_interval_s or server.ping_interval / 1000.0
        timeout = timing.ping_timeout_s or server.ping_timeout / 1000.0
        return cls(ws, decoder, on_ticks, metrics, timing, interval, timeout, connect_id, frames)

    @staticmethod
    async def _await_welcome(ws: RawWebSocket, connect_id: str) -> None:
        while True:
            msg = await ws.receive()
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raise Temporary(f"websocket closed before the welcome ({msg.type.name})")
            try:
                frame = _control.decode(msg.data)
            except msgspec.DecodeError:
                continue
            if frame.type == "welcome":
                return
            if frame.type == "error":
                raise Temporary(f"refused before the welcome: {frame.code} {frame.data}")

    @property
    def silence_limit_s(self) -> float:
        """How long the link may stay quiet: one ping interval, then the pong's timeout."""
        return self._ping_interval + self._ping_timeout

    def silent_seconds(self, now_ns: int) -> float:
        """Seconds since the last frame of any kind (tick or control) arrived."""
        return max(0.0, (now_ns - self.last_frame_ns) / 1e9)

    # ---- running ---------------------------------------------------------------------

    async def run(self, max_age_s: float | None = None) -> None:
        """Read and ping until the link dies (raises LinkDead) or `max_age_s` passes."""
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(self._read() if self._hot is None else self._read_hot())
            pinger = tg.create_task(self._ping())
            if max_age_s is not None:
                tg.create_task(self._expire(max_age_s, reader, pinger))

    async def _expire(self, after_s: float, *tasks: asyncio.Task[None]) -> None:
        await asyncio.sleep(after_s)
        self.closed_reason = "recycled"
        for task in tasks:
            task.cancel()

    async def _read(self) -> None:
        ws = self.ws
        decode = self._decoder.decode
        pending = self._pending
        loop = asyncio.get_running_loop()
        flush = self._flush
        now = time.time_ns
        text = aiohttp.WSMsgType.TEXT
        binary = aiohttp.WSMsgType.BINARY
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is text or kind is binary:
                self._frames += 1
                try:
                    tick = decode(msg.data, now())
                except MalformedFrame as exc:
                    self._malformed(exc)
                    continue
                if tick is not None:
                    if not pending:
                        loop.call_soon(flush)
                    pending.append(tick)
                else:
                    self._control(msg.data)
                continue
            self.closed_reason = f"{kind.name} {ws.close_code}"
            raise LinkDead(f"websocket closed by the server ({kind.name}, {ws.close_code})")

    async def _read_hot(self) -> None:
        ws = self.ws
        full = self._decoder.full
        parsed, arrivals = self._parsed, self._arrivals
        loop = asyncio.get_running_loop()
        flush = self._flush
        now = time.time_ns
        text = aiohttp.WSMsgType.TEXT
        binary = aiohttp.WSMsgType.BINARY
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is text or kind is binary:
                self._frames += 1
                raw = msg.data
                at = now()
                item: bytes | str | Decoded
                if (_MESSAGE if raw.__class__ is str else _MESSAGE_BYTES) in raw:
                    item = raw  # a message, read with its burst
                else:
                    try:
                        tick = full(raw, at)
                    except MalformedFrame as exc:
                        self._malformed(exc)
                        continue
                    if tick is None:
                        self._control(raw)
                        continue
                    item = Decoded(tick)
                if not parsed:
                    loop.call_soon(flush)
                parsed.append(item)
                arrivals.append(at)
                continue
            self.closed_reason = f"{kind.name} {ws.close_code}"
            raise LinkDead(f"websocket closed by the server ({kind.name}, {ws.close_code})")

    def _flush(self) -> None:
        if self._hot is not None:
            self._flush_hot(self._hot)
            return
        pending = self._pending
        m = self._metrics
        self._count_frames()
        if not pending:
            return
        # The reader keeps appending to the same list object: hand over a copy.
        batch = pending.copy()
        pending.clear()
        last = batch[-1]
        self._delivered(len(batch), last.received_ns, last.exchange_ns)
        try:
            self._on_ticks(batch)
        except Exception:
            m.error("on_ticks")
            log.exception("the tick consumer failed on a burst of %d ticks", len(batch))

    def _flush_hot(self, hot: FrameSink) -> None:
        parsed = self._parsed
        batch, arrivals = parsed.copy(), self._arrivals.copy()
        parsed.clear()
        self._arrivals.clear()
        m = self._metrics
        ticks = 0
        if batch:
            try:
                ticks = hot.on_raw(batch, arrivals, self._malformed, self._control)
            except Exception:
                m.error("on_ticks")
                log.exception("the tick consumer failed on a burst of %d frames", len(batch))
        self._count_frames()  # after the sink: it counts the malformed frames it met
        if ticks:
            self._delivered(ticks, hot.last_received_ns, hot.last_exchange_ns)

    def _count_frames(self) -> None:
        """Report the frames read (and the malformed among them) since the last burst."""
        m = self._metrics
        frames, self._frames = self._frames, 0
        m.frames.inc(frames)
        if self._malformed_unreported:
            m.malformed.inc(self._malformed_unreported)
            self._malformed_unreported = 0

    def _delivered(self, ticks: int, received_ns: int, exchange_ns: int) -> None:
        """Note a burst of `ticks` handed on, by its last tick's arrival and exchange time
        (0: the exchange gave none)."""
        m = self._metrics
        self.last_tick_ns = received_ns
        self.last_frame_ns = max(self.last_frame_ns, received_ns)
        if exchange_ns:
            self.last_lag_s = (received_ns - exchange_ns) / 1e9
            m.lag.set(self.last_lag_s)
        m.ticks.inc(ticks)
        m.bursts.inc()

    def _malformed(self, exc: MalformedFrame) -> None:
        self.malformed += 1
        self._malformed_unreported += 1
        if self.malformed <= 3 or self.malformed % 1000 == 0:
            log.warning("skipped malformed frame #%d: %s", self.malformed, exc)

    def _control(self, raw: bytes | str) -> None:
        self.last_frame_ns = time.time_ns()
        try:
            frame = _control.decode(raw)
        except msgspec.DecodeError:
            return
        kind = frame.type
        if kind in ("pong", "ack", "error"):
            ident = frame.ident
            waiter = self._waiting.pop(ident, None) if ident is not None else None
            if waiter is not None and not waiter.done():
                if kind == "error":
                    text = str(frame.data)
                    waiter.set_exception(SubscribeError(frame.code, text, ident or ""))
                else:
                    waiter.set_result(None)
            elif kind == "error":
                self._metrics.error(f"server_{frame.code}")
                log.warning("KuCoin error frame: %s %s", frame.code, frame.data)

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self._ping_interval)
            ident = str(time.time_ns())
            waiter = self._expect(ident)
            await self._send(_encode(PingRequest(id=ident)))
            try:
                async with asyncio.timeout(self._ping_timeout):
                    await waiter
            except TimeoutError:
                self._waiting.pop(ident, None)
                self.closed_reason = "pong timeout"
                raise LinkDead(f"no pong within {self._ping_timeout}s") from None

    # ---- requests --------------------------------------------------------------------

    def _expect(self, ident: str) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = waiter
        return waiter

    async def _send(self, payload: bytes) -> None:
        try:
            await self.ws.send_str(payload.decode())
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise LinkDead(f"send failed: {exc!r}") from exc

    async def request(self, kind: str, topic: str) -> None:
        """subscribe/unsubscribe `topic` and wait for the ack; SubscribeError on an error
        frame, LinkDead when no answer comes in time."""
        ident = str(next(self._ids))
        waiter = self._expect(ident)
        await self._send(_encode(SubscribeRequest(id=ident, type=kind, topic=topic)))
        try:
            async with asyncio.timeout(self._timing.ack_timeout_s):
                await waiter
        except TimeoutError:
            self._waiting.pop(ident, None)
            raise LinkDead(
                f"no ack for {kind} {topic[:60]} in {self._timing.ack_timeout_s}s"
            ) from None

    async def close(self) -> None:
        self._flush()
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(LinkDead("connection closed"))
                waiter.exception()  # mark retrieved: nobody may be awaiting it any more
        self._waiting.clear()
        with contextlib.suppress(Exception):
            await self.ws.close()
