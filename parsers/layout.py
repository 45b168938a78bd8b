"""Neutral document layout (paragraphs and tables in reading order) that every reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field

# Canonical tick marks: readers translate whatever the file holds (☑ ■ √ ✓ ☒, Wingdings F052/F0FE, ...)
# into TICKED, and empty boxes (□ ☐, Wingdings F06F/F0A8, ...) into UNTICKED, so the form extractor only
# ever sees these two.
TICKED = "☑"
UNTICKED = "☐"


@dataclass
class Table:
    """A table as the eye reads it.

    `rows` lists each row's cells left to right. A cell spanning several grid columns appears once; a
    cell covered by a vertical merge (the continuation rows of a rowspan) is omitted from later rows.
    Line breaks inside a cell are kept as "\\n". A table nested in a cell is lifted out into its own
    Table in `nested`, and the cell keeps its own text only.
    """

    rows: list[list[str]]
    nested: list[Table] = field(default_factory=list)

    def all_tables(self) -> list[Table]:
        out = [self]
        for t in self.nested:
            out.extend(t.all_tables())
        return out


@dataclass
class Layout:
    """Paragraphs (str) and tables, in reading order, as read from a .docx, a PDF or an OCR pass."""

    blocks: list[str | Table] = field(default_factory=list)
    # Which reader produced it ("docx", "pdf_text", "ocr"): extractors may relax matching for OCR.
    source: str = "docx"

    @property
    def paragraphs(self) -> list[str]:
        return [b for b in self.blocks if isinstance(b, str)]

    @property
    def tables(self) -> list[Table]:
        out: list[Table] = []
        for b in self.blocks:
            if isinstance(b, Table):
                out.extend(b.all_tables())
        return out

    def text(self) -> str:
        """Plain text: paragraphs and table cells, one per line, in reading order."""
        lines: list[str] = []
        for b in self.blocks:
            if isinstance(b, str):
                lines.append(b)
            else:
                for t in b.all_tables():
                    for row in t.rows:
                        lines.append("\t".join(row))
        return "\n".join(lines)
