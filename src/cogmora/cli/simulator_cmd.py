"""`cogmora simulator`: the KuCoin-protocol simulator as a standalone process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Annotated

import typer

from cogmora.domain.enums import Market
from cogmora.domain.watchlist import market_of
from cogmora.simulator import DEFAULT_FUTURES, DEFAULT_SPOT, KucoinSimulator, SimulatorConfig

_UNKNOWN_START_PRICE = "100"


def universe(symbols: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """Spot and futures starting prices: the defaults, or only the listed symbols (a symbol
    the defaults do not know starts at 100)."""
    if not symbols:
        return dict(DEFAULT_SPOT), dict(DEFAULT_FUTURES)
    spot: dict[str, str] = {}
    futures: dict[str, str] = {}
    for raw in symbols.split(","):
        sym = raw.strip().upper()
        if not sym:
            continue
        if market_of(sym) is Market.SPOT:
            spot[sym] = DEFAULT_SPOT.get(sym, _UNKNOWN_START_PRICE)
        else:
            futures[sym] = DEFAULT_FUTURES.get(sym, _UNKNOWN_START_PRICE)
    return spot, futures


def simulator(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    spot_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="Port of the spot host (REST, and the websocket at /)."
        ),
    ] = 8181,
    futures_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port of the futures host.")
    ] = 8182,
    seed: Annotated[int, typer.Option(help="Seed of the random walk: same seed, same prices.")] = 0,
    tick_rate: Annotated[
        float,
        typer.Option(help="Random-walk ticks per second per subscribed symbol (0: scripted only)."),
    ] = 10.0,
    symbols: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated symbols to serve, e.g. BTC-USDT,ETH-USDT,XBTUSDTM "
            "(default: ~20 spot pairs and 10 USDT-margined contracts)."
        ),
    ] = None,
    record_file: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Replay this recorded-ticks file (from `cogmora record`) in a loop "
            "instead of the random walk.",
        ),
    ] = None,
) -> None:
    """Run a KuCoin-protocol exchange on loopback until Ctrl-C.

    A KuCoin sandbox: ccxt (kucoin, kucoinfutures, ccxt.pro) and KuCoin's own SDK work
    against it with only their URLs changed (docs/SIMULATOR.md). It speaks KuCoin's public
    REST API (symbols, currencies, tickers, stats, candles, trade history, level-2 books,
    status; futures contracts, books, funding rate, mark price) and its classic websocket
    protocol (tickers, trades, snapshots, level-1/level-2 books, candles, mark and funding),
    one host for spot and one for futures. Every symbol trades, watched or not. Point
    Cogmora at it with

        COGMORA_KUCOIN_SPOT_URL=http://127.0.0.1:8181
        COGMORA_KUCOIN_FUTURES_URL=http://127.0.0.1:8182

    Script prices and faults over HTTP on either host: GET /control/state, POST
    /control/price {"symbol": "BTC-USDT", "price": "60000"}, /control/burst, /control/drop,
    /control/stall {"on": true}, /control/malformed, /control/tick-rate {"rate": 5},
    /control/expire-tokens, /control/rate-limit {"count": 3}, /control/firehose {"n": 100000}.
    """
    spot, futures = universe(symbols)
    config = SimulatorConfig(
        host=host,
        spot_port=spot_port,
        futures_port=futures_port,
        seed=seed,
        tick_rate=tick_rate,
        spot=spot,
        futures=futures,
        record_file=record_file,
        walk_unwatched=True,  # a bot that only polls REST sees a moving market
    )

    async def serve() -> None:
        async with KucoinSimulator(config) as sim:
            typer.echo(
                json.dumps(
                    {
                        "spot_url": sim.spot_url,
                        "futures_url": sim.futures_url,
                        "spot_symbols": len(sim.symbols(Market.SPOT)),
                        "futures_symbols": len(sim.symbols(Market.FUTURES)),
                    }
                )
            )
            typer.echo(f"COGMORA_KUCOIN_SPOT_URL={sim.spot_url}")
            typer.echo(f"COGMORA_KUCOIN_FUTURES_URL={sim.futures_url}")
            typer.echo("KuCoin simulator running; Ctrl-C to stop.")
            await asyncio.Event().wait()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
    except OSError as exc:  # most often: the port is taken
        typer.echo(
            f"cannot listen on {host} (spot port {spot_port}, futures port {futures_port}): "
            f"{exc.strerror or exc}; choose others with --spot-port/--futures-port",
            err=True,
        )
        raise typer.Exit(2) from None
