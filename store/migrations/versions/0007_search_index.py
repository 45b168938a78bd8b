"""Join the area branches; index document text and names for substring search

Revision ID: 0007
Revises: 0004, 0005, 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = ("0004", "0005", "0006")
branch_labels = None
depends_on = None

# SQLite: an external-content FTS5 table with the trigram tokenizer, kept in step by triggers; a
# LIKE '%…%' of three characters or more on it is answered from the index (SQLite >= 3.34).
_SQLITE_UP = [
    "CREATE VIRTUAL TABLE document_fts USING fts5(text, filename, content='document', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER document_fts_ai AFTER INSERT ON document BEGIN "
    "INSERT INTO document_fts(rowid, text, filename) VALUES (new.id, new.text, new.filename); END",
    "CREATE TRIGGER document_fts_ad AFTER DELETE ON document BEGIN "
    "INSERT INTO document_fts(document_fts, rowid, text, filename) VALUES ('delete', old.id, old.text, old.filename); "
    "END",
    "CREATE TRIGGER document_fts_au AFTER UPDATE OF text, filename ON document BEGIN "
    "INSERT INTO document_fts(document_fts, rowid, text, filename) VALUES ('delete', old.id, old.text, old.filename); "
    "INSERT INTO document_fts(rowid, text, filename) VALUES (new.id, new.text, new.filename); END",
    "INSERT INTO document_fts(document_fts) VALUES ('rebuild')",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS document_fts_au",
    "DROP TRIGGER IF EXISTS document_fts_ad",
    "DROP TRIGGER IF EXISTS document_fts_ai",
    "DROP TABLE IF EXISTS document_fts",
]
# PostgreSQL: trigram GIN indexes, used by ILIKE '%…%' directly (pg_trgm is a trusted extension).
_PG_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_document_text_trgm ON document USING gin (text gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_document_filename_trgm ON document USING gin (filename gin_trgm_ops)",
]
_PG_DOWN = ["DROP INDEX IF EXISTS ix_document_filename_trgm", "DROP INDEX IF EXISTS ix_document_text_trgm"]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for sql in _SQLITE_UP if dialect == "sqlite" else _PG_UP if dialect == "postgresql" else []:
        op.execute(sql)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for sql in _SQLITE_DOWN if dialect == "sqlite" else _PG_DOWN if dialect == "postgresql" else []:
        op.execute(sql)
