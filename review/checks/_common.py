"""Helpers the check rules share: times for staff, the form of record, field labels, blank values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from parsers.schema import FieldSpec, FormSchema, load_schema
from parsers.types import Format, Kind
from review.model import AppView, CheckContext, DocView

# Documents whose fields come from OCR: a blank or odd value there may be a reading error.
OCR_FORMATS = (Format.pdf_scan, Format.image)


def when(ctx: CheckContext, dt: datetime | None) -> str:
    """Local time for staff; milliseconds shown when present (16:59:59.999 must not read as 17:00)."""
    if dt is None:
        return "未知"
    local = dt.astimezone(ctx.tz)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if local.microsecond:
        text += f".{local.microsecond // 1000:03d}"
    return text


def is_late(ctx: CheckContext, dt: datetime | None) -> bool:
    """At or after the cutoff ("17:00 前" is strictly before 17:00:00); unknown times are never late."""
    return dt is not None and dt >= ctx.cutoff


def form_of_record(app: AppView, ctx: CheckContext) -> DocView | None:
    """The document whose fields are of record: the Word of record, else the PDF of record (as AppView.fields)."""
    for item in ("word", "pdf"):
        d = app.of_record(item, ctx.cutoff)
        if d is not None and d.fields:
            return d
    return None


def ocr_note(doc: DocView | None) -> str:
    """A caution appended to details about values read by OCR."""
    if doc is not None and doc.format in OCR_FORMATS:
        return f"（取自扫描件 {doc.filename} 的识别结果，可能有识别误差，请核对原件）"
    return ""


def schema_of(form_type: str) -> FormSchema | None:
    try:
        return load_schema(Kind(f"form_{form_type}"))
    except (KeyError, ValueError):
        return None


def field_label(spec: FieldSpec) -> str:
    """The label staff recognise; a label repeated on several rows (电话, 职务) gets its row's person."""
    if spec.row:
        # As printed in this template: 附件3 says 申报人 where the others say 联系人.
        person = spec.row[0].removesuffix("姓名")
        if not spec.label.startswith(person):
            return person + spec.label
    return spec.label


def label_for(form_type: str, key: str) -> str:
    schema = schema_of(form_type)
    if schema is None:
        return key
    try:
        return field_label(schema.field(key))
    except KeyError:
        return schema.label_of(key)


def is_blank(value: Any) -> bool:
    """A blank cell: absent, empty or whitespace text, an empty list or object. 0 is a value."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict | set):
        return all(is_blank(v) for v in (value.values() if isinstance(value, dict) else value))
    return False


def text_of(value: Any) -> str | None:
    """A field value as text (None when blank)."""
    if is_blank(value):
        return None
    return value.strip() if isinstance(value, str) else str(value)


def short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
