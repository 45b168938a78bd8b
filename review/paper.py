"""The paper-submission log: import from xlsx/csv, the import template, add/edit/delete with history.

Import is all-or-nothing per file: every cell that cannot be read is reported (sheet, row, column,
heading, reason) and nothing is written until the file is clean, so a file is never half in the log.
Rows already imported (same values, same occurrence in the file) are skipped, so importing a growing
spreadsheet again adds only its new rows; `replace=True` makes the file the truth for the entries
imported from a file of that name before (rows gone or edited in it are deleted, with history).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from review.names import credit_key, org_key, project_key
from review.reconcile import DEFAULT_DISTRICTS, FORM_TYPE_LABEL, ITEM_LABEL, canonical_district
from store.models import AuditEvent
from store.paper_models import PaperEntry, PaperRevision
from store.types import utcnow

# SPEC 7 headings, in template order.
HEADINGS = ("接收时间", "申报单位", "项目名称", "方向", "材料类型", "份数", "所在区", "接收人", "备注")
# Without these a file cannot be a paper log; 项目名称 is then required on 申报书 rows.
REQUIRED_HEADINGS = ("接收时间", "申报单位", "项目名称", "材料类型", "份数")
# An extra column the SPEC does not require but matching uses when present.
CREDIT_HEADING = "统一社会信用代码"
# Other ways a spreadsheet names the same column (matched after NFKC, without spaces and bracketed hints).
HEADING_ALIASES: dict[str, tuple[str, ...]] = {
    "接收时间": ("接收日期", "接收日期时间", "送达时间", "收件时间", "报送时间", "提交时间"),
    "申报单位": ("申报单位名称", "单位名称", "报送单位", "申报单位(盖章)"),
    "项目名称": ("案例名称", "产品名称", "平台名称", "场景名称", "项目(产品)名称"),
    "方向": ("申报方向", "征集方向", "申报类别", "类别"),
    "材料类型": ("材料类别", "材料名称", "材料"),
    "份数": ("数量", "份数(份)"),
    "所在区": ("所在区/单位", "所属区", "区(单位)", "所在区(单位)", "区"),
    "接收人": ("经办人", "签收人", "收件人"),
    "备注": ("说明",),
    CREDIT_HEADING: ("信用代码", "社会信用代码"),
}
ITEM_ALIASES = {
    "form": ("申报书", "申报材料", "申报表", "纸质申报书", "申报书(纸质)"),
    "recommendation": ("推荐意见", "推荐函", "推荐意见表", "推荐意见书", "推荐信"),
    "summary": ("汇总表", "附件5", "申报信息汇总表", "项目汇总表", "汇总"),
}
# What staff write in 方向 for each form (the labels are the template's choices).
DIRECTION_WORDS = {
    "scenario": ("典型应用场景", "应用场景", "场景", "附件1", "scenario"),
    "model": ("模型和智能体", "大模型和智能体", "行业模型", "模型", "智能体", "附件2", "model"),
    "platform": ("公共服务平台", "服务平台", "平台", "附件3", "platform"),
    "terminal": ("智能终端产品", "智能终端", "终端", "附件4", "terminal"),
}
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
# Where the heading row may be: below a few title rows, never further down than this.
HEADING_SEARCH_ROWS = 30
# Excel's day 0 (1900 date system, after its 1900-02-29 bug): serial 46210.6875 = 2026-07-07 16:30.
_EXCEL_EPOCH = datetime(1899, 12, 30)
_TOTAL_WORDS = ("合计", "总计", "小计", "共计")


class PaperError(Exception):
    """A paper-log operation that cannot be done (unknown entry, unreadable file); the message says why."""


@dataclass(frozen=True)
class RowError:
    """One unreadable cell (or row) of an import: where, and why."""

    sheet: str
    row: int
    column: str  # "A", or "" for a whole-row problem
    heading: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column} ({self.heading})" if self.column else "")
        sheet = f"sheet {self.sheet!r}, " if self.sheet else ""
        return f"{sheet}{where}: {self.message}"


@dataclass
class ImportResult:
    file: str
    entries: list[dict[str, Any]] = field(default_factory=list)  # readable rows (values)
    errors: list[RowError] = field(default_factory=list)
    file_error: str | None = None  # the file as a whole cannot be read (no heading row, not xlsx/csv)
    blank_rows: int = 0
    skipped: list[str] = field(default_factory=list)  # rows deliberately left out (totals), with why
    created: list[int] = field(default_factory=list)
    already: int = 0  # rows imported before (same values)
    removed: list[int] = field(default_factory=list)  # replace=True: earlier entries no longer in the file
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and self.file_error is None


# -- reading values --------------------------------------------------------------------------------------


def _heading_key(raw: Any) -> str:
    s = unicodedata.normalize("NFKC", str(raw or ""))
    s = re.sub(r"\s+", "", s).strip("*＊:：")
    return s


_HEADING_LOOKUP: dict[str, str] = {}
for _canon in (*HEADINGS, CREDIT_HEADING):
    for _name in (_canon, *HEADING_ALIASES.get(_canon, ())):
        _HEADING_LOOKUP[_heading_key(_name)] = _canon


def canonical_heading(raw: Any) -> str | None:
    """The SPEC heading a spreadsheet heading cell means ("接收时间（年/月/日 时:分）*" -> 接收时间), or None."""
    key = _heading_key(raw)
    if not key:
        return None
    if key in _HEADING_LOOKUP:
        return _HEADING_LOOKUP[key]
    # A hint in brackets after the heading: 接收时间(年/月/日时:分), 份数(份).
    bare = re.sub(r"\(.*?\)$", "", key)
    return _HEADING_LOOKUP.get(bare)


_DT_TEXT = re.compile(
    r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"
    r"(?:\s*(?:T|\s)\s*|\s*)"
    r"(?:(?P<H>\d{1,2})\s*[:：时点]\s*(?P<M>\d{1,2})\s*分?(?:\s*[:：]?\s*(?P<S>\d{1,2})\s*秒?)?)?\s*$"
)
_DT_HINT = "write it as 2026/7/7 16:30 (or 2026-07-07 16:30, 2026年7月7日 16:30)"


def parse_received_at(
    value: Any, tz: ZoneInfo, *, number_format: str | None = None, around: datetime | None = None
) -> datetime:
    """接收时间 from a cell: an Excel date-time or serial number, or text in one of the usual layouts.

    Naive values are local time in `tz`. A date without a time of day is refused (lateness is decided to
    the minute on the last day), as are 上午/下午 and other free text. `around`: refuse dates more than a
    year away from it (typing slips such as 2062).
    """
    dt: datetime | None = None
    if isinstance(value, datetime):
        if value.time() == time(0) and number_format is not None and "h" not in number_format.lower():
            raise ValueError(f"{value:%Y-%m-%d} has no time of day: {_DT_HINT}")
        dt = value
    elif isinstance(value, date):
        raise ValueError(f"{value:%Y-%m-%d} has no time of day: {_DT_HINT}")
    elif isinstance(value, time):
        raise ValueError(f"{value:%H:%M} has no date: {_DT_HINT}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            serial = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise ValueError(f"{value!r} is not a date and time: {_DT_HINT}") from None
        dt = _from_serial(serial)
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        if not text:
            raise ValueError("is blank")
        if re.fullmatch(r"\d{5}(\.\d+)?", text):
            dt = _from_serial(float(text))
        else:
            try:
                dt = datetime.fromisoformat(text)
            except ValueError:
                dt = None
            if dt is None:
                if re.search(r"上午|下午|中午|晚上|早上|凌晨|点半|[AaPp][Mm]", text):
                    raise ValueError(f"{value!r}: 上午/下午 and 点半 are not read: {_DT_HINT} (24-hour clock)")
                m = _DT_TEXT.match(text)
                if m is None:
                    raise ValueError(f"{value!r} is not a date and time this import reads: {_DT_HINT}") from None
                if m.group("H") is None:
                    raise ValueError(f"{value!r} has no time of day: {_DT_HINT}")
                try:
                    dt = datetime(
                        int(m.group("y")), int(m.group("m")), int(m.group("d")),
                        int(m.group("H")), int(m.group("M")), int(m.group("S") or 0),
                    )  # fmt: skip
                except ValueError as e:
                    raise ValueError(f"{value!r} is not a valid date and time ({e})") from None
    elif value is None:
        raise ValueError("is blank")
    else:
        raise ValueError(f"{value!r} is not a date and time: {_DT_HINT}")
    assert dt is not None
    # At the ends of the calendar (0001-01-01T00:00+14:00, 9999-12-31 23:59) converting between zones
    # overflows; no paper log is that far from the call.
    if not 1900 <= dt.year <= 9000:
        raise ValueError(f"{value!r}: the year {dt.year} is not a date of this call: {_DT_HINT}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    if around is not None and abs(dt - around) > timedelta(days=366):
        raise ValueError(f"{dt.astimezone(tz):%Y-%m-%d %H:%M} is more than a year away from the call's deadline")
    return dt


def _from_serial(v: float) -> datetime:
    # 1982-02-07 .. 2119-01-14: anything else is a number typed in the wrong column, not a date.
    if not 30000 <= v <= 80000:
        raise ValueError(f"{v:g} is not a date and time: {_DT_HINT}")
    if v == int(v):
        raise ValueError(f"{v:g} is a date without a time of day: {_DT_HINT}")
    # Round to the second: Excel stores 16:30 as 0.6875 exactly, but 16:31 as a binary fraction.
    return _EXCEL_EPOCH + timedelta(seconds=round(v * 86400))


def parse_copies(value: Any) -> int:
    """份数: a whole number 1-99 ("2", 2, 2.0, "２份", "两份")."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number of copies")
    if isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer():  # also inf and nan (1E999 in the XML)
            raise ValueError(f"{value:g} is not a whole number of copies")
        n = int(value)
    elif isinstance(value, str):
        text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", value)).removesuffix("份")
        if not text:
            raise ValueError("is blank")
        if text.isdigit():
            n = int(text)
        elif text in _CN_DIGITS:
            n = _CN_DIGITS[text]
        else:
            raise ValueError(f"{value!r} is not a number of copies (write 1, 2, …)")
    elif value is None:
        raise ValueError("is blank")
    else:
        raise ValueError(f"{value!r} is not a number of copies")
    if not 1 <= n <= 99:
        raise ValueError(f"{n} is not a number of copies between 1 and 99")
    return n


def parse_item(value: Any) -> str:
    """材料类型 -> form | recommendation | summary."""
    text = _heading_key(value)
    if not text:
        raise ValueError("is blank: write 申报书, 推荐意见 or 汇总表")
    for item, words in ITEM_ALIASES.items():
        if text in {_heading_key(w) for w in words}:
            return item
    raise ValueError(f"{value!r} is not a kind of material: write 申报书, 推荐意见 or 汇总表")


def parse_direction(value: Any) -> str | None:
    """方向 -> scenario | model | platform | terminal, or None when blank."""
    text = _heading_key(value).casefold()
    if not text:
        return None
    for form_type, words in DIRECTION_WORDS.items():
        if text in {_heading_key(w).casefold() for w in words}:
            return form_type
    choices = "、".join(FORM_TYPE_LABEL.values())
    raise ValueError(f"{value!r} is not a direction: write one of {choices}, or leave it blank")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number typed into a text column (接收人 工号) reads as 12.0 otherwise
    s = str(value).strip()
    return s or None


def validate(
    raw: dict[str, Any],
    *,
    tz: ZoneInfo,
    deadline: datetime | None = None,
    districts: Sequence[str] = DEFAULT_DISTRICTS,
    number_formats: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Entry values from one row (canonical heading -> cell value): (values, {heading: error}).

    Used by the import and by `intake paper add`, so both accept exactly the same things.
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    fmts = number_formats or {}

    def attempt(heading: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(raw.get(heading), *args, **kwargs)
        except ValueError as e:
            errors[heading] = str(e)
            return None

    values["received_at"] = attempt(
        "接收时间", parse_received_at, tz, number_format=fmts.get("接收时间"), around=deadline
    )
    values["org_name"] = _text(raw.get("申报单位"))
    if not values["org_name"]:
        errors["申报单位"] = "is blank"
    values["item"] = attempt("材料类型", parse_item)
    values["project_name"] = _text(raw.get("项目名称"))
    if values["item"] == "form" and not values["project_name"]:
        errors["项目名称"] = "is blank (required for 申报书)"
    values["form_type"] = attempt("方向", parse_direction)
    values["copies"] = attempt("份数", parse_copies)
    district = _text(raw.get("所在区"))
    values["district"] = canonical_district(district, districts) or district if district else None
    values["received_by"] = _text(raw.get("接收人"))
    values["note"] = _text(raw.get("备注"))
    code = _text(raw.get(CREDIT_HEADING))
    values["credit_code"] = None
    if code:
        values["credit_code"] = credit_key(code)
        if values["credit_code"] is None:
            errors[CREDIT_HEADING] = f"{code!r} is not an 18-character 统一社会信用代码"
    return values, errors


# -- reading files ---------------------------------------------------------------------------------------


@dataclass
class _Sheet:
    name: str
    rows: list[tuple[int, list[Any], list[str | None]]]  # (row number, values, number formats)


def _column_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


# Bounds no paper log comes near (a season is a few hundred rows of ~12 columns); past them a file is hostile or
# not a log, and openpyxl would build a cell object for every position up to the farthest one.
MAX_ROWS = 100_000
MAX_COLUMNS = 200
MAX_MERGED_CELLS = 100_000
MAX_XML_PART = 32 * 1024 * 1024
MAX_XML_TOTAL = 64 * 1024 * 1024


def _screen_xlsx(data: bytes) -> None:
    """Refuse, before openpyxl builds anything, what would make it expand XML entities (its expat and lxml
    parsers expand internal ones) or create a cell object for every position of a huge merged range."""
    from lxml import etree
    from openpyxl.utils.cell import range_boundaries

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception:
        return  # not a readable package: load_workbook says why in its words
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False)
    total = sum(i.file_size for i in infos if i.filename.lower().endswith((".xml", ".rels", ".vml")))
    if total > MAX_XML_TOTAL:
        raise PaperError(f"not a paper log: its XML parts unpack to more than {MAX_XML_TOTAL // 2**20} MB")
    for info in infos:
        if not info.filename.lower().endswith((".xml", ".rels", ".vml")):
            continue
        too_big = PaperError(f"not a paper log: {info.filename} unpacks to more than {MAX_XML_PART // 2**20} MB")
        if info.file_size > MAX_XML_PART:
            raise too_big
        try:
            with zf.open(info) as fh:
                xml = fh.read(MAX_XML_PART + 1)
        except Exception:
            continue  # a damaged member: load_workbook reports it
        if len(xml) > MAX_XML_PART:
            raise too_big
        try:
            root = etree.fromstring(xml, parser)
        except etree.XMLSyntaxError as e:
            raise PaperError(f"not a readable .xlsx file: {info.filename} is not well-formed XML ({e})") from None
        if root.getroottree().docinfo.doctype:
            raise PaperError(
                f"not a readable .xlsx file: {info.filename} declares XML entities (DOCTYPE), refused as a possible "
                "XML bomb; save the log again from Excel or WPS"
            )
        area = 0
        for el in root.iter("{*}mergeCell"):
            try:
                c1, r1, c2, r2 = range_boundaries(el.get("ref") or "")
            except Exception:
                continue
            area += ((c2 or 16384) - (c1 or 1) + 1) * ((r2 or 1048576) - (r1 or 1) + 1)
        if area > MAX_MERGED_CELLS:
            raise PaperError(
                f"not a paper log: merged cells in {info.filename} cover {area:,} cells (more than "
                f"{MAX_MERGED_CELLS:,}); unmerge them"
            )


def _read_xlsx(data: bytes) -> list[_Sheet]:
    import openpyxl

    _screen_xlsx(data)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except Exception as e:
        raise PaperError(f"not a readable .xlsx file ({type(e).__name__}: {e})") from None
    sheets: list[_Sheet] = []
    for ws in wb.worksheets:
        # Only the cells the file has: ws.iter_rows() would create every cell up to max_row × max_column, and one
        # value in row 1048576 is enough to make that a billion.
        cells = ws._cells
        # A merged cell holds its value in the top-left cell only; spreadsheets merge 接收人 or 接收时间
        # down a block of rows, so every cell of a merged range reads the range's value.
        merged: dict[tuple[int, int], tuple[Any, str | None]] = {}
        for rng in ws.merged_cells.ranges:  # bounded by _screen_xlsx
            top = cells.get((rng.min_row, rng.min_col))
            if top is None:
                continue
            for r in range(rng.min_row, rng.max_row + 1):
                for c in range(rng.min_col, min(rng.max_col, MAX_COLUMNS) + 1):
                    if (r, c) != (rng.min_row, rng.min_col):
                        merged[(r, c)] = (top.value, top.number_format)
        by_row: dict[int, dict[int, tuple[Any, str | None]]] = {}
        for (r, c), cell in cells.items():
            if c <= MAX_COLUMNS:
                by_row.setdefault(r, {})[c] = merged.get((r, c), (cell.value, cell.number_format))
        last = max((r for r, cols in by_row.items() if any(v is not None for v, _ in cols.values())), default=0)
        if last > MAX_ROWS:
            raise PaperError(
                f"sheet {ws.title!r}: row {last} has a value; a paper log has at most {MAX_ROWS:,} rows "
                "(delete what is below the log)"
            )
        rows: list[tuple[int, list[Any], list[str | None]]] = []
        for r in range(1, last + 1):
            cols = by_row.get(r, {})
            line = [cols.get(c, (None, None)) for c in range(1, max(cols, default=0) + 1)]
            rows.append((r, [v for v, _ in line], [f for _, f in line]))
        sheets.append(_Sheet(ws.title, rows))
    wb.close()
    return sheets


def _read_csv(data: bytes) -> list[_Sheet]:
    # Excel on Chinese Windows saves CSV in GBK (GB18030 is its superset); others save UTF-8 (with BOM).
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise PaperError("not a text file in UTF-8 or GB18030")
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows: list[tuple[int, list[Any], list[str | None]]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, list(row), [None] * len(row)))
    except csv.Error as e:
        raise PaperError(f"not a readable CSV file: {e}") from None
    return [_Sheet("", rows)]


def read_file(path: Path) -> list[_Sheet]:
    suffix = path.suffix.lower()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PaperError(f"cannot read the file: {e.strerror or e}") from None
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(data)
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(data)
    if suffix in (".xls", ".et", ".wps"):
        raise PaperError(f"{suffix} files are not read: save the log as .xlsx (or .csv) and import that")
    if data[:4] == b"PK\x03\x04":
        return _read_xlsx(data)
    raise PaperError(f"unknown file type {suffix or '(none)'}: import .xlsx or .csv")


def _find_headings(sheet: _Sheet) -> tuple[int, dict[int, str]] | str:
    """(index in sheet.rows of the heading row, column index -> canonical heading), or why not found."""
    best: tuple[int, set[str], list[str]] | None = None
    for idx, (_n, values, _f) in enumerate(sheet.rows[:HEADING_SEARCH_ROWS]):
        found: dict[int, str] = {}
        dupes: list[str] = []
        for c, v in enumerate(values):
            h = canonical_heading(v)
            if h is None:
                continue
            if h in found.values():
                dupes.append(h)
            found[c] = h
        have = set(found.values())
        if all(h in have for h in REQUIRED_HEADINGS):
            if dupes:
                return f"row {sheet.rows[idx][0]}: heading {dupes[0]} appears twice; keep one column"
            return idx, found
        texts = [str(v).strip() for v in values if v not in (None, "")]
        if texts and (best is None or len(have) > len(best[1])):
            best = (idx, have, texts)
    expected = " ".join(HEADINGS)
    if best is None:
        return f"no heading row found: the sheet is empty (expected the headings {expected})"
    missing = [h for h in REQUIRED_HEADINGS if h not in best[1]]
    row_no = sheet.rows[best[0]][0]
    shown = ", ".join(best[2][:12])
    return (
        f"no heading row found in the first {HEADING_SEARCH_ROWS} rows (expected {expected}); "
        f"the closest, row {row_no} ({shown}), lacks {', '.join(missing)}"
    )


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def read_log(
    path: Path,
    *,
    tz: ZoneInfo,
    deadline: datetime | None = None,
    districts: Sequence[str] = DEFAULT_DISTRICTS,
) -> ImportResult:
    """Read and check a paper log file (nothing is written): values of every good row, every bad cell."""
    result = ImportResult(file=str(path))
    try:
        sheets = read_file(path)
    except PaperError as e:
        result.file_error = str(e)
        return result
    found_any = False
    reasons: list[str] = []
    for sheet in sheets:
        located = _find_headings(sheet)
        if isinstance(located, str):
            reasons.append(f"sheet {sheet.name!r}: {located}" if sheet.name and len(sheets) > 1 else located)
            continue
        found_any = True
        head_idx, columns = located
        occurrences: dict[str, int] = {}
        # Blank rows between entries are counted; the formatted but empty rows after the last one are not.
        blanks = 0
        for row_no, values, formats in sheet.rows[head_idx + 1 :]:
            raw = {h: values[c] if c < len(values) else None for c, h in columns.items()}
            if all(_blank(v) for v in raw.values()):
                blanks += 1
                continue
            result.blank_rows += blanks
            blanks = 0
            first = next((str(v).strip() for v in values if not _blank(v)), "")
            if _blank(raw.get("接收时间")) and first.startswith(_TOTAL_WORDS):
                result.skipped.append(f"row {row_no}: a total row ({first})")
                continue
            fmts = {h: f for c, h in columns.items() if c < len(formats) and (f := formats[c])}
            values_, errors = validate(raw, tz=tz, deadline=deadline, districts=districts, number_formats=fmts)
            if errors:
                col_of = {h: c for c, h in columns.items()}
                for h, msg in errors.items():
                    c = col_of.get(h)
                    letter = _column_letter(c) if c is not None else ""
                    result.errors.append(RowError(sheet.name if len(sheets) > 1 else "", row_no, letter, h, msg))
                continue
            fp = fingerprint(values_)
            occurrences[fp] = occurrences.get(fp, 0) + 1
            values_["import_key"] = f"{fp}#{occurrences[fp]}"
            values_["source_ref"] = f"{path.name}:{sheet.name + '!' if sheet.name else ''}{row_no}"
            result.entries.append(values_)
    if not found_any:
        result.file_error = "; ".join(reasons) or "no heading row found"
    return result


def fingerprint(values: dict[str, Any]) -> str:
    """A row's identity for re-imports: its values, normalised (so re-saving the file changes nothing)."""
    at: datetime | None = values.get("received_at")
    ident = {
        "received_at": at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M") if at else None,
        "org": org_key(values.get("org_name")),
        "project": project_key(values.get("project_name")),
        "form_type": values.get("form_type"),
        "item": values.get("item"),
        "copies": values.get("copies"),
        "district": values.get("district"),
        "received_by": values.get("received_by"),
        "note": values.get("note"),
        "credit_code": values.get("credit_code"),
    }
    return hashlib.sha256(json.dumps(ident, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:32]


# -- writing ---------------------------------------------------------------------------------------------

ENTRY_FIELDS = (
    "received_at",
    "org_name",
    "project_name",
    "form_type",
    "item",
    "copies",
    "district",
    "received_by",
    "note",
    "credit_code",
)


def snapshot(e: PaperEntry) -> dict[str, Any]:
    """The entry's values as stored in a revision (JSON-safe)."""
    out: dict[str, Any] = {k: getattr(e, k) for k in ENTRY_FIELDS}
    out["received_at"] = e.received_at.isoformat()
    out["deleted"] = e.deleted
    return out


def _keys(e: PaperEntry) -> None:
    e.org_key = org_key(e.org_name)
    e.project_key = project_key(e.project_name)


def _revise(session: Session, e: PaperEntry, action: str, user: str, reason: str | None) -> None:
    assert e.id is not None
    session.add(
        PaperRevision(entry_pk=e.id, version=e.version, action=action, values=snapshot(e), user=user, reason=reason)
    )


def add_entry(
    session: Session,
    values: dict[str, Any],
    user: str,
    *,
    source: str = "cli",
    reason: str | None = None,
    audit: bool = True,
) -> PaperEntry:
    """Log one hand-in (values as `validate` returns them); history version 1 and an AuditEvent."""
    now = utcnow()
    fields: dict[str, Any] = {k: values.get(k) for k in ENTRY_FIELDS}
    e = PaperEntry(
        **fields,
        source=source,
        source_ref=values.get("source_ref"),
        import_key=values.get("import_key"),
        created_by=user,
        created_at=now,
        updated_at=now,
    )
    _keys(e)
    session.add(e)
    session.flush()
    _revise(session, e, "create", user, reason)
    if audit:
        session.add(AuditEvent(user=user, action="paper.add", target=f"paper:{e.id}", detail={"values": snapshot(e)}))
    return e


def get_entry(session: Session, entry_id: int) -> PaperEntry:
    e = session.get(PaperEntry, entry_id)
    if e is None:
        raise PaperError(f"no paper entry {entry_id}")
    return e


def edit_entry(
    session: Session, entry_id: int, changes: dict[str, Any], user: str, reason: str | None = None
) -> PaperEntry:
    """Change some values of an entry; the old values stay in its history."""
    e = get_entry(session, entry_id)
    if e.deleted:
        raise PaperError(f"paper entry {entry_id} is deleted: restore it first")
    unknown = set(changes) - set(ENTRY_FIELDS)
    if unknown:
        raise PaperError(f"unknown field(s) {', '.join(sorted(unknown))}")
    before = snapshot(e)
    for k, v in changes.items():
        setattr(e, k, v)
    if e.item == "form" and not e.project_name:
        raise PaperError("项目名称 is required for 申报书")
    after = snapshot(e)
    diff = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not diff:
        return e
    _keys(e)
    e.version += 1
    e.updated_at = utcnow()
    session.add(e)
    _revise(session, e, "edit", user, reason)
    session.add(
        AuditEvent(user=user, action="paper.edit", target=f"paper:{e.id}", detail={"changes": diff, "reason": reason})
    )
    session.flush()
    return e


def delete_entry(
    session: Session, entry_id: int, user: str, reason: str | None = None, *, restore: bool = False
) -> PaperEntry:
    """Take an entry out of the log (or put it back): it stays, with its history, for the record."""
    e = get_entry(session, entry_id)
    if e.deleted != restore:
        raise PaperError(f"paper entry {entry_id} is {'not ' if restore else 'already '}deleted")
    e.deleted = not restore
    e.version += 1
    e.updated_at = utcnow()
    session.add(e)
    action = "restore" if restore else "delete"
    _revise(session, e, action, user, reason)
    session.add(AuditEvent(user=user, action=f"paper.{action}", target=f"paper:{e.id}", detail={"reason": reason}))
    session.flush()
    return e


def history(session: Session, entry_id: int) -> list[PaperRevision]:
    get_entry(session, entry_id)
    return list(
        session.exec(
            select(PaperRevision).where(PaperRevision.entry_pk == entry_id).order_by(col(PaperRevision.version))
        )
    )


def import_log(
    session: Session,
    path: Path,
    user: str,
    *,
    tz: ZoneInfo,
    deadline: datetime | None = None,
    districts: Sequence[str] = DEFAULT_DISTRICTS,
    replace: bool = False,
    dry_run: bool = False,
    read: ImportResult | None = None,
) -> ImportResult:
    """Import a paper log file, all or nothing (see the module docstring); flushes, the caller commits.

    `read`: what read_log already made of this file elsewhere (the dashboard reads uploads in a child
    process with time and memory limits)."""
    result = read if read is not None else read_log(path, tz=tz, deadline=deadline, districts=districts)
    if not result.ok or dry_run:
        return result
    keys = [v["import_key"] for v in result.entries]
    existing: dict[str, PaperEntry] = {}
    for i in range(0, len(keys), 500):
        for e in session.exec(select(PaperEntry).where(col(PaperEntry.import_key).in_(keys[i : i + 500]))):
            if e.import_key:
                existing[e.import_key] = e
    for values in result.entries:
        if values["import_key"] in existing:
            result.already += 1
            continue
        e = add_entry(session, values, user, source="import", reason=f"import of {path.name}", audit=False)
        assert e.id is not None
        result.created.append(e.id)
    if replace:
        current = set(keys)
        for e in session.exec(
            select(PaperEntry).where(
                col(PaperEntry.source) == "import",
                col(PaperEntry.deleted).is_(False),
                col(PaperEntry.source_ref).startswith(f"{path.name}:"),
            )
        ):
            if e.import_key not in current and e.id is not None:
                delete_entry(session, e.id, user, f"no longer in {path.name} (import --replace)")
                result.removed.append(e.id)
    session.add(
        AuditEvent(
            user=user,
            action="paper.import",
            target=f"paper_import:{path.name}",
            detail={
                "file": str(path),
                "created": result.created,
                "already_imported": result.already,
                "removed": result.removed,
                "replace": replace,
            },
        )
    )
    session.flush()
    result.written = True
    return result


# -- the template ----------------------------------------------------------------------------------------


def template_bytes(*, title: str = "纸质材料接收登记表", districts: Sequence[str] = DEFAULT_DISTRICTS) -> bytes:
    """An empty paper log (.xlsx): a title row, the SPEC 7 headings, drop-down lists for 方向, 材料类型
    and 所在区, whole numbers for 份数, a date-time format for 接收时间."""
    import openpyxl
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "纸质材料登记"
    ws.append([title])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADINGS))
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.append(list(HEADINGS))
    for c in range(1, len(HEADINGS) + 1):
        cell = ws.cell(2, c)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    widths = {"A": 18, "B": 36, "C": 40, "D": 16, "E": 12, "F": 8, "G": 14, "H": 10, "I": 30}
    for letter, w in widths.items():
        ws.column_dimensions[letter].width = w
    ws.freeze_panes = "A3"

    # The lists live on a hidden sheet: an inline list is limited to 255 characters, districts are not.
    opts = wb.create_sheet("选项")
    lists = {
        "A": list(FORM_TYPE_LABEL.values()),
        "B": list(ITEM_LABEL.values()),
        "C": list(districts),
    }
    for letter, items in lists.items():
        for i, v in enumerate(items, 1):
            opts[f"{letter}{i}"] = v
    opts.sheet_state = "hidden"
    last = 1000
    specs = (("D", "A", "方向"), ("E", "B", "材料类型"), ("G", "C", "所在区"))
    for target, src, name in specs:
        n = len(lists[src])
        dv = DataValidation(
            type="list",
            formula1=f"'选项'!${src}$1:${src}${n}",
            allow_blank=True,
            showErrorMessage=True,
            errorTitle=name,
            error=f"请从下拉列表中选择{name}",
        )
        dv.add(f"{target}3:{target}{last}")
        ws.add_data_validation(dv)
    copies = DataValidation(
        type="whole", operator="between", formula1="1", formula2="99", showErrorMessage=True,
        errorTitle="份数", error="份数为 1-99 的整数",
    )  # fmt: skip
    copies.add(f"F3:F{last}")
    ws.add_data_validation(copies)
    for r in range(3, last + 1):
        ws.cell(r, 1).number_format = "yyyy/m/d h:mm"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def entries(session: Session, *, include_deleted: bool = False) -> Iterator[PaperEntry]:
    q = select(PaperEntry).order_by(col(PaperEntry.received_at), col(PaperEntry.id))
    if not include_deleted:
        q = q.where(col(PaperEntry.deleted).is_(False))
    yield from session.exec(q)
