"""Form schemas: load the declarative per-template TOML files of parsers/forms/ into typed objects."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from parsers.types import Kind

FieldType = Literal[
    "text", "int", "number_wan", "number", "date", "phone", "credit_code",
    "single_choice", "multi_choice", "list", "section", "object",
]
Where = Literal["cover", "table", "section"]

FIELD_TYPES: frozenset[str] = frozenset(FieldType.__args__)  # type: ignore[attr-defined]
WHERES: frozenset[str] = frozenset(Where.__args__)  # type: ignore[attr-defined]

# The shipped schemas; a deployment may point INTAKE_FORMS_DIR at its own copy for the next call.
DEFAULT_FORMS_DIR = Path(__file__).parent / "forms"


class SchemaError(ValueError):
    """A schema file that does not follow the format (file and problem in the message)."""


@dataclass(frozen=True)
class FieldSpec:
    """One SPEC section 3 field of a template, and where and how to read it.

    `label` is the Chinese label as printed in the template (what an applicant recognises);
    `variants` are other printings of it (附件3 says 申报人 where the others say 联系人, the cover says
    案例名称 where the table says 场景名称). `where` lists places to look, in order: the first that
    yields a value wins. `row` scopes a label repeated on several rows (职务, 电话) to the row that
    also holds this label. `hints` are the template's instruction texts in the value cell (removed
    when an applicant leaves them in). `choices` are options exactly as printed, `其他` last.
    """

    key: str
    label: str
    type: FieldType = "text"
    required: bool = False
    where: tuple[Where, ...] = ("table",)
    variants: tuple[str, ...] = ()
    row: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    multiline: bool = False
    unit: str | None = None
    # A section ends at the next heading of another section or at one of FormSchema.section_end.

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label, *self.variants)


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a summary (附件5) table."""

    key: str
    labels: tuple[str, ...]
    type: FieldType = "text"
    multiline: bool = False


@dataclass(frozen=True)
class TableSpec:
    """One of the 附件5 tables: which `section` its rows belong to, its title and columns."""

    section: str
    titles: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    required_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class FormSchema:
    """A template: how to recognise it and the fields to read from it."""

    kind: Kind
    name: str
    titles: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    distinctive_labels: tuple[str, ...] = ()
    attachment_no: int | None = None
    filename_hints: tuple[str, ...] = ()
    # Headings where the cover page ends and where the narrative part ends.
    cover_end: tuple[str, ...] = ()
    section_end: tuple[str, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    source: str = ""

    def field(self, key: str) -> FieldSpec:
        for f in self.fields:
            if f.key == key:
                return f
        raise KeyError(key)

    @property
    def required_keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields if f.required)

    def label_of(self, key: str) -> str:
        """The Chinese label to name a field in a message to an applicant."""
        try:
            return self.field(key).label
        except KeyError:
            return key


def _tuple(value: Any, what: str, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SchemaError(f"{path}: {what} must be a string or a list of strings")


_FIELD_KEYS = {"key", "label", "type", "required", "where", "variants", "row", "hints", "choices",
               "multiline", "unit"}


def _field(raw: dict[str, Any], path: str) -> FieldSpec:
    unknown = set(raw) - _FIELD_KEYS
    if unknown:
        raise SchemaError(f"{path}: field {raw.get('key')!r} has unknown settings {sorted(unknown)}")
    for need in ("key", "label"):
        if not isinstance(raw.get(need), str) or not raw[need]:
            raise SchemaError(f"{path}: every field needs a non-empty {need!r}")
    ftype = raw.get("type", "text")
    if ftype not in FIELD_TYPES:
        raise SchemaError(f"{path}: field {raw['key']!r} has unknown type {ftype!r}")
    where = _tuple(raw.get("where", "section" if ftype == "section" else "table"), "where", path)
    bad = [w for w in where if w not in WHERES]
    if bad:
        raise SchemaError(f"{path}: field {raw['key']!r} has unknown where {bad}")
    choices = _tuple(raw.get("choices"), "choices", path)
    if ftype in ("single_choice", "multi_choice", "object") and not choices:
        raise SchemaError(f"{path}: field {raw['key']!r} of type {ftype} needs choices")
    return FieldSpec(
        key=raw["key"],
        label=raw["label"],
        type=ftype,
        required=bool(raw.get("required", False)),
        where=where,  # type: ignore[arg-type]
        variants=_tuple(raw.get("variants"), "variants", path),
        row=_tuple(raw.get("row"), "row", path),
        hints=_tuple(raw.get("hints"), "hints", path),
        choices=choices,
        multiline=bool(raw.get("multiline", ftype == "section")),
        unit=raw.get("unit"),
    )


def _table(raw: dict[str, Any], path: str) -> TableSpec:
    cols = []
    for c in raw.get("columns", []):
        ctype = c.get("type", "text")
        if ctype not in FIELD_TYPES:
            raise SchemaError(f"{path}: column {c.get('key')!r} has unknown type {ctype!r}")
        cols.append(ColumnSpec(c["key"], _tuple(c.get("labels"), "labels", path), ctype,
                               bool(c.get("multiline", False))))
    if not raw.get("section") or not cols:
        raise SchemaError(f"{path}: every [[tables]] entry needs a section and columns")
    return TableSpec(
        section=raw["section"],
        titles=_tuple(raw.get("titles"), "titles", path),
        columns=tuple(cols),
        required_columns=_tuple(raw.get("required_columns"), "required_columns", path),
    )


def parse_schema(text: str, source: str = "<string>") -> FormSchema:
    """Build a FormSchema from TOML text (SchemaError on anything malformed)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SchemaError(f"{source}: {e}") from e
    try:
        kind = Kind(raw["kind"])
    except (KeyError, ValueError):
        raise SchemaError(f"{source}: 'kind' must be one of {[k.value for k in Kind]}") from None
    fields = tuple(_field(f, source) for f in raw.get("fields", []))
    tables = tuple(_table(t, source) for t in raw.get("tables", []))
    if not fields and not tables:
        raise SchemaError(f"{source}: no [[fields]] and no [[tables]]")
    return FormSchema(
        kind=kind,
        name=str(raw.get("name", kind.value)),
        titles=_tuple(raw.get("titles"), "titles", source),
        fields=fields,
        distinctive_labels=_tuple(raw.get("distinctive_labels"), "distinctive_labels", source),
        attachment_no=raw.get("attachment_no"),
        filename_hints=_tuple(raw.get("filename_hints"), "filename_hints", source),
        cover_end=_tuple(raw.get("cover_end"), "cover_end", source),
        section_end=_tuple(raw.get("section_end"), "section_end", source),
        tables=tables,
        source=source,
    )


def forms_dir() -> Path:
    env = os.environ.get("INTAKE_FORMS_DIR")
    return Path(env) if env else DEFAULT_FORMS_DIR


@cache
def _load_dir(directory: str) -> dict[Kind, FormSchema]:
    out: dict[Kind, FormSchema] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        schema = parse_schema(path.read_text(encoding="utf-8"), str(path))
        if schema.kind in out:
            raise SchemaError(f"{path}: kind {schema.kind} already defined by {out[schema.kind].source}")
        out[schema.kind] = schema
    return out


def all_schemas(directory: Path | str | None = None) -> dict[Kind, FormSchema]:
    """Every schema in the forms directory, by kind."""
    return _load_dir(str(directory or forms_dir()))


def load_schema(kind: Kind | str, directory: Path | str | None = None) -> FormSchema:
    """The schema for a form kind (form_scenario … summary); KeyError when there is none."""
    k = Kind(kind)
    schemas = all_schemas(directory)
    if k not in schemas:
        raise KeyError(f"no form schema for kind {k.value} in {directory or forms_dir()}")
    return schemas[k]
