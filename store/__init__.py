"""Persistence: sqlmodel tables, engine, migrations and the raw-message archive."""
