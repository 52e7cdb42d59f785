"""The shared-server backend: PostgreSQL, serializable transactions, several replicas."""

from cogmora.store.postgres.store import PostgresStore, parse_url

__all__ = ["PostgresStore", "parse_url"]
