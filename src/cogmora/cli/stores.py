"""Choosing the store backend from COGMORA_STORE."""

from __future__ import annotations

from urllib.parse import urlparse

from cogmora.errors import ConfigError
from cogmora.store.port import Store
from cogmora.store.sqlite import SqliteStore


def open_store(url: str) -> Store:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
        if not path:
            raise ConfigError("COGMORA_STORE", "sqlite:/// needs a file path")
        return SqliteStore(path)
    if parsed.scheme in ("postgresql", "postgres"):
        from cogmora.store.postgres import PostgresStore

        return PostgresStore(url)
    if parsed.scheme == "firestore":
        from cogmora.store.firestore import FirestoreStore

        if not parsed.netloc:
            raise ConfigError(
                "COGMORA_STORE", "firestore:// needs a project, e.g. firestore://my-project"
            )
        # firestore://PROJECT is the (default) database; firestore://PROJECT/DATABASE a named one.
        database = parsed.path.strip("/") or None
        if database is not None and "/" in database:
            raise ConfigError(
                "COGMORA_STORE",
                "firestore:// takes a project and one database: firestore://PROJECT/DATABASE",
            )
        return FirestoreStore(parsed.netloc, database=database)
    raise ConfigError("COGMORA_STORE", f"unsupported store URL {url!r}")
