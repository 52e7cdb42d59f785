"""Choosing the store backend from COGMORA_STORE."""

from __future__ import annotations

from urllib.parse import urlparse

from cogmora.errors import ConfigError
from cogmora.settings import Settings
from cogmora.store.port import Store
from cogmora.store.retention import DEFAULT_RETENTION, Retention
from cogmora.store.sqlite import SqliteStore


def feed_retention(settings: Settings) -> Retention:
    """The change-feed retention of COGMORA_FEED_RETENTION_ROWS / _SECONDS."""
    return Retention(keep=settings.feed_retention_rows, min_age=settings.feed_retention_seconds)


def open_store(url: str, retention: Retention = DEFAULT_RETENTION) -> Store:
    """The backend of `url`; `retention` bounds its change feed (the long-running roles
    pass the configured one; a one-shot command never lives long enough to prune)."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
        if not path:
            raise ConfigError("COGMORA_STORE", "sqlite:/// needs a file path")
        return SqliteStore(path, retention=retention)
    if parsed.scheme in ("postgresql", "postgres"):
        from cogmora.store.postgres import PostgresStore

        return PostgresStore(url, retention=retention)
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
        return FirestoreStore(parsed.netloc, database=database, keep_changes=retention.keep)
    raise ConfigError("COGMORA_STORE", f"unsupported store URL {url!r}")
