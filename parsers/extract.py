"""Schema-driven field extraction: a Layout plus the template's schema file in, SPEC 3 fields out."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from parsers.layout import TICKED, UNTICKED, Layout, Table
from parsers.schema import ColumnSpec, FieldSpec, FormSchema, TableSpec, load_schema
from parsers.types import Kind
from parsers.validators import normalize_credit_code, normalize_phone
from parsers.word import normalize_ticks

# --- text helpers --------------------------------------------------------------------------------

_WS = re.compile(r"\s+")
_PAREN = re.compile(r"\([^()]*\)")
_UNDERSCORES = re.compile(r"[_＿‗]{2,}|[_＿]+(?=\s|$)|(?<=\s)[_＿]+")
_LATIN_START = re.compile(r"^[A-Za-z]")
_LATIN_END = re.compile(r"[A-Za-z.,;:!?]$")

# Group labels of the template's left column (rows that only say what the next cells are about).
_GROUP_LABELS = ("申报人员", "联系人情况", "单位经营情况", "单位人才情况", "平台人才情况", "模型指标",
                 "数据指标", "平台指标")


@lru_cache(maxsize=4096)
def label_key(text: str) -> str:
    """Comparison key of a label: half-width, no spaces, no (unit)/(hint) brackets, no colon or *."""
    s = unicodedata.normalize("NFKC", text)
    s = _WS.sub("", s)
    prev = None
    while prev != s:  # nested brackets: (万元,可预估) inside (...)
        prev, s = s, _PAREN.sub("", s)
    return s.strip(":*※").replace("(", "").replace(")", "")


def _fw(c: str) -> str:
    """Full-width twin of an ASCII character (what Chinese IMEs type), else the character itself."""
    o = ord(c)
    return chr(o + 0xFEE0) if 0x21 <= o <= 0x7E else c


@lru_cache(maxsize=1024)
def spaced_pattern(label: str) -> str:
    """Regex for a label as applicants type it: any spaces between characters, either width."""
    parts = []
    for c in unicodedata.normalize("NFKC", label):
        if c.isspace():
            continue
        alts = {c, _fw(c)}
        if c == "(":
            alts |= {"（"}
        if c == ")":
            alts |= {"）"}
        alt = "".join(re.escape(a) for a in sorted(alts))
        parts.append(f"[{alt}]" if len(alts) > 1 else re.escape(c))
    return r"\s*".join(parts)


def _strip_loose_prefix(text: str, prefix: str) -> str | None:
    """text minus a leading `prefix` (half/full width alike, spaces ignored); None when absent."""
    pn = [c for c in unicodedata.normalize("NFKC", prefix) if not c.isspace()]
    j = 0
    i = 0
    while i < len(text) and j < len(pn):
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if unicodedata.normalize("NFKC", c) != pn[j]:
            return None
        i += 1
        j += 1
    return text[i:] if j == len(pn) else None


def _strip_loose_suffix(text: str, suffix: str) -> str | None:
    r = _strip_loose_prefix(text[::-1], suffix[::-1])
    return None if r is None else r[::-1]


def _strip_hints(text: str, hints: tuple[str, ...]) -> str:
    s = text.strip()
    changed = True
    while changed and s:
        changed = False
        for h in hints:
            for strip in (_strip_loose_prefix, _strip_loose_suffix):
                r = strip(s, h)
                if r is not None:
                    s, changed = r.strip(), True
    return s


def _clean_blank(text: str) -> str:
    """Drop the template's fill-in underscores and surrounding space."""
    s = _UNDERSCORES.sub(" ", text)
    s = s.strip(" \t\u3000_＿")
    return s.strip()


def _join_lines(text: str) -> str:
    """One-line value from a cell with line breaks: joined directly, with a space only between Latin words.

    A break inside a Chinese name or an address number is the applicant wrapping a narrow cell.
    """
    out = ""
    for line in text.split("\n"):
        line = _WS.sub(" ", line).strip()
        if not line:
            continue
        if out and _LATIN_END.search(out) and _LATIN_START.search(line):
            out += " "
        out += line
    return out


def _multiline(text: str) -> str:
    lines = [ln.strip() for ln in text.split("\n")]
    return "\n".join(ln for ln in lines if ln)


# --- value parsers -------------------------------------------------------------------------------

_CN_DIGITS = {"〇": 0, "零": 0, "○": 0, "Ｏ": 0, "O": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}


def _cn_number(s: str) -> int | None:
    if not s:
        return None
    if all(c in _CN_DIGITS for c in s) and len(s) >= 3:  # 二〇二六: digit by digit
        return int("".join(str(_CN_DIGITS[c]) for c in s))
    if "十" in s:
        a, _, b = s.partition("十")
        tens = _CN_DIGITS.get(a) if a else 1
        ones = _CN_DIGITS.get(b) if b else 0
        if tens is None or ones is None:
            return None
        return tens * 10 + ones
    if len(s) == 1 and s in _CN_DIGITS:
        return _CN_DIGITS[s]
    return None


_DATE_RE = re.compile(r"(\d{4})\s*[年./\-—－]\s*(\d{1,2})\s*[月./\-—－]\s*(\d{1,2})\s*日?")
_DATE_CN = re.compile(
    r"([〇零○一二三四五六七八九]{4})\s*年\s*([一二三四五六七八九十]{1,3})\s*月\s*([一二三四五六七八九十]{1,3})\s*日"
)


def parse_date(text: str) -> str | None:
    """`YYYY-MM-DD` from 2026年6月30日, 2026.6.30, 2026-06-30, 2026/6/30, 20260630, 二〇二六年六月三十日."""
    s = unicodedata.normalize("NFKC", text)
    m = _DATE_RE.search(s)
    parts: tuple[int | None, ...]
    if m:
        parts = tuple(int(g) for g in m.groups())
    elif (m8 := re.search(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)", s)):
        parts = tuple(int(g) for g in m8.groups())
    elif (mc := _DATE_CN.search(text)):
        parts = tuple(_cn_number(g) for g in mc.groups())
    else:
        return None
    y, mo, d = parts
    if y is None or mo is None or d is None:
        return None
    try:
        return date(y, mo, d).isoformat()
    except ValueError:
        return None


_NUM_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(亿|万|千|百|B|b)?")


def parse_number(text: str, ftype: str = "number", unit: str | None = None) -> float | int | None:
    """A number from how applicants write it: 1,200 / 1200万元 / 约 35 / 35人 / 1.2亿元 / 7B.

    For 万元 fields a figure in 亿 is scaled to 万, one in plain 元 (no 万) too; for 亿 fields a
    figure in B (billions of parameters) is scaled to 亿.
    """
    s = unicodedata.normalize("NFKC", text)
    s = re.sub(r"(?<=\d)[,，\s](?=\d{3}(?!\d))", "", s)
    m = _NUM_RE.search(s)
    if not m:
        return None
    value = float(m.group(1))
    mult = m.group(2)
    after = s[m.end():m.end() + 2]
    if ftype == "number_wan":
        if mult == "亿":
            value *= 10000
        elif mult == "千":
            value /= 10
        elif mult is None and after.startswith("元"):
            value /= 10000
    elif unit == "亿" and mult in ("B", "b"):
        value *= 10
    elif mult == "万" and ftype == "int":
        value *= 10000
    if ftype == "int":
        return round(value)
    return value


# --- choice cells --------------------------------------------------------------------------------

_MARKS = re.compile(f"([{TICKED}{UNTICKED}])")


@dataclass
class _Option:
    choice: str | None  # matched template option, or None
    ticked: bool
    rest: str  # what follows the option text in this segment (其他's text, a dataset size)
    raw: str


def _choice_key(s: str) -> str:
    return _WS.sub("", unicodedata.normalize("NFKC", s))


def _segments(text: str, choices: tuple[str, ...]) -> list[_Option]:
    parts = _MARKS.split(normalize_ticks(text))
    out: list[_Option] = []
    # parts: [before, mark, seg, mark, seg, ...]
    for i in range(1, len(parts) - 1, 2):
        mark, seg = parts[i], parts[i + 1]
        out.append(_match_option(seg, mark == TICKED, choices))
    return out


def _match_option(seg: str, ticked: bool, choices: tuple[str, ...]) -> _Option:
    best: str | None = None
    best_end = 0
    for c in choices:
        m = re.match(r"\s*" + spaced_pattern(c), seg)
        if m and (best is None or len(c) > len(best)):
            best, best_end = c, m.end()
    rest = seg[best_end:] if best is not None else seg
    return _Option(best, ticked, rest, seg)


def _other_text(rest: str) -> str:
    s = re.sub(r"^\s*(?:[（(][^）)]*[）)]\s*)+", "", rest)  # (请注明) / (可多选)
    s = re.sub(r"^\s*[:：]", "", s)
    return _join_lines(_clean_blank(s)).strip(" :：")


def _choice_export(opt: _Option) -> str:
    assert opt.choice is not None
    if opt.choice == "其他":
        extra = _other_text(opt.rest)
        return f"其他：{extra}" if extra else "其他"
    return opt.choice


# --- the extractor -------------------------------------------------------------------------------


@dataclass
class _Cell:
    table: Table
    row: int
    col: int
    inline: str | None  # value typed into the label cell after a colon


class _Context:
    """A layout indexed for label look-ups, built once per document."""

    def __init__(self, layout: Layout, schema: FormSchema) -> None:
        self.layout = layout
        self.schema = schema
        self.tables = layout.tables
        self.index: dict[str, list[_Cell]] = {}
        self.row_keys: dict[tuple[int, int], set[str]] = {}
        for t in self.tables:
            for r, row in enumerate(t.rows):
                keys: set[str] = set()
                for c, cell in enumerate(row):
                    if not cell:
                        continue
                    k = label_key(cell) if len(cell) < 80 else ""
                    if k:
                        self.index.setdefault(k, []).append(_Cell(t, r, c, None))
                        keys.add(k)
                    # The label may wrap in a narrow cell (统一社会信用代\n码：9142...), as a PDF shows it.
                    m = re.match(r"([^:：]{1,40})[:：](.*)", cell, re.S)
                    if m:
                        lk = label_key(m.group(1))
                        if lk:
                            self.index.setdefault(lk, []).append(_Cell(t, r, c, m.group(2)))
                            keys.add(lk)
                self.row_keys[(id(t), r)] = keys
        self.label_keys = {label_key(lbl) for f in schema.fields for lbl in f.labels}
        self.label_keys |= {label_key(g) for g in _GROUP_LABELS}


def _find_in_tables(ctx: _Context, f: FieldSpec) -> tuple[str | None, bool]:
    """(raw value text or None, label seen)."""
    row_scope = {label_key(r) for r in f.row}
    seen = False
    blank_found = False
    for lbl in f.labels:
        for cell in ctx.index.get(label_key(lbl), ()):
            if row_scope and not (row_scope & ctx.row_keys[(id(cell.table), cell.row)]):
                continue
            seen = True
            if cell.inline is not None and _clean_blank(cell.inline):
                return cell.inline, True
            row = cell.table.rows[cell.row]
            if cell.col + 1 < len(row):
                value = row[cell.col + 1]
                if value and label_key(value) in ctx.label_keys and label_key(value) != label_key(lbl):
                    blank_found = True  # the value cell was deleted: next cell is another label
                    continue
                if _clean_blank(_strip_hints(value, f.hints)):
                    return value, True
                blank_found = True
            else:
                # Label in the last column: the value sits in the row below (vertical layouts).
                below = cell.table.rows[cell.row + 1] if cell.row + 1 < len(cell.table.rows) else []
                under = below[cell.col] if cell.col < len(below) else ""
                if under and label_key(under) not in ctx.label_keys:
                    return under, True
                blank_found = True
    return ("" if blank_found else None), seen


# Cover page -------------------------------------------------------------------------------------


def _cover_region(layout: Layout, schema: FormSchema) -> list[str]:
    """Lines of the cover page: before the first 单位基本情况 heading or form table."""
    table_keys = {label_key(lbl) for f in schema.fields if "table" in f.where for lbl in f.labels}
    enum = r"^\s*(?:[一二三四五六七八九十]+\s*[、.．]\s*)?"
    end_res = [re.compile(enum + spaced_pattern(e)) for e in schema.cover_end]
    lines: list[str] = []
    for b in layout.blocks:
        if isinstance(b, str):
            if any(r.match(b) for r in end_res):
                break
            lines.extend(b.split("\n"))
        else:
            if not table_keys:
                break
            cells = {label_key(c) for t in b.all_tables() for row in t.rows for c in row if c}
            if cells & table_keys:
                break
            for t in b.all_tables():
                for row in t.rows:
                    lines.append("\t".join(row).replace("\n", "\t"))
    return lines


@lru_cache(maxsize=64)
def _cover_regex(labels: tuple[str, ...]) -> re.Pattern[str]:
    alts = sorted(labels, key=len, reverse=True)
    return re.compile(
        "(" + "|".join(f"(?:{spaced_pattern(a)})" for a in alts) + r")"
        r"(\s*[（(][^）)\n]{0,12}[）)])?(\s*[:：])?"
    )


def _parse_cover(lines: list[str], fields: list[FieldSpec]) -> dict[str, str]:
    label_of: dict[str, FieldSpec] = {}
    for f in fields:
        for lbl in f.labels:
            label_of.setdefault(label_key(lbl), f)
    rx = _cover_regex(tuple(lbl for f in fields for lbl in f.labels))
    found: dict[str, str] = {}
    current_list: FieldSpec | None = None
    for line in lines:
        matches = []
        for m in rx.finditer(line):
            before = line[: m.start()]
            at_start = not before.strip()
            after_sep = before.rstrip().endswith((")", "）", ":", "："))
            if at_start or before[-1].isspace() or m.group(3) or after_sep:
                matches.append(m)
        if not matches:
            if current_list is not None and line.strip():
                found[current_list.key] = found.get(current_list.key, "") + "\n" + line
            continue
        current_list = None
        for i, m in enumerate(matches):
            f = label_of[label_key(m.group(1))]
            end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
            value = line[m.end():end]
            if f.key not in found or not _clean_blank(_strip_hints(found[f.key], f.hints)):
                found[f.key] = value
            if f.type == "list" and i == len(matches) - 1:
                current_list = f
    return found


# Sections ---------------------------------------------------------------------------------------

_ENUM = (
    r"^\s*(?:[（(]\s*[一二三四五六七八九十]{1,3}\s*[)）]|[一二三四五六七八九十]{1,3}\s*[、.．]"
    r"|\d{1,2}\s*[、.．)）]|[（(]\s*\d{1,2}\s*[)）])?\s*"
)


@lru_cache(maxsize=256)
def _heading_re(label: str, whole: bool) -> re.Pattern[str]:
    tail = r"\s*[。．.:：]?\s*$" if whole else r"\s*(?:[。．.:：;；]\s*|$)"
    return re.compile(_ENUM + spaced_pattern(label) + tail)


def _block_text(b: str | Table) -> str:
    if isinstance(b, str):
        return b
    return "\n".join("\t".join(row) for t in b.all_tables() for row in t.rows)


def _sections(layout: Layout, schema: FormSchema) -> dict[str, str]:
    sec_fields = [f for f in schema.fields if f.type == "section" or "section" in f.where]
    if not sec_fields:
        return {}
    blocks = layout.blocks
    start = next((i for i, b in enumerate(blocks) if isinstance(b, Table)), 0)
    heads: list[tuple[int, FieldSpec | None, str]] = []
    taken: set[str] = set()
    for i in range(start, len(blocks)):
        b = blocks[i]
        if not isinstance(b, str):
            continue
        hit = False
        for f in sec_fields:
            if f.key in taken:
                continue
            for lbl in f.labels:
                m = _heading_re(lbl, False).match(b)
                if m:
                    heads.append((i, f, b[m.end():]))
                    taken.add(f.key)
                    hit = True
                    break
            if hit:
                break
        if not hit and heads and any(_heading_re(e, True).match(b) for e in schema.section_end):
            heads.append((i, None, ""))
    out: dict[str, str] = {}
    for n, (i, sf, rest) in enumerate(heads):
        if sf is None:
            continue
        end = heads[n + 1][0] if n + 1 < len(heads) else len(blocks)
        parts = [rest] + [_block_text(b) for b in blocks[i + 1:end]]
        # The template's instruction text may be left in, after the heading or as the next paragraph.
        for k, p in enumerate(parts):
            parts[k] = _strip_hints(p, sf.hints)
            if parts[k]:
                break
        out[sf.key] = _multiline("\n".join(parts))
    return out


# Typed conversion -------------------------------------------------------------------------------


def _split_list(text: str, hints: tuple[str, ...]) -> list[str]:
    items = re.split(r"[、，,;；\n\t]|\s{2,}|\u3000", text)
    out = []
    for it in items:
        v = _clean_blank(_strip_hints(it, hints))
        v = v.strip(" 。.")
        if v and v not in ("无", "/", "—", "-", "——", "暂无"):
            out.append(v)
    return out


def _convert(f: FieldSpec | ColumnSpec, raw: str, warnings: list[str], label: str) -> Any:
    """Typed value of a field from its raw text; None when blank."""
    hints = f.hints if isinstance(f, FieldSpec) else ()
    ftype = f.type
    if ftype == "list":
        items = _split_list(raw, hints)
        return items or None
    text = _clean_blank(_strip_hints(raw, hints))
    if ftype in ("single_choice", "multi_choice", "object") and isinstance(f, FieldSpec):
        return _convert_choice(f, text, warnings)
    if not text:
        return None
    if f.multiline or ftype == "section":
        return _multiline(text)
    one = _join_lines(text)
    if ftype == "text":
        return one
    if ftype == "credit_code":
        return normalize_credit_code(one)
    if ftype == "phone":
        p = normalize_phone(one)
        if p is None:
            warnings.append(f"{label}：电话“{one}”不是有效的大陆电话号码格式")
            return one
        return p
    if ftype == "date":
        d = parse_date(one)
        if d is None:
            if not re.search(r"\d|[〇一二三四五六七八九十]", one):
                return None  # 年 月 日 with the blanks left empty
            warnings.append(f"{label}：无法识别日期“{one}”")
            return one
        return d
    if ftype in ("int", "number", "number_wan"):
        n = parse_number(one, ftype, f.unit if isinstance(f, FieldSpec) else None)
        if n is None:
            warnings.append(f"{label}：无法识别数字“{one}”")
            return one
        return n
    return one


def _convert_choice(f: FieldSpec, text: str, warnings: list[str]) -> Any:
    opts = _segments(text, f.choices)
    if not opts:
        if not text:
            return None
        # No boxes at all: the applicant deleted the unchosen options and kept (or typed) one.
        one = _join_lines(text)
        opt = _match_option(one, True, f.choices)
        if opt.choice is not None and (opt.choice == "其他" or not _clean_blank(opt.rest)):
            value = _choice_export(opt)
            return [value] if f.type == "multi_choice" else ({} if f.type == "object" else value)
        warnings.append(f"{f.label}：未勾选选项，填写内容为“{one}”")
        return one
    for o in opts:
        if o.ticked and o.choice is None:
            warnings.append(f"{f.label}：勾选了模板以外的选项“{_join_lines(o.raw).strip()}”")
    if f.type == "object":
        return _convert_object(f, opts, warnings)
    chosen = [_choice_export(o) for o in opts if o.ticked and o.choice is not None]
    if f.type == "multi_choice":
        return chosen or None
    if len(chosen) > 1:
        warnings.append(f"{f.label}：勾选了多个选项（{'、'.join(chosen)}），取第一个")
    return chosen[0] if chosen else None


def _convert_object(f: FieldSpec, opts: list[_Option], warnings: list[str]) -> dict[str, float] | None:
    out: dict[str, float] = {}
    for o in opts:
        if o.choice is None:
            continue
        rest = _clean_blank(re.sub(r"^\s*(?:[（(][^）)]*[）)])", "", o.rest))
        n = parse_number(rest, "number", f.unit)
        if n is None:
            if o.ticked:
                warnings.append(f"{f.label}：勾选了“{o.choice}”但未填写规模")
            continue
        if not o.ticked:
            warnings.append(f"{f.label}：“{o.choice}”填写了规模但未勾选，仍予记录")
        key = o.choice
        if o.choice == "其他":
            name = re.sub(r"\d+(?:\.\d+)?\s*(?:TB|T|tb)?", "", rest).strip(" :：,，()（）_")
            key = f"其他：{name}" if name else "其他"
        out[key] = float(n)
    return out or None


# Summary (附件5) ---------------------------------------------------------------------------------


def _header_match(row: list[str], spec: TableSpec) -> tuple[float, dict[int, ColumnSpec]]:
    keys = [label_key(c) for c in row]
    mapping: dict[int, ColumnSpec] = {}
    for i, k in enumerate(keys):
        if not k:
            continue
        for col in spec.columns:
            if any(k == label_key(lbl) for lbl in col.labels) and col not in mapping.values():
                mapping[i] = col
                break
    unmatched = sum(1 for i, k in enumerate(keys) if k and i not in mapping)
    missing = len(spec.columns) - len(mapping)
    got = {c.key for c in mapping.values()}
    if len(mapping) < 3 or not set(spec.required_columns) <= got:
        return 0.0, {}
    return len(mapping) - unmatched - 0.5 * missing, mapping


def _title_section(text: str, specs: tuple[TableSpec, ...]) -> TableSpec | None:
    k = label_key(text)
    if not k or len(k) > 40:
        return None
    for spec in specs:
        if any(label_key(t) in k for t in spec.titles):
            return spec
    return None


def _summary_rows(layout: Layout, schema: FormSchema, warnings: list[str]) -> list[dict[str, Any]]:
    specs = schema.tables
    rows_out: list[dict[str, Any]] = []
    titled: TableSpec | None = None
    for b in layout.blocks:
        if isinstance(b, str):
            spec = _title_section(b, specs)
            if spec is not None:
                titled = spec
            continue
        for t in b.all_tables():
            current: TableSpec | None = None
            mapping: dict[int, ColumnSpec] = {}
            for row in t.rows:
                filled = [c for c in row if c.strip()]
                if not filled:
                    continue
                if len(set(filled)) == 1:
                    spec = _title_section(filled[0], specs)
                    if spec is not None:
                        titled, current, mapping = spec, None, {}
                        continue
                scored = [(s, *_header_match(row, s)) for s in specs]
                scored = [x for x in scored if x[1] > 0]
                if scored:
                    # The title says which table this is; the header decides when there is none.
                    pick = next((x for x in scored if x[0] is titled), None)
                    best = max(scored, key=lambda x: x[1])
                    if pick is None or pick[1] < best[1]:
                        pick = best
                    current, mapping = pick[0], pick[2]
                    titled = None
                    continue
                if current is None:
                    continue
                rec: dict[str, Any] = {"section": current.section}
                for i, col in mapping.items():
                    if i >= len(row):
                        continue
                    title = current.titles[0] if current.titles else current.section
                    label = f"{schema.name}·{title}·{col.labels[0]}"
                    v = _convert(col, row[i], warnings, label)
                    if v is not None:
                        rec[col.key] = v
                if any(k not in ("section", "seq") for k in rec):
                    rows_out.append(rec)
    return rows_out


# Entry point ------------------------------------------------------------------------------------


def extract_fields(
    kind: Kind | str, layout: Layout, schema: FormSchema | None = None
) -> tuple[dict[str, Any], list[str]]:
    """SPEC section 3 fields of one form, and warnings for staff, driven only by the kind's schema.

    Blank fields are absent. Values keep what the applicant wrote except for the SPEC 3 formats:
    dates YYYY-MM-DD, phones normalised, credit codes upper-cased, numbers as int/float, choices as
    the option text printed in the template (其他 as 其他：<text>).
    """
    schema = schema or load_schema(kind)
    warnings: list[str] = []
    ctx = _Context(layout, schema)
    fields: dict[str, Any] = {}

    cover_fields = [f for f in schema.fields if "cover" in f.where]
    cover = _parse_cover(_cover_region(layout, schema), cover_fields) if cover_fields else {}
    sections = _sections(layout, schema)

    for f in schema.fields:
        if f.key in fields:
            continue
        raw: str | None = None
        seen = False
        for where in f.where:
            if where == "cover":
                candidate = cover.get(f.key)
                if candidate is not None:
                    seen = True
            elif where == "table":
                candidate, s = _find_in_tables(ctx, f)
                seen = seen or s
            else:
                candidate = sections.get(f.key)
                seen = seen or candidate is not None
            if candidate is not None and _convert(f, candidate, [], f.label) is not None:
                raw = candidate
                break
            if candidate is not None and raw is None:
                raw = candidate
        if raw is None:
            if not seen and layout.source == "docx" and f.type != "list" and "cover" not in f.where:
                warnings.append(f"未找到“{f.label}”一栏（模板可能被改动）")
            continue
        value = _convert(f, raw, warnings, f.label)
        if value is not None and value != [] and value != {}:
            fields[f.key] = value

    if schema.tables:
        rows = _summary_rows(layout, schema, warnings)
        if rows:
            fields["rows"] = rows
        elif layout.tables:
            warnings.append("汇总表中未找到可识别的表头或数据行")
    return fields, warnings
