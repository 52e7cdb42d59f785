"""HTTP servers inside the same event loop as the other components: the API, and for
`worker` and `jobs` on Cloud Run a probe server (`/healthz`, `/livez`, `/metrics` on $PORT)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

from cogmora import __version__
from cogmora.api.app import create_app
from cogmora.api.routes import ops
from cogmora.cli.compose import System
from cogmora.errors import Fatal

# Uvicorn's grace for open requests (event streams never end by themselves) once told to
# stop; the whole drain must fit in Cloud Run's 10 s between SIGTERM and SIGKILL.
GRACEFUL_SECONDS = 3


class EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signals to the process: `cogmora run` stops every component on
    SIGTERM together, instead of uvicorn taking the signal for the API alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    return EmbeddedServer(config)


def api_server(system: System, host: str, port: int) -> uvicorn.Server:
    return _server(create_app(system.api_deps()), host, port)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a busy port stops start-up with one clear line
    before anything else starts (and before anything logs "started"), instead of uvicorn
    logging the error from inside a task after the other components are up."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Fatal(f"cannot listen on {host}:{port}: {exc.strerror} (COGMORA_API_HOST)") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise Fatal(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(choose another with --port or COGMORA_API_PORT)"
        ) from None
    sock.listen(2048)  # from here connections queue, whatever else is still starting
    sock.set_inheritable(True)
    return sock


def probe_app(system: System) -> FastAPI:
    """Only the operator routes, the very same as the API's (api/routes/ops.py)."""
    app = FastAPI(title="Cogmora probes", version=__version__, docs_url=None, redoc_url=None)
    app.state.deps = system.api_deps()
    app.include_router(ops.router)
    return app


def probe_server(system: System, host: str, port: int) -> uvicorn.Server:
    return _server(probe_app(system), host, port)
