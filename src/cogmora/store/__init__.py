"""Persistence: one document-transaction port, three backends (SQLite, PostgreSQL, Firestore)."""
