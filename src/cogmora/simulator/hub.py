"""Who is connected to a simulated host and which single-symbol topics each one hears.

Subscriptions are indexed by the single-symbol topic (`/market/ticker:BTC-USDT`), the form
KuCoin uses on data messages, so publishing a tick is one dict lookup and a send per
subscriber whatever comma-joined form the client subscribed with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from cogmora.domain.enums import Market

log = logging.getLogger(__name__)


_CANDLE_PREFIXES = ("/market/candles:", "/contractMarket/limitCandle:")


def symbol_of(topic: str) -> str:
    """The symbol a single-symbol topic is about; "*" for a market-wide topic."""
    arg = topic.partition(":")[2]
    if topic.startswith(_CANDLE_PREFIXES):
        return arg.rpartition("_")[0]
    if "-" in arg or topic.startswith(("/contract", "/contractMarket")):
        return arg
    return "*"  # /market/ticker:all, /market/snapshot:USDS


@dataclass(eq=False, slots=True)
class Session:
    """One websocket connection to a simulated host."""

    ws: web.WebSocketResponse
    market: Market
    connect_id: str
    topics: set[str] = field(default_factory=set)
    dead: bool = False

    async def send(self, frame: str) -> None:
        if self.dead:
            return
        try:
            await self.ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            # The peer went away between our lookup and the send; the handler cleans up.
            self.dead = True


class Hub:
    def __init__(self, market: Market) -> None:
        self.market = market
        self.sessions: set[Session] = set()
        self._by_topic: defaultdict[str, set[Session]] = defaultdict(set)
        # Subscribed topics per symbol ("*" for market-wide ones like /market/ticker:all),
        # so the walk can ask "does anybody listen to this symbol" in one lookup.
        self._per_symbol: defaultdict[str, int] = defaultdict(int)
        self._changed = asyncio.Event()
        # Frozen: the host's websockets go silent (no data, no pong, no ack) while the
        # market goes on; trades still reach the candles.
        self.frozen = False

    def add(self, session: Session) -> None:
        self.sessions.add(session)

    def remove(self, session: Session) -> None:
        self.sessions.discard(session)
        for topic in session.topics:
            self._drop(session, topic)
        session.topics.clear()
        self._notify()

    def subscribe(self, session: Session, topics: list[str]) -> None:
        for topic in topics:
            session.topics.add(topic)
            if topic not in self._by_topic:
                self._per_symbol[symbol_of(topic)] += 1
            self._by_topic[topic].add(session)
        self._notify()

    def unsubscribe(self, session: Session, topics: list[str]) -> None:
        for topic in topics:
            session.topics.discard(topic)
            self._drop(session, topic)
        self._notify()

    def _drop(self, session: Session, topic: str) -> None:
        subscribers = self._by_topic.get(topic)
        if subscribers is None:
            return
        subscribers.discard(session)
        if not subscribers:
            del self._by_topic[topic]
            key = symbol_of(topic)
            self._per_symbol[key] -= 1
            if self._per_symbol[key] <= 0:
                del self._per_symbol[key]

    def watches(self, symbol: str) -> bool:
        """Whether any topic about `symbol` (or a market-wide topic) has a subscriber."""
        return symbol in self._per_symbol or "*" in self._per_symbol

    def subscribers(self, topic: str) -> set[Session]:
        return self._by_topic.get(topic) or set()

    def has_subscribers(self, topic: str) -> bool:
        return topic in self._by_topic

    def topics(self) -> set[str]:
        return set(self._by_topic)

    async def publish(self, topic: str, frame: str) -> int:
        """Send `frame` to every subscriber of `topic`; returns how many it went to."""
        subscribers = self._by_topic.get(topic)
        if not subscribers or self.frozen:
            return 0
        for session in tuple(subscribers):
            await session.send(frame)
        return len(subscribers)

    async def broadcast(self, frame: str) -> None:
        if self.frozen:
            return
        for session in tuple(self.sessions):
            await session.send(frame)

    async def close_all(self, code: int = 1001, message: bytes = b"server closing") -> int:
        sessions = tuple(self.sessions)
        for session in sessions:
            session.dead = True
            with contextlib.suppress(Exception):
                await session.ws.close(code=code, message=message)
        return len(sessions)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds, checking it after each subscription change
        (bound it with `asyncio.timeout`)."""
        while not predicate():
            await self._changed.wait()
