"""KuCoin wire messages as frozen msgspec structs (websocket frames and REST payloads).

Field names are KuCoin's (camelCase via `rename="camel"`); prices decode straight into
`Decimal` (msgspec reads JSON strings and JSON numbers alike, digit for digit), so no
float ever holds a price. Unknown fields are ignored: KuCoin adds keys over time.

The conversion of data frames into domain ticks happens in one place, `decode.py`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import msgspec

# ---- websocket ------------------------------------------------------------------------


class HotData(msgspec.Struct, gc=False):
    """Only the fields a tick needs, from any of the topics we subscribe to."""

    price: Decimal | None = None  # spot ticker, futures execution / ticker
    time: int = 0  # spot ticker, ms
    Time: int = 0  # spot ticker as the docs-new example spells it
    ts: int = 0  # futures execution / ticker, ns
    markPrice: Decimal | None = None  # futures instrument (a JSON number)
    timestamp: int = 0  # futures instrument, ms


class HotFrame(msgspec.Struct, gc=False):
    """The envelope of every frame; `data` is a string on error frames."""

    type: str = ""
    topic: str = ""
    subject: str = ""
    data: HotData | str | None = None


class LeanData(msgspec.Struct, gc=False):
    """A spot ticker's price as its text: building a `Decimal` costs more than the parse of
    the rest of the frame, so it is built only for the frames that need one."""

    price: str = ""
    time: int = 0
    Time: int = 0


class LeanFrame(msgspec.Struct, gc=False):
    """A spot ticker message with only what a tick needs; anything else fails to decode
    into it (another type, no data object, a JSON number for the price, an error frame's
    string data) and takes `HotFrame`. So a `LeanFrame` is always a message with data, and
    a burst's frames can be decoded in one comprehension with no check after each."""

    type: Literal["message"]
    data: LeanData
    topic: str = ""
    subject: str = ""


class ControlFrame(msgspec.Struct, frozen=True):
    """welcome / pong / ack / error / notice: matched to requests by `id`."""

    type: str = ""
    id: str | int | None = None
    code: int | str | None = None
    data: Any = None

    @property
    def ident(self) -> str | None:
        return None if self.id is None else str(self.id)


class SubscribeRequest(msgspec.Struct, frozen=True, rename="camel"):
    id: str
    type: str
    topic: str
    private_channel: bool = False
    response: bool = True


class PingRequest(msgspec.Struct, frozen=True):
    id: str
    type: str = "ping"


# ---- REST -----------------------------------------------------------------------------


class RestEnvelope(msgspec.Struct, frozen=True):
    """`{"code":"200000","data":...}` or `{"code":"400100","msg":...}`; data decoded later."""

    code: str | int = ""
    data: msgspec.Raw = msgspec.Raw(b"null")  # decoded by the caller, into the endpoint's type
    msg: str | None = None

    @property
    def has_data(self) -> bool:
        return len(self.data) > 0 and bytes(self.data) != b"null"


class InstanceServer(msgspec.Struct, frozen=True, rename="camel"):
    endpoint: str
    ping_interval: int = 18_000  # ms
    ping_timeout: int = 10_000  # ms
    encrypt: bool = True
    protocol: str = "websocket"


class BulletToken(msgspec.Struct, frozen=True, rename="camel"):
    token: str
    instance_servers: list[InstanceServer]


class SpotStats(msgspec.Struct, frozen=True, rename="camel"):
    """24 h stats; every field but time/symbol is None for a symbol KuCoin does not know."""

    time: int
    symbol: str
    buy: Decimal | None = None  # best bid
    sell: Decimal | None = None  # best ask
    change_rate: Decimal | None = None
    change_price: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    vol: Decimal | None = None
    vol_value: Decimal | None = None
    last: Decimal | None = None
    average_price: Decimal | None = None

    @property
    def known(self) -> bool:
        return self.last is not None


class SpotTickerItem(msgspec.Struct, frozen=True, rename="camel"):
    symbol: str
    symbol_name: str | None = None
    buy: Decimal | None = None
    sell: Decimal | None = None
    change_rate: Decimal | None = None
    change_price: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    vol: Decimal | None = None
    vol_value: Decimal | None = None
    last: Decimal | None = None
    average_price: Decimal | None = None


class AllTickers(msgspec.Struct, frozen=True):
    time: int
    ticker: list[SpotTickerItem]


class Level1(msgspec.Struct, frozen=True, rename="camel"):
    time: int  # ms
    sequence: str
    price: Decimal
    size: Decimal | None = None
    best_bid: Decimal | None = None
    best_bid_size: Decimal | None = None
    best_ask: Decimal | None = None
    best_ask_size: Decimal | None = None


class FuturesTicker(msgspec.Struct, frozen=True, rename="camel"):
    symbol: str
    sequence: int
    price: Decimal
    ts: int  # ns
    side: str | None = None
    size: int | None = None
    trade_id: str | None = None
    best_bid_price: Decimal | None = None
    best_bid_size: int | None = None
    best_ask_price: Decimal | None = None
    best_ask_size: int | None = None


class SpotSymbol(msgspec.Struct, frozen=True, rename="camel"):
    symbol: str
    base_currency: str
    quote_currency: str
    name: str | None = None
    market: str | None = None
    base_min_size: Decimal | None = None
    base_increment: Decimal | None = None
    quote_increment: Decimal | None = None
    price_increment: Decimal | None = None
    min_funds: Decimal | None = None
    enable_trading: bool = True


class Contract(msgspec.Struct, frozen=True, rename="camel"):
    symbol: str
    base_currency: str
    quote_currency: str
    settle_currency: str | None = None
    root_symbol: str | None = None
    type: str | None = None
    status: str | None = None
    multiplier: Decimal | None = None  # base units per lot
    tick_size: Decimal | None = None
    lot_size: Decimal | None = None
    max_leverage: int | None = None
    maintain_margin: Decimal | None = None  # the maintenance margin *rate*
    initial_margin: Decimal | None = None
    taker_fee_rate: Decimal | None = None
    maker_fee_rate: Decimal | None = None
    mark_price: Decimal | None = None
    index_price: Decimal | None = None
    last_trade_price: Decimal | None = None
    is_inverse: bool = False
    # 24h statistics, for the watchlist (the same call serves the catalog and the scraper)
    price_chg_pct: Decimal | None = None
    high_price: Decimal | None = None
    low_price: Decimal | None = None
    volume_of24h: Decimal | None = None
