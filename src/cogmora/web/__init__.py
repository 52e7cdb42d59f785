"""The live dashboard: plain HTML, small ES modules and one CSS file, served at `/`.

Why not NiceGUI or a built front end: this page needs no extra runtime, no build step and
no CDN; it ships as package data with `pip install`. It is a client of the same public API
and `/v1/events` stream any user has (bearer token, 422 `detail`/`field`), so it cannot see
or do anything a user's script could not, and a server change that breaks it breaks the
API's contract too. It is tested in a real browser (tests/browser, headless Chromium).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Serve the dashboard at `/`; mounted last, so every API route matches first."""
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="dashboard")
