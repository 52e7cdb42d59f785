"""A user's watchlist: which symbols they watch, in their order, with the scraper's stats.

Each watched symbol is one document (`users/{uid}/watchlist/{symbol}`) so the scraper can
refresh all users' entries with one collection-group query; the user's order is kept in
an `order` field. A newly added symbol has no stats until the next refresh and says so
("no market data yet"); the catalog is not consulted here, because a symbol KuCoin does
not know is reported on its entry by the scraper, not refused.
"""

from __future__ import annotations

from datetime import datetime

from cogmora.domain.models import Doc
from cogmora.domain.paths import user_path, watch_path
from cogmora.domain.watchlist import NO_DATA, WatchEntry, market_of, parse_symbols
from cogmora.errors import NotFound
from cogmora.services.clock import Clock
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx


def _entry_doc(doc: Doc) -> Doc:
    return WatchEntry.from_doc(doc).to_doc()


def _ordered(rows: list[tuple[str, Doc]]) -> list[Doc]:
    docs = [doc for _, doc in rows]
    docs.sort(key=lambda d: (d.get("order") is None, d.get("order") or 0, d["symbol"]))
    return [_entry_doc(d) for d in docs]


def watchlist_answer(entries: list[Doc]) -> Doc:
    """The API's form: the symbols in the user's order, and each one's entry."""
    return {"symbols": [e["symbol"] for e in entries], "entries": entries}


class Watchlists:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def get(self, uid: str) -> list[Doc]:
        query = q.Query("watchlist", parent=user_path(uid))
        return _ordered(await self._store.read(lambda tx: tx.query(query)))

    async def put(self, uid: str, symbols: object) -> list[Doc]:
        """Replace the list; kept symbols keep their stats, new ones wait for the scraper."""
        wanted = parse_symbols(symbols)
        now = self._clock.now()
        query = q.Query("watchlist", parent=user_path(uid))

        def body(tx: Tx) -> list[Doc]:
            if tx.get(user_path(uid)) is None:
                raise NotFound(f"user {uid} not found")
            existing = {doc["symbol"]: doc for _, doc in tx.query(query)}
            out: list[Doc] = []
            for symbol in existing:
                if symbol not in wanted:
                    tx.delete(watch_path(uid, symbol))
            for i, symbol in enumerate(wanted):
                old = existing.get(symbol)
                doc = old if old is not None else _new_entry(symbol, now)
                doc = {**doc, "order": i}
                if doc != old:
                    tx.set(watch_path(uid, symbol), doc)
                out.append(_entry_doc(doc))
            return out

        return await self._store.transact(body)


def _new_entry(symbol: str, now: datetime) -> Doc:
    return WatchEntry(symbol, market_of(symbol), now, error=NO_DATA).to_doc()
