"""Running the API server inside the same event loop as the other components."""

from __future__ import annotations

import uvicorn

from cogmora.api.app import create_app
from cogmora.cli.compose import System


def api_server(system: System, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(system.api_deps()),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    return server
