"""OCR of page images with rapidocr (models inside the wheel), budgeted, plus key fields from OCR lines."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
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


def ocr_image(
    img: Any,
    *,
    index: int = 0,
    max_side: int = 1600,
    top_fraction: float = 1.0,
    stop: Callable[[list[OcrBox]], bool] | None = None,
    budget_s: float | None = None,
    batch: int = 8,
) -> OcrPage:
    """Detect text lines, then recognise them top-down in small batches.

    `top_fraction` limits recognition to the upper part of the page (a 承诺书 title); `stop` ends early once
    the caller has what it needs (the table-一 rows); `budget_s` bounds the time spent per page. Boxes not
    recognised make `complete` False.
    """
    t0 = time.perf_counter()
    eng = get_engine()
    arr = prepare(img, max_side)
    # RapidOCR expects BGR like cv2.imread gives.
    arr = np.ascontiguousarray(arr[:, :, ::-1])
    h, w = arr.shape[:2]
    page = OcrPage(index=index, width=w, height=h)
    dt_boxes, _ = eng.text_det(arr)
    if dt_boxes is None or len(dt_boxes) == 0:
        page.elapsed = time.perf_counter() - t0
        return page
    boxes = eng.sorted_boxes(dt_boxes)
    limit_y = h * top_fraction
    boxes = [b for b in boxes if float(np.min(b[:, 1])) <= limit_y]
    if len(boxes) < len(dt_boxes):
        page.complete = False
    for k in range(0, len(boxes), batch):
        chunk = boxes[k : k + batch]
        crops = eng.get_crop_img_list(arr, chunk)
        rec, _ = eng.text_rec(crops)
        for pts, (txt, score) in zip(chunk, rec, strict=False):
            if not txt or float(score) < 0.5:
                continue
            page.boxes.append(
                OcrBox(
                    str(txt),
                    float(score),
                    float(np.min(pts[:, 0])),
                    float(np.min(pts[:, 1])),
                    float(np.max(pts[:, 0])),
                    float(np.max(pts[:, 1])),
                )
            )
        if k + batch < len(boxes):
            if stop is not None and stop(page.boxes):
                page.complete = False
                break
            if budget_s is not None and time.perf_counter() - t0 > budget_s:
                page.complete = False
                break
    page.elapsed = time.perf_counter() - t0
    return page


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


def scan_key_fields(pages: list[OcrPage]) -> dict[str, str]:
    """applicant / project_name / org_name / credit_code read from OCR lines of the cover and table 一."""
    out: dict[str, str] = {}
    lines = [line for p in pages for line in p.lines()]
    for k, line in enumerate(lines):
        compact = "".join(b.text for b in line).replace(" ", "")
        for key, labels in {**COVER_LABELS, **TABLE_LABELS}.items():
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
                if key == "applicant" and compact.startswith("联合"):
                    break
                val = _value_after(line, label)
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
