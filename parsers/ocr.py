"""OCR of page images with rapidocr (models inside the wheel), budgeted, plus key fields from OCR lines."""

from __future__ import annotations

import itertools
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parsers.layout import Layout, Table

_ENGINE: Any = None
_LOCK = threading.Lock()


class OcrUnavailable(Exception):
    """rapidocr or its bundled models cannot be loaded."""


def get_engine() -> Any:
    """The process-wide OCR engine: loading the ONNX models costs ~0.3 s and ~100 MB, so do it once."""
    global _ENGINE
    with _LOCK:
        if _ENGINE is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except Exception as exc:  # pragma: no cover - the dependency is declared
                raise OcrUnavailable(f"rapidocr not importable: {exc}") from exc
            _ENGINE = RapidOCR()
        return _ENGINE


def model_files() -> list[str]:
    """Paths of the ONNX models the engine loads: all inside the installed package (nothing is fetched)."""
    from pathlib import Path

    import rapidocr_onnxruntime

    root = Path(rapidocr_onnxruntime.__file__).parent
    return sorted(str(p) for p in root.rglob("*.onnx"))


@dataclass
class OcrBox:
    """One recognised text line in image pixels."""

    text: str
    score: float
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def h(self) -> float:
        return self.y1 - self.y0


@dataclass
class OcrPage:
    """OCR result of one page image: boxes in reading order, and whether every box was recognised."""

    index: int
    width: int
    height: int
    boxes: list[OcrBox] = field(default_factory=list)
    complete: bool = True
    elapsed: float = 0.0

    def lines(self) -> list[list[OcrBox]]:
        return group_lines(self.boxes)

    def text(self) -> str:
        return "\n".join(" ".join(b.text for b in line) for line in self.lines())


def prepare(img: Any, max_side: int = 1600) -> np.ndarray:
    """A PIL image or array as an RGB uint8 array no larger than `max_side` (OCR cost grows with pixels)."""
    if not isinstance(img, np.ndarray):
        if getattr(img, "mode", "RGB") != "RGB":
            img = img.convert("RGB")
        w, h = img.size
        if max(w, h) > max_side:
            s = max_side / max(w, h)
            from PIL import Image

            img = img.resize((max(1, int(w * s)), max(1, int(h * s))), Image.Resampling.BILINEAR)
        return np.asarray(img)
    return img


def drop_red(arr: np.ndarray) -> np.ndarray:
    """Grey image from the red channel with the light tones set to white.

    A red seal is light in the red channel and vanishes, while the black text it was stamped over stays
    black: a project name under the seal becomes readable, and the seal's own lettering no longer runs
    into the lines it touches.
    """
    r = arr[:, :, 0] if arr.ndim == 3 else arr
    paper = float(np.median(r[::8, ::8]))
    threshold = min(165.0, paper - 45.0)
    out = np.where(r > threshold, 255, r).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(out[:, :, None], 3, axis=2))


def detect(img: Any, max_side: int = 1600, *, top_fraction: float = 1.0) -> tuple[np.ndarray, list[Any]]:
    """The page as OCR sees it (seal red removed) and its text-line boxes, top-down.

    `top_fraction` < 1 detects in the upper part of the page only (a 承诺书 title), which also costs less.
    """
    eng = get_engine()
    arr = drop_red(prepare(img, max_side))
    if top_fraction < 1.0:
        arr = np.ascontiguousarray(arr[: max(1, int(arr.shape[0] * top_fraction))])
    dt_boxes, _ = eng.text_det(arr)
    if dt_boxes is None or len(dt_boxes) == 0:
        return arr, []
    return arr, list(eng.sorted_boxes(dt_boxes))


def recognize(arr: np.ndarray, boxes: list[Any], min_score: float = 0.5) -> list[OcrBox | None]:
    """Recognise the text in each detected box (None where the recogniser is not confident)."""
    if not boxes:
        return []
    eng = get_engine()
    crops = eng.get_crop_img_list(arr, boxes)
    rec, _ = eng.text_rec(crops)
    out: list[OcrBox | None] = []
    for pts, (txt, score) in zip(boxes, rec, strict=False):
        if not txt or float(score) < min_score:
            out.append(None)
            continue
        out.append(OcrBox(str(txt), float(score), *_bounds(pts)))
    return out


def _bounds(pts: Any) -> tuple[float, float, float, float]:
    return float(np.min(pts[:, 0])), float(np.min(pts[:, 1])), float(np.max(pts[:, 0])), float(np.max(pts[:, 1]))


def ocr_image(
    img: Any,
    *,
    index: int = 0,
    max_side: int = 1600,
    top_fraction: float = 1.0,
    stop: Callable[[list[OcrBox]], bool] | None = None,
    budget_s: float | None = None,
    batch: int = 8,
    min_boxes: int = 16,
) -> OcrPage:
    """Detect text lines, then recognise them top-down in small batches.

    `top_fraction` limits the page to its upper part (a 承诺书 title); `stop` ends early once the caller
    has what it needs; `budget_s` bounds the time spent per page once `min_boxes` lines are read (so a
    busy machine reads a cover in full all the same). Boxes not recognised make `complete` False.
    """
    t0 = time.perf_counter()
    arr, boxes = detect(img, max_side, top_fraction=top_fraction)
    h, w = arr.shape[:2]
    page = OcrPage(index=index, width=w, height=h, complete=top_fraction >= 1.0)
    for k in range(0, len(boxes), batch):
        page.boxes.extend(b for b in recognize(arr, boxes[k : k + batch]) if b is not None)
        if k + batch < len(boxes):
            if stop is not None and stop(page.boxes):
                page.complete = False
                break
            if budget_s is not None and k + batch >= min_boxes and time.perf_counter() - t0 > budget_s:
                page.complete = False
                break
    page.elapsed = time.perf_counter() - t0
    return page


# Table rows whose value a scan's key fields come from, by the label in the table's first column.
TABLE_TARGETS: dict[str, tuple[str, ...]] = {
    "org_name": ("单位名称",),
    "credit_code": ("统一社会信用代码",),
    "project_name": ("场景名称", "产品名称", "平台名称"),
}


def read_label_rows(
    img: Any,
    *,
    index: int = 1,
    targets: dict[str, tuple[str, ...]] | None = None,
    max_side: int = 1600,
    budget_s: float | None = None,
    batch: int = 8,
    max_labels: int = 48,
    min_labels: int = 24,
) -> tuple[OcrPage, dict[str, str]]:
    """Values of chosen table rows, recognising only what they need: a form page in ~1 s, not ~3 s.

    Detects every text line, recognises the short boxes of the table's label column top-down until each
    target label is found (labels wrap in narrow cells: 统一社会 / 信用代码), then only the value boxes on
    those rows, down to the next label. At most `max_labels` label boxes are read, which bounds the work;
    `budget_s` cuts it shorter only past `min_labels`, so that a busy machine gives the same answer.
    """
    targets = targets or TABLE_TARGETS
    t0 = time.perf_counter()
    arr, boxes = detect(img, max_side)
    h, w = arr.shape[:2]
    page = OcrPage(index=index, width=w, height=h, complete=False)
    found: dict[str, str] = {}
    if not boxes:
        page.elapsed = time.perf_counter() - t0
        return page, found
    spans = _deskewed(boxes, w)
    left = sorted(sp[0] for sp in spans)[len(spans) // 10]
    column = [i for i, sp in enumerate(spans) if sp[0] <= left + 0.04 * w and sp[2] - sp[0] <= 0.22 * w]
    labels: dict[int, OcrBox | None] = {}
    wanted = {key: [_compact(lbl) for lbl in lbls] for key, lbls in targets.items()}
    rows: dict[str, tuple[int, int, str]] = {}  # key -> (first, last column position, text after label)
    column = column[:max_labels]
    for k in range(0, len(column), batch):
        chunk = column[k : k + batch]
        for i, b in zip(chunk, recognize(arr, [boxes[i] for i in chunk]), strict=True):
            labels[i] = b
            if b is not None:
                page.boxes.append(b)
        _match_labels(column, labels, wanted, rows)
        if len(rows) == len(wanted):
            break
        if budget_s is not None and k + batch >= min_labels and time.perf_counter() - t0 > budget_s:
            break
    todo: list[tuple[str, int]] = []
    for key, (a, z, _) in rows.items():
        label_right = max(spans[column[j]][2] for j in range(a, z + 1))
        top = spans[column[a]][1]
        bottom = spans[column[z + 1]][1] if z + 1 < len(column) else top + 3 * (spans[column[a]][3] - top)
        line_h = spans[column[a]][3] - top
        for i, sp in enumerate(spans):
            cy = (sp[1] + sp[3]) / 2
            # (Detected boxes are loose: a label's box may reach over the start of its value's.)
            if (sp[0] + sp[2]) / 2 > label_right and top - 0.2 * line_h <= cy < bottom - 0.3 * line_h:
                todo.append((key, i))
    todo = todo[:24]  # bounds the work on a page whose rows are not what they seem
    values = recognize(arr, [boxes[i] for _, i in todo]) if todo else []
    parts: dict[str, list[OcrBox]] = {}
    for (key, _), b in zip(todo, values, strict=True):
        if b is not None:
            page.boxes.append(b)
            parts.setdefault(key, []).append(b)
    for key, (_, z, inline) in rows.items():
        lines = group_lines(parts.get(key, []))
        text = (inline + "".join(b.text for line in lines for b in line)).strip()
        if key == "credit_code" and repair_credit_code(text) is None:
            # 统一社会信用代码：9142... typed into a narrow label cell wraps on down the label column.
            more = column[z + 1 : z + 5]
            new = [i for i in more if i not in labels]
            for i, b in zip(new, recognize(arr, [boxes[i] for i in new]), strict=True):
                labels[i] = b
                if b is not None:
                    page.boxes.append(b)
            for i in more:
                b = labels.get(i)
                if b is None or not re.fullmatch(r"[0-9A-Za-z]+", _compact(b.text)):
                    break
                text += _compact(b.text)
        found[key] = text
    page.elapsed = time.perf_counter() - t0
    return page, found


def _deskewed(boxes: list[Any], width: int) -> list[tuple[float, float, float, float]]:
    """Box bounds with the page's skew taken out of the y axis, so that a row's cells line up (a scan
    tilted by 1° drifts 17 px over a 1000 px page: more than half a line)."""
    slopes = []
    for b in boxes:
        dx = float(b[1][0] - b[0][0])
        if dx > 0.2 * width:
            slopes.append(float(b[1][1] - b[0][1]) / dx)
    slope = sorted(slopes)[len(slopes) // 2] if slopes else 0.0
    out = []
    for b in boxes:
        x0, y0, x1, y1 = _bounds(b)
        shift = slope * (x0 + x1) / 2
        out.append((x0, y0 - shift, x1, y1 - shift))
    return out


def _compact(s: str) -> str:
    return re.sub(r"[\s:：_|]", "", s).replace("（", "(").replace("）", ")")


def _match_labels(
    column: list[int],
    labels: dict[int, OcrBox | None],
    wanted: dict[str, list[str]],
    rows: dict[str, tuple[int, int, str]],
) -> None:
    """Find each wanted label among consecutive label-column boxes (a label wraps over up to 4 lines)."""
    texts = [
        _compact(labels[i].text) if labels.get(i) is not None else None  # type: ignore[union-attr]
        for i in column
    ]
    for key, lbls in wanted.items():
        if key in rows:
            continue
        for a in range(len(texts)):
            joined = ""
            for z in range(a, min(a + 4, len(texts))):
                t = texts[z]
                if t is None:
                    break
                joined += t
                hit = next((lbl for lbl in lbls if joined.startswith(lbl)), None)
                if hit is not None:
                    rows[key] = (a, z, joined[len(hit) :])
                    break
                if not any(lbl.startswith(joined) for lbl in lbls):
                    break
            if key in rows:
                break


def group_lines(boxes: list[OcrBox]) -> list[list[OcrBox]]:
    """Boxes on the same visual line (vertical centres within half a line height), left to right."""
    out: list[list[OcrBox]] = []
    for b in sorted(boxes, key=lambda b: b.cy):
        if out:
            ref = out[-1]
            hh = max(max(x.h for x in ref), b.h, 1.0)
            if abs(sum(x.cy for x in ref) / len(ref) - b.cy) <= 0.5 * hh:
                ref.append(b)
                continue
        out.append([b])
    return [sorted(line, key=lambda b: b.x0) for line in out]


def pages_layout(pages: list[OcrPage]) -> Layout:
    """Layout from OCR pages: lines with several separate boxes become table rows (label | value)."""
    blocks: list[str | Table] = []
    rows: list[list[str]] = []
    for p in pages:
        for line in p.lines():
            if len(line) >= 2:
                rows.append([_fix(b.text) for b in line])
                continue
            if rows:
                blocks.append(Table(rows=rows))
                rows = []
            blocks.append(_fix(line[0].text))
        if rows:
            blocks.append(Table(rows=rows))
            rows = []
    return Layout(blocks=blocks, source="ocr")


def table_one_done(boxes: list[OcrBox]) -> bool:
    """Stop condition for a table-一 page: the org name row and a credit code have been read."""
    text = "".join(b.text for b in boxes)
    return "单位名称" in text and find_credit_code(text) is not None


def commitment_title(boxes: list[OcrBox]) -> bool:
    """A 承诺书 title among the recognised lines (spaced titles are OCR'd as 承 诺 书)."""
    return any("承诺书" in b.text.replace(" ", "") for b in boxes)


def _fix(s: str) -> str:
    # OCR reads the empty tick box as 口 (the character "mouth") and brackets as ASCII.
    return s.strip()


# ---------------------------------------------------------------- key fields from OCR text

USCC_RE = re.compile(r"[0-9A-HJ-NP-RTUWXY]{2}\d{6}[0-9A-HJ-NP-RTUWXY]{10}")
_OCR_CODE_FIX = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "Z": "2", "S": "5", "V": "U"})
# "(加盖公章)" after the unit's name; under a seal OCR often misreads its end, so drop from "(加" on.
_SEAL_NOTE = re.compile(r"[（(]\s*(加\s*盖|盖\s*章|公\s*章).*$")
_LABEL_TAIL = re.compile(r"^[\s:：_\-—|「」\[\]]+|[\s_\-—|「」]+$")

COVER_LABELS = {
    "applicant": ("申报单位",),
    "project_name": ("案例名称", "产品名称", "平台名称", "场景名称"),
}
TABLE_LABELS = {"org_name": ("单位名称",), "credit_code": ("统一社会信用代码", "社会信用代码", "信用代码")}


def find_credit_code(text: str) -> str | None:
    """An 18-character unified social credit code in OCR text, repairing look-alike letters."""
    compact = re.sub(r"[\s·.]", "", text).upper()
    m = USCC_RE.search(compact)
    if m:
        return m.group(0)
    fixed = compact.translate(_OCR_CODE_FIX)
    m = USCC_RE.search(fixed)
    return m.group(0) if m else None


def _value_after(line: list[OcrBox], label: str) -> str:
    joined = " ".join(b.text for b in line)
    i = joined.replace(" ", "").find(label)
    if i < 0:
        return ""
    # Position in the spaced string: walk characters skipping spaces.
    seen = 0
    pos = len(joined)
    for k, ch in enumerate(joined):
        if ch != " ":
            if seen == i + len(label):
                pos = k
                break
            seen += 1
    value = _SEAL_NOTE.sub("", joined[pos:])
    return _LABEL_TAIL.sub("", value).strip()


# Characters OCR takes for one another in printed codes, and what each may really be. Letters the code
# alphabet leaves out (I O Z S V) are always a misreading.
_CODE_CONFUSIONS = {
    "0": "DQU", "D": "0", "Q": "0", "U": "0V", "O": "0DQ", "8": "B", "B": "8", "6": "G", "G": "6C",
    "C": "G", "1": "LT", "L": "1", "T": "71", "7": "T", "I": "1LT", "4": "A", "A": "4", "2": "Z", "Z": "2",
    "5": "S", "S": "5", "V": "UY", "Y": "V",
}  # fmt: skip
_CODE_DEPT = "123456789ANY"


def _code_allowed(pos: int, c: str) -> bool:
    from parsers.validators import USCC_ALPHABET

    if pos == 0:
        return c in _CODE_DEPT
    if 2 <= pos <= 7:
        return c.isdigit()
    return c in USCC_ALPHABET


def repair_credit_code(raw: str) -> str | None:
    """The credit code OCR read, with look-alike characters put right where the GB 32100 check says so.

    A code that validates as read is kept. Otherwise each misreading the alphabet rules out (O, I, Z, S,
    V; a letter among the six region digits) is replaced, then single look-alike swaps (0/D/Q, 8/B, 6/G,
    1/L/T, ...) are tried and a repair is taken only when exactly one candidate validates; else the code
    stays as read, for the checksum check to flag. None when no 18-character code is there.
    """
    from parsers.validators import is_valid_credit_code

    s = re.sub(r"[^0-9A-Z]", "", unicodedata.normalize("NFKC", raw).upper())
    if len(s) < 18:
        return None
    windows = [s[i : i + 18] for i in range(len(s) - 17)]
    for w in windows:
        if is_valid_credit_code(w):
            return w
    best: str | None = None
    for w in windows:
        options = []
        for pos, c in enumerate(w):
            alts = [a for a in (c, *_CODE_CONFUSIONS.get(c, "")) if _code_allowed(pos, a)]
            if not alts:
                break
            options.append(alts)
        else:
            base = [alts[0] for alts in options]
            if is_valid_credit_code("".join(base)):
                return "".join(base)
            if best is None:
                best = "".join(base)
            # One swap only: with two, a wrong code validates by chance too often (1 in 31 per candidate).
            hits = {cand for cand in _swaps(base, options, 1) if is_valid_credit_code(cand)}
            if len(hits) == 1:
                return hits.pop()
    return best


def _swaps(base: list[str], options: list[list[str]], n: int) -> Iterator[str]:
    positions = [i for i, alts in enumerate(options) if len(alts) > 1]
    for combo in itertools.combinations(positions, n):
        for picks in itertools.product(*(options[i][1:] for i in combo)):
            cand = list(base)
            for i, c in zip(combo, picks, strict=True):
                cand[i] = c
            yield "".join(cand)


_CJK_SPACE = re.compile(r"(?<=[\u3400-\u9fff（）])\s+(?=[\u3400-\u9fff（）])")


def clean_name(text: str) -> str:
    """A unit or project name as printed: no seal note, CJK brackets full-width, no spaces OCR put between
    Chinese characters, no stray punctuation at the ends."""
    s = _SEAL_NOTE.sub("", text)
    s = re.sub(r"\(([\u3400-\u9fff]{1,8})\)", r"（\1）", s)
    s = _CJK_SPACE.sub("", s.strip())
    return _LABEL_TAIL.sub("", s).strip(" ：:，,。.、;；")


# Lines that start a cover entry of their own: a project name wrapped onto the next line stops there.
_COVER_STARTS = ("申报单位", "联合申报单位", "案例名称", "产品名称", "平台名称", "场景名称", "单位地址", "申报日期",
                 "武汉市经济和信息化局")  # fmt: skip


def _line_text(line: list[OcrBox]) -> str:
    return " ".join(b.text for b in line)


def cover_fields(pages: list[OcrPage]) -> dict[str, str]:
    """applicant and project_name from the cover page's `label value` lines (a long value wraps on)."""
    out: dict[str, str] = {}
    lines = [line for p in pages if p.index == 0 for line in p.lines()]
    for k, line in enumerate(lines):
        compact = "".join(b.text for b in line).replace(" ", "")
        for key, labels in COVER_LABELS.items():
            if key in out:
                continue
            label = next((lb for lb in labels if compact.startswith(lb)), None)
            if label is None:
                continue
            val = _value_after(line, label)
            j = k + 1
            while key == "project_name" and j < len(lines) and _continues(lines[j - 1], lines[j]):
                val += _line_text(lines[j])
                j += 1
            val = clean_name(val)
            if val:
                out[key] = val
            break
    return out


def _continues(prev: list[OcrBox], nxt: list[OcrBox]) -> bool:
    """A wrapped line follows at line pitch; the next cover entry follows after paragraph spacing."""
    h = max(b.h for b in prev)
    pitch = min(b.y0 for b in nxt) - min(b.y0 for b in prev)
    start = "".join(b.text for b in nxt).replace(" ", "")
    return pitch < 1.3 * h and not start.startswith(_COVER_STARTS) and not _SEAL_NOTE.match(start)


def _prefer(table: str | None, cover: str | None) -> str | None:
    """The table cell's reading, unless the cover's shows that the cell lost a wrapped part of it."""
    if not table or not cover or table == cover:
        return table or cover
    if table in cover:
        return cover
    return table


def scan_key_fields(pages: list[OcrPage], table: dict[str, str] | None = None) -> dict[str, str]:
    """applicant / project_name / org_name / credit_code of a scanned form.

    `table` holds what `read_label_rows` read from table 一 / 二 (单位名称, 统一社会信用代码, 场景名称 /
    产品名称 / 平台名称): the cells isolate the values, so they are preferred, and the cover lines
    (申报单位, 案例名称 / 产品名称) confirm them or fill in; the credit code is repaired against its check
    character. Lines of the given pages are the fallback for anything the table reader missed.
    """
    table = table or {}
    cover = cover_fields(pages)
    lines_read = _line_key_fields(pages)
    out: dict[str, str] = {}
    if cover.get("applicant"):
        out["applicant"] = cover["applicant"]
    org = _prefer(clean_name(table.get("org_name", "")) or lines_read.get("org_name"), cover.get("applicant"))
    if org:
        out["org_name"] = org
    project = _prefer(clean_name(table.get("project_name", "")), cover.get("project_name"))
    project = project or lines_read.get("project_name")
    if project:
        out["project_name"] = project
    code = repair_credit_code(table.get("credit_code", "")) if table.get("credit_code") else None
    code = code or lines_read.get("credit_code")
    if code:
        out["credit_code"] = repair_credit_code(code) or code
    return out


def _line_key_fields(pages: list[OcrPage]) -> dict[str, str]:
    """Key fields from whole OCR lines (`label value` on one line), as a fallback."""
    out: dict[str, str] = {}
    lines = [line for p in pages for line in p.lines()]
    for k, line in enumerate(lines):
        compact = "".join(b.text for b in line).replace(" ", "")
        for key, labels in {"project_name": COVER_LABELS["project_name"], **TABLE_LABELS}.items():
            if key in out:
                continue
            for label in labels:
                if label not in compact:
                    continue
                if key == "credit_code":
                    code = find_credit_code(compact.split(label, 1)[1])
                    if not code and k + 1 < len(lines):
                        code = find_credit_code("".join(b.text for b in lines[k + 1]))
                    if code:
                        out[key] = code
                    break
                val = clean_name(_value_after(line, label))
                if val:
                    out[key] = val
                break
    if "credit_code" not in out:
        # Narrow label cells wrap 统一社会信用代码 over two lines; the code itself is distinctive enough.
        for line in lines:
            code = find_credit_code("".join(b.text for b in line))
            if code:
                out["credit_code"] = code
                break
    return out
