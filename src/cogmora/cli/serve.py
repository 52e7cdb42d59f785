"""Running the API server inside the same event loop as the other components."""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn

from cogmora.api.app import create_app
from cogmora.cli.compose import System


class EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signals to the process: `cogmora run` stops every component on
    SIGTERM together, instead of uvicorn taking the signal for the API alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def api_server(system: System, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(system.api_deps()),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    return EmbeddedServer(config)
