"""Choosing the store backend from COGMORA_STORE."""

from __future__ import annotations

from pathlib import Path
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


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


async def preflight(url: str, connect_timeout_s: int = 5) -> None:
    """One connection attempt to a PostgreSQL URL before the pool is opened: a wrong host,
    port, database or password is one clear line naming COGMORA_STORE at once, not the
    pool's retries logged for ten seconds and then a vaguer error."""
    if urlparse(url).scheme not in ("postgresql", "postgres"):
        return
    import psycopg

    from cogmora.store.postgres.store import parse_url

    conninfo, _ = parse_url(url)
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, connect_timeout=connect_timeout_s)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(
            "COGMORA_STORE", f"cannot connect to PostgreSQL at {redacted(url)}: {reason}"
        ) from None
    await conn.close()


async def start_store(url: str, retention: Retention = DEFAULT_RETENTION) -> Store:
    """The store of `url`, started; PostgreSQL is checked with one connection first."""
    await preflight(url)
    store = open_store(url, retention)
    await store.start()
    return store


def describe(url: str, given: bool) -> str:
    """Which store a command used, for stderr: a default SQLite file in the current
    directory is easy to create by mistake and then look for in vain."""
    shown = redacted(url)
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
        shown = f"sqlite:///{Path(path).resolve()}"
    if given:
        return f"store: {shown}"
    return f"store: {shown} (COGMORA_STORE is not set: the default; set it or pass --store)"
