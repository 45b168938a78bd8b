"""Declarative form schemas (one TOML file per template); loaded by parsers.schema."""

from pathlib import Path

FORMS_DIR = Path(__file__).parent
