"""The embedded default backend: one SQLite file in WAL mode, one writer thread."""

from cogmora.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
