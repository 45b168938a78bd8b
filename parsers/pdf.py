"""Read PDFs with pdfium: positioned glyphs and ruling lines into a Layout of tables and paragraphs."""

from __future__ import annotations

import ctypes
import itertools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from parsers.layout import TICKED, UNTICKED, Layout, Table


class PdfError(Exception):
    """The PDF cannot be read at all; the message is the reason in words."""


# Tick marks as they appear in Unicode text layers.
_TICK_MAP = {
    "☑": TICKED, "☒": TICKED, "■": TICKED, "√": TICKED, "✓": TICKED, "✔": TICKED, "▣": TICKED,
    "✅": TICKED, "⊠": TICKED,
    "☐": UNTICKED, "□": UNTICKED, "▢": UNTICKED, "◻": UNTICKED, "❑": UNTICKED, "❒": UNTICKED,
}  # fmt: skip
# Symbol fonts without a ToUnicode map: pdfium reports their codes in the F0xx private-use block (or as
# the bare Latin-1 code). Wingdings: o/q/¨ empty boxes, þ ticked box, ý crossed box, ü tick;
# Wingdings 2: R ticked box, T crossed box, £ empty box.
_WINGDINGS = {0x6F: UNTICKED, 0x71: UNTICKED, 0xA8: UNTICKED, 0xFE: TICKED, 0xFD: TICKED, 0xFC: TICKED}
_WINGDINGS2 = {0x52: TICKED, 0x54: TICKED, 0xA3: UNTICKED, 0x2A: UNTICKED}
_PUA_TICKS = {0xF000 + k: v for k, v in {**_WINGDINGS, **_WINGDINGS2}.items()}
_SYMBOL_CANDIDATES = {chr(k) for k in set(_WINGDINGS) | set(_WINGDINGS2)}

_PAGE_NUMBER = re.compile(r"^[-—–·\s]*(第\s*)?\d{1,4}(\s*页)?(\s*[/／共]\s*\d{1,4}\s*页?)?[-—–·\s]*$")
_SPACED = re.compile(r"^(?:[\u3400-\u9fff\uf900-\ufaff（）()、]\s+){2,}[\u3400-\u9fff\uf900-\ufaff（）()、]$")


@dataclass
class Char:
    """One glyph on a page, in top-down page coordinates (points)."""

    c: str
    x0: float
    top: float
    x1: float
    bottom: float

    @property
    def h(self) -> float:
        return self.bottom - self.top

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.top + self.bottom) / 2


@dataclass
class PageInfo:
    """What one page holds, for deciding between text extraction, OCR and seal detection."""

    index: int
    width: float
    height: float
    chars: int = 0  # real (non-space) characters with usable Unicode
    bad_chars: int = 0  # unmapped / replacement / private-use glyphs
    image_area: float = 0.0  # fraction of the page covered by images
    max_image_pixels: int = 0
    red_paths: int = 0  # red vector objects: an electronic seal drawn as paths
    paths: int = 0

    @property
    def needs_ocr(self) -> bool:
        """No usable text layer: a scan, text converted to outlines, or a font pdfium cannot map."""
        if self.chars < 10:
            return self.image_area > 0.05 or self.paths > 50 or self.bad_chars > 0
        return self.bad_chars > self.chars

    @property
    def has_images(self) -> bool:
        return self.image_area > 0.01


@dataclass
class PdfText:
    """The text side of a PDF: a Layout, plain text per page, and per-page facts."""

    pages: int
    layout: Layout
    page_texts: list[str]
    info: list[PageInfo]
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.page_texts)

    @property
    def scan_pages(self) -> list[int]:
        return [p.index for p in self.info if p.needs_ocr]

    @property
    def is_scan(self) -> bool:
        """Most pages have no usable text layer (SPEC format pdf_scan)."""
        if not self.info:
            return False
        return len(self.scan_pages) * 2 > len(self.info)


def open_pdf(data: bytes) -> pdfium.PdfDocument:
    """Open with pdfium, turning its failures into PdfError with a reason staff can act on."""
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower():
            raise PdfError("加密文件，无法打开 (encrypted PDF)") from None
        if "format" in msg.lower() or "file" in msg.lower():
            raise PdfError(f"damaged or not a PDF ({msg})") from None
        raise PdfError(f"unreadable PDF ({msg})") from None


def read_pdf(data: bytes | pdfium.PdfDocument, *, max_pages: int = 300, max_chars: int = 400_000) -> PdfText:
    """Read the text layer of every page (up to `max_pages`) into a Layout with tables and paragraphs."""
    pdf = open_pdf(bytes(data)) if isinstance(data, bytes | bytearray) else data
    n = len(pdf)
    warnings: list[str] = []
    if n == 0:
        raise PdfError("PDF has no pages")
    if n > max_pages:
        warnings.append(f"only the first {max_pages} of {n} pages were read")
    blocks: list[str | Table] = []
    page_texts: list[str] = []
    infos: list[PageInfo] = []
    total = 0
    prev_flow: _PageFlow | None = None
    edges: dict[int, list[list[_CellEdge]]] = {}
    for i in range(min(n, max_pages)):
        try:
            page = pdf[i]
        except pdfium.PdfiumError as exc:
            warnings.append(f"page {i + 1} unreadable ({exc})")
            continue
        try:
            info, pblocks, flow, pedges = _read_page(page, i)
        finally:
            page.close()
        infos.append(info)
        if total < max_chars:
            edges.update(pedges)
            last = prev_flow.last if prev_flow is not None else None
            if (
                prev_flow is not None
                and last is not None
                and flow.first is not None
                and blocks
                and pblocks
                and isinstance(blocks[-1], str)
                and isinstance(pblocks[0], str)
                and _wrapped(last, flow.first, prev_flow.right)
            ):
                # A paragraph running over the page break is one paragraph in the Word original.
                head = pblocks.pop(0)
                assert isinstance(head, str)
                blocks[-1] = blocks[-1] + _wrap_sep(last, flow.first, prev_flow.left, prev_flow.right) + head
            prev_flow = flow
            _merge_continued_table(blocks, pblocks, edges)
            ptext = Layout(blocks=pblocks).text()
            page_texts.append(ptext)
            total += len(ptext)
        else:
            page_texts.append("")
    if total >= max_chars:
        warnings.append(f"text cut at {max_chars} characters")
    return PdfText(pages=n, layout=Layout(blocks=blocks, source="pdf_text"), page_texts=page_texts,
                   info=infos, warnings=warnings)  # fmt: skip


# ---------------------------------------------------------------- characters


def _font_name(tp: Any, i: int) -> str:
    buf = ctypes.create_string_buffer(128)
    flags = ctypes.c_int()
    n = pdfium_c.FPDFText_GetFontInfo(tp, i, buf, 128, ctypes.byref(flags))
    return buf.raw[: max(n - 1, 0)].decode("latin-1", "replace") if n else ""


class _Xform:
    """PDF user space (origin bottom-left, unrotated) to display space (origin top-left, /Rotate applied)."""

    def __init__(self, page: pdfium.PdfPage) -> None:
        try:
            x0, y0, x1, y1 = page.get_cropbox()
        except Exception:
            w, h = page.get_size()
            x0, y0, x1, y1 = 0.0, 0.0, w, h
        self.x0, self.y0 = x0, y0
        self.w, self.h = x1 - x0, y1 - y0
        self.rot = page.get_rotation() % 360

    def pt(self, x: float, y: float) -> tuple[float, float]:
        x -= self.x0
        y -= self.y0
        if self.rot == 90:
            return y, x
        if self.rot == 180:
            return self.w - x, y
        if self.rot == 270:
            return self.h - y, self.w - x
        return x, self.h - y

    def box(self, left: float, bottom: float, right: float, top: float) -> tuple[float, float, float, float]:
        ax, ay = self.pt(left, bottom)
        bx, by = self.pt(right, top)
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def _page_chars(page: pdfium.PdfPage, xf: _Xform, info: PageInfo) -> list[Char]:
    textpage = page.get_textpage()
    tp = textpage.raw
    n = pdfium_c.FPDFText_CountChars(tp)
    out: list[Char] = []
    rect = pdfium_c.FS_RECTF()
    get_u = pdfium_c.FPDFText_GetUnicode
    get_box = pdfium_c.FPDFText_GetLooseCharBox
    for i in range(min(n, 200_000)):
        u = get_u(tp, i)
        if u in (0x20, 0x0D, 0x0A, 0x09, 0x3000, 0xA0, 0xFEFF):
            continue
        if u == 0x02:
            # pdfium reports a hyphen that ends a line as 0x02 (a guessed soft hyphen); in a form the hyphen
            # is the applicant's (DeepSeek-R1, 027-8531...), so keep the glyph that is drawn.
            u = 0x2D
        if u in (0, 0xFFFD, 0xFFFF) or u < 0x20:
            info.bad_chars += 1
            continue
        c = chr(u)
        if u in _PUA_TICKS:
            c = _PUA_TICKS[u]
        elif c in _TICK_MAP:
            c = _TICK_MAP[c]
        elif c in _SYMBOL_CANDIDATES:
            font = _font_name(tp, i).lower()
            if "wingdings2" in font.replace(" ", "").replace("-", ""):
                c = {chr(k): v for k, v in _WINGDINGS2.items()}.get(c, c)
            elif "wingdings" in font:
                c = {chr(k): v for k, v in _WINGDINGS.items()}.get(c, c)
        elif 0xE000 <= u <= 0xF8FF:
            info.bad_chars += 1
        elif 0x2E80 <= u <= 0x2FDF or 0xF900 <= u <= 0xFAFF:
            # Kangxi radicals / compatibility ideographs that fonts map instead of the unified ideograph.
            c = unicodedata.normalize("NFKC", c)
        if not get_box(tp, i, ctypes.byref(rect)):
            continue
        out.append(Char(c, *xf.box(rect.left, rect.bottom, rect.right, rect.top)))
    textpage.close()
    out = dedupe_chars(out)
    info.chars = sum(1 for ch in out if not ("\ue000" <= ch.c <= "\uf8ff"))
    return out


def dedupe_chars(chars: list[Char], tol: float = 0.35) -> list[Char]:
    """Drop fake-bold duplicates: the same glyph drawn again at (almost) the same position.

    Word processors fake bold CJK by overprinting each character 2-4 times with a tiny offset; every copy
    is in the text layer (pdfplumber issue 842).
    """
    if len(chars) < 2:
        return chars
    grid: dict[tuple[str, int, int], list[Char]] = {}
    out: list[Char] = []
    for ch in chars:
        w = max(ch.x1 - ch.x0, 1.0)
        h = max(ch.h, 1.0)
        gx, gy = int(ch.x0 // w), int(ch.top // h)
        dup = False
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for o in grid.get((ch.c, gx + dx, gy + dy), ()):
                    if abs(o.x0 - ch.x0) < tol * w and abs(o.top - ch.top) < tol * h:
                        dup = True
                        break
                if dup:
                    break
            if dup:
                break
        if not dup:
            grid.setdefault((ch.c, gx, gy), []).append(ch)
            out.append(ch)
    return out


# ---------------------------------------------------------------- ruling lines and tables


@dataclass
class _Seg:
    horizontal: bool
    pos: float  # y for horizontal, x for vertical (top-down coordinates)
    a: float  # start along the line
    b: float  # end along the line


_Box = tuple[float, float, float, float]


def _page_graphics(
    page: pdfium.PdfPage, xf: _Xform, info: PageInfo
) -> tuple[list[_Seg], list[tuple[float, float, float, float, bool]]]:
    """Ruling lines for table detection, and check boxes drawn as small squares (with their tick state)."""
    segs: list[_Seg] = []
    squares: list[_Box] = []
    marks: list[_Box] = []
    area = max(info.width * info.height, 1.0)
    img_area = 0.0
    count = 0
    fill = ctypes.c_int()
    stroke = ctypes.c_int()
    r, g, b, a = (ctypes.c_uint() for _ in range(4))
    x = ctypes.c_float()
    y = ctypes.c_float()
    for obj in page.get_objects(max_depth=3):
        count += 1
        if count > 50_000:
            break
        t = obj.type
        if t == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            try:
                l_, b_, r_, t_ = obj.get_bounds()
                img_area += max(0.0, (r_ - l_) * (t_ - b_))
                if isinstance(obj, pdfium.PdfImage):
                    w, h = obj.get_px_size()
                    info.max_image_pixels = max(info.max_image_pixels, int(w) * int(h))
            except Exception:  # a broken image dictionary only loses this hint
                pass
            continue
        if t != pdfium_c.FPDF_PAGEOBJ_PATH:
            continue
        info.paths += 1
        raw = obj.raw
        pdfium_c.FPDFPath_GetDrawMode(raw, ctypes.byref(fill), ctypes.byref(stroke))
        rgba = (ctypes.byref(r), ctypes.byref(g), ctypes.byref(b), ctypes.byref(a))
        if (fill.value and pdfium_c.FPDFPageObj_GetFillColor(raw, *rgba) and _red(r, g, b)) or (
            stroke.value and pdfium_c.FPDFPageObj_GetStrokeColor(raw, *rgba) and _red(r, g, b)
        ):
            info.red_paths += 1
        nseg = pdfium_c.FPDFPath_CountSegments(raw)
        if nseg <= 0 or nseg > 400:
            continue
        m = obj.get_matrix()
        pts: list[tuple[float, float, int, bool]] = []
        for k in range(nseg):
            sg = pdfium_c.FPDFPath_GetPathSegment(raw, k)
            pdfium_c.FPDFPathSegment_GetPoint(sg, ctypes.byref(x), ctypes.byref(y))
            px = m.a * x.value + m.c * y.value + m.e
            py = m.b * x.value + m.d * y.value + m.f
            dx, dy = xf.pt(px, py)
            pts.append(
                (dx, dy, pdfium_c.FPDFPathSegment_GetType(sg), bool(pdfium_c.FPDFPathSegment_GetClose(sg)))
            )
        xs = [q[0] for q in pts]
        ys = [q[1] for q in pts]
        bbox = (min(xs), min(ys), max(xs), max(ys))
        if stroke.value and _is_square(pts):
            # A form check box: its sides are not table borders.
            squares.append(bbox)
            continue
        if bbox[2] - bbox[0] <= 20 and bbox[3] - bbox[1] <= 20:
            marks.append(bbox)
        _path_to_segments(pts, bool(stroke.value), bool(fill.value), segs)
    info.image_area = min(img_area / area, 1.0)
    boxes = [
        (*sq, any(sq[0] - 1 <= m[0] and m[2] <= sq[2] + 1 and sq[1] - 1 <= m[1] and m[3] <= sq[3] + 1 for m in marks))
        for sq in squares
    ]
    return segs, boxes


def _is_square(pts: list[tuple[float, float, int, bool]]) -> bool:
    """A closed axis-aligned square of text size (4-20 pt): how form check boxes are drawn."""
    if not 4 <= len(pts) <= 6:
        return False
    xs = _cluster([q[0] for q in pts], 0.6)
    ys = _cluster([q[1] for q in pts], 0.6)
    if len(xs) != 2 or len(ys) != 2:
        return False
    w, h = xs[1] - xs[0], ys[1] - ys[0]
    closed = pts[-1][3] or (abs(pts[-1][0] - pts[0][0]) < 0.6 and abs(pts[-1][1] - pts[0][1]) < 0.6)
    return closed and 4 <= w <= 20 and 4 <= h <= 20 and abs(w - h) <= 0.25 * max(w, h)


def _red(r: ctypes.c_uint, g: ctypes.c_uint, b: ctypes.c_uint) -> bool:
    return r.value > 150 and g.value < 110 and b.value < 110 and r.value - max(g.value, b.value) > 80


def _path_to_segments(
    pts: list[tuple[float, float, int, bool]], stroked: bool, filled: bool, out: list[_Seg]
) -> None:
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    w = max(xs) - min(xs)
    h = max(ys) - min(ys)
    if filled and not stroked:
        # Borders exported as thin filled rectangles: keep their centre line; big fills are shading.
        if h <= 3 and w > 3:
            out.append(_Seg(True, (max(ys) + min(ys)) / 2, min(xs), max(xs)))
        elif w <= 3 and h > 3:
            out.append(_Seg(False, (max(xs) + min(xs)) / 2, min(ys), max(ys)))
        return
    if not stroked:
        return
    start: tuple[float, float] | None = None
    prev: tuple[float, float] | None = None
    for px, py, typ, close in pts:
        if typ == pdfium_c.FPDF_SEGMENT_MOVETO or prev is None:
            start = prev = (px, py)
            continue
        if typ == pdfium_c.FPDF_SEGMENT_LINETO:
            _add_line(prev, (px, py), out)
        prev = (px, py)
        if close and start is not None:
            _add_line(prev, start, out)
            prev = start


def _add_line(p: tuple[float, float], q: tuple[float, float], out: list[_Seg]) -> None:
    (x0, y0), (x1, y1) = p, q
    if abs(y0 - y1) <= 1.0 and abs(x1 - x0) > 2:
        out.append(_Seg(True, (y0 + y1) / 2, min(x0, x1), max(x0, x1)))
    elif abs(x0 - x1) <= 1.0 and abs(y1 - y0) > 2:
        out.append(_Seg(False, (x0 + x1) / 2, min(y0, y1), max(y0, y1)))


@dataclass
class _Cell:
    x0: float
    top: float
    x1: float
    bottom: float
    row: int
    chars: list[Char] = field(default_factory=list)


@dataclass
class _GridTable:
    x0: float
    top: float
    x1: float
    bottom: float
    cells: list[_Cell]


def _cluster(values: Iterable[float], tol: float = 2.0) -> list[float]:
    out: list[float] = []
    for v in sorted(values):
        if out and v - out[-1] <= tol:
            continue
        out.append(v)
    return out


def _find_tables(segs: list[_Seg]) -> list[_GridTable]:
    if len(segs) < 4:
        return []
    # Connected groups of lines (with a little slack: borders of adjacent cells rarely meet exactly).
    tol = 2.5
    parent = list(range(len(segs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    hs = [i for i, s in enumerate(segs) if s.horizontal]
    vs = [i for i, s in enumerate(segs) if not s.horizontal]
    if not hs or not vs or len(hs) * len(vs) > 400_000:
        return []
    for i in hs:
        h = segs[i]
        for j in vs:
            v = segs[j]
            if h.a - tol <= v.pos <= h.b + tol and v.a - tol <= h.pos <= v.b + tol:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[ri] = rj
    groups: dict[int, list[_Seg]] = {}
    for i, s in enumerate(segs):
        groups.setdefault(find(i), []).append(s)
    tables: list[_GridTable] = []
    for group in groups.values():
        gh = [s for s in group if s.horizontal]
        gv = [s for s in group if not s.horizontal]
        if len(gh) < 2 or len(gv) < 2:
            continue
        t = _grid_from_lines(gh, gv, tol)
        if t is not None:
            tables.append(t)
    tables.sort(key=lambda t: t.top)
    return tables


def _grid_from_lines(gh: list[_Seg], gv: list[_Seg], tol: float) -> _GridTable | None:
    ys = _cluster([s.pos for s in gh])
    xs = _cluster([s.pos for s in gv])
    if len(ys) < 2 or len(xs) < 2 or len(ys) * len(xs) > 20_000:
        return None

    def covered_h(y: float, xa: float, xb: float) -> bool:
        mid = (xa + xb) / 2
        return any(abs(s.pos - y) <= tol and s.a - tol <= mid <= s.b + tol for s in gh)

    def covered_v(x: float, ya: float, yb: float) -> bool:
        mid = (ya + yb) / 2
        return any(abs(s.pos - x) <= tol and s.a - tol <= mid <= s.b + tol for s in gv)

    nr, nc = len(ys) - 1, len(xs) - 1
    # Grid slots merged into cells by the absence of a border between them (union-find over slots).
    parent = list(range(nr * nc))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(nr):
        for j in range(nc):
            if j + 1 < nc and not covered_v(xs[j + 1], ys[i], ys[i + 1]):
                parent[find(i * nc + j)] = find(i * nc + j + 1)
            if i + 1 < nr and not covered_h(ys[i + 1], xs[j], xs[j + 1]):
                parent[find(i * nc + j)] = find((i + 1) * nc + j)
    # A slot with no border at all on its outer side lies outside the table (ragged tables).
    boxes: dict[int, list[int]] = {}
    for i in range(nr):
        for j in range(nc):
            root = find(i * nc + j)
            b = boxes.setdefault(root, [i, j, i, j])
            b[0], b[1] = min(b[0], i), min(b[1], j)
            b[2], b[3] = max(b[2], i), max(b[3], j)
    cells: list[_Cell] = []
    for r0, c0, r1, c1 in boxes.values():
        x0, x1, top, bottom = xs[c0], xs[c1 + 1], ys[r0], ys[r1 + 1]
        # Keep only slots enclosed by borders on the top and left (drops the void around ragged grids).
        if not (covered_h(top, x0, x1) or covered_v(x0, top, bottom)):
            continue
        cells.append(_Cell(x0, top, x1, bottom, row=r0))
    if len(cells) < 2:
        return None
    return _GridTable(xs[0], ys[0], xs[-1], ys[-1], cells)


# ---------------------------------------------------------------- lines and paragraphs


def _is_cjk(c: str) -> bool:
    o = ord(c)
    return (
        0x3000 <= o <= 0x303F
        or 0x3400 <= o <= 0x9FFF
        or 0xF900 <= o <= 0xFAFF
        or 0xFF00 <= o <= 0xFFEF
        or 0x20000 <= o <= 0x3FFFF
        or c in (TICKED, UNTICKED)
    )


def _lines(chars: list[Char]) -> list[list[Char]]:
    if not chars:
        return []
    chars = sorted(chars, key=lambda c: c.cy)
    lines: list[list[Char]] = []
    cur: list[Char] = [chars[0]]
    cy = chars[0].cy
    h = max(chars[0].h, 1.0)
    for ch in chars[1:]:
        if abs(ch.cy - cy) <= 0.45 * max(h, ch.h):
            cur.append(ch)
        else:
            lines.append(_in_order(cur))
            cur = [ch]
            cy, h = ch.cy, max(ch.h, 1.0)
    lines.append(_in_order(cur))
    return lines


def _in_order(line: list[Char]) -> list[Char]:
    """A line's glyphs left to right; where runs overlap (Writer misplaces a run after a bold one, or a
    line overflowing its cell runs over the next cell's text), each run stays whole, in the order the
    runs start."""
    line = sorted(line, key=lambda c: c.x0)
    if all(b.x0 >= a.x1 - 0.3 * (a.x1 - a.x0) for a, b in itertools.pairwise(line)):
        return line
    return [c for chain in sorted(_chains(line), key=lambda ch: ch[0].x0) for c in chain]


def _line_text(line: list[Char]) -> str:
    parts: list[str] = [line[0].c]
    for a, b in itertools.pairwise(line):
        gap = b.x0 - a.x1
        h = max(a.h, b.h, 1.0)
        if a.c in (TICKED, UNTICKED):
            pass  # a box belongs to the option text after it
        elif b.c in (TICKED, UNTICKED) and gap > 0.1 * h:
            parts.append(" ")
        elif _is_cjk(a.c) or _is_cjk(b.c):
            # CJK text is set solid; Writer/Word add ~0.22 h between CJK and Latin runs that is not a
            # space in the source, while a typed space measures ~0.34 h.
            if gap > 0.28 * h:
                parts.append(" ")
        elif gap > 0.12 * h:
            parts.append(" ")
        parts.append(b.c)
    return fix_text("".join(parts))


_MOJIBAKE = re.compile(r"[\u00a1-\u00fe]")


def fix_text(s: str) -> str:
    """Undo text-layer damage: spaced-out CJK titles, GBK bytes shown as Latin-1."""
    if _SPACED.match(s):
        s = re.sub(r"\s+", "", s)
    if len(s) >= 4 and len(_MOJIBAKE.findall(s)) * 10 >= len(s) * 6:
        try:
            fixed = s.encode("latin-1").decode("gb18030")
            if sum(1 for c in fixed if "\u4e00" <= c <= "\u9fff") * 2 >= len(fixed.strip()):
                s = fixed
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return s


# Kinsoku (禁则): closing punctuation never starts a line, opening punctuation never ends one. A tick box
# travels with the option text after it.
_NO_LINE_START = set("，。、；：？！）》」』】〕…,.;:?!)%％”’")
_NO_LINE_END = set("（《「『【〔“‘([") | {TICKED, UNTICKED}
_SENTENCE_END = set("。！？；：.!?;:")
_ENUM_START = re.compile(
    r"(?:[（(](?:[一二三四五六七八九十]{1,3}|\d{1,2})[)）]|[一二三四五六七八九十]{1,3}[、．]|\d{1,2}[、.．](?!\d))"
)
# Punctuation that Word and Writer let hang past the right margin (overflowPunct) instead of wrapping.
_HANGING = set("，。、．,.")


def _char_w(line: list[Char]) -> float:
    ws = sorted(c.x1 - c.x0 for c in line if _is_cjk(c.c))
    return ws[len(ws) // 2] if ws else max(c.h for c in line) * 0.85


def _latin_word(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _unit_width(prev: list[Char], nxt: list[Char]) -> float:
    """Width the first unbreakable piece of `nxt` would need at the end of `prev`.

    The piece is one CJK character or one Latin word, with the opening punctuation before it and the
    closing punctuation after it (kinsoku keeps them together), plus the space between two Latin words.
    """
    n = len(nxt)
    i = 0
    while i < n - 1 and nxt[i].c in _NO_LINE_END:
        i += 1
    j = i
    if not _is_cjk(nxt[i].c):
        h = max(nxt[i].h, 1.0)
        while j + 1 < n and not _is_cjk(nxt[j + 1].c) and nxt[j + 1].x0 - nxt[j].x1 < 0.12 * h:
            j += 1
    while j + 1 < n and nxt[j + 1].c in _NO_LINE_START:
        j += 1
    if j > i and j + 1 < n and _latin_word(nxt[j + 1].c) and nxt[j + 1].x0 - nxt[j].x1 < 0.12 * nxt[j].h:
        # Closing punctuation binds to the number or word set solid after it (码:9142..., （027）8531...).
        h = max(nxt[j].h, 1.0)
        while j + 1 < n and not _is_cjk(nxt[j + 1].c) and nxt[j + 1].x0 - nxt[j].x1 < 0.12 * h:
            j += 1
    w = nxt[j].x1 - nxt[0].x0
    if not _is_cjk(prev[-1].c) and not _is_cjk(nxt[0].c):
        w += 0.25 * max(prev[-1].h, 1.0)
    return w


def _text_right(lines: list[list[Char]], box: tuple[float, float] | None = None) -> float:
    """Where lines in a box (a cell, or the page body when `box` is None) wrap: the right text edge.

    Cell padding is the same on both sides in Word and Writer, so the edge is the cell border less the
    padding seen on the left; the end of the fullest line (a hanging comma aside) confirms it, and is the
    only evidence in the page body.
    """
    ends = [ln[-1].x1 for ln in lines if ln[-1].c not in _HANGING] or [ln[-1].x1 for ln in lines]
    if box is None:
        return max(ends)
    x0, x1 = box
    pad = max(0.0, min(ln[0].x0 for ln in lines) - x0)
    return max([x1 - pad, *(e for e in ends if e <= x1 + 0.5)])


def _wrapped(prev: list[Char], nxt: list[Char], right: float) -> bool:
    """Whether `prev` ran on into `nxt` (a soft wrap) rather than ending its paragraph.

    A line wraps when the next line's first unbreakable piece would not have fitted in the room left at
    its end. A paragraph that ends exactly at the edge is indistinguishable from a wrap and is joined.
    """
    if nxt[0].c in _NO_LINE_START:
        return True
    if prev[-1].c in _SENTENCE_END and _ENUM_START.match("".join(c.c for c in nxt[:6])):
        # A sentence ends the line and the next begins （二）/ 三、/ 2. : a heading or a list item, which
        # settles the case of a paragraph that ended exactly at the edge.
        return False
    room = right - prev[-1].x1
    return room < _unit_width(prev, nxt) - 0.05 * _char_w(prev)


def _wrap_sep(prev: list[Char], nxt: list[Char], left: float, right: float) -> str:
    """What stood at a soft wrap between two Latin characters: a space, or nothing when a word too long
    for any line (a phone number in a narrow cell) was broken where the line ran out."""
    if not (_latin_word(prev[-1].c) and _latin_word(nxt[0].c)):
        return ""
    a = len(prev) - 1
    while a > 0 and not _is_cjk(prev[a - 1].c) and prev[a].x0 - prev[a - 1].x1 < 0.12 * max(prev[a].h, 1.0):
        a -= 1
    b = 0
    while b + 1 < len(nxt) and not _is_cjk(nxt[b + 1].c) and nxt[b + 1].x0 - nxt[b].x1 < 0.12 * max(nxt[b].h, 1.0):
        b += 1
    word = (prev[-1].x1 - prev[a].x0) + (nxt[b].x1 - nxt[0].x0)
    return "" if word > right - left + 0.5 else " "


def _cell_lines(cell: _Cell) -> tuple[list[list[Char]], float, float]:
    lines = _lines(cell.chars)
    if not lines:
        return [], cell.x0, cell.x1
    right = _text_right(lines, (cell.x0, cell.x1))
    left = min(ln[0].x0 for ln in lines)
    return lines, left, right


def _cell_text(cell: _Cell) -> str:
    lines, left, right = _cell_lines(cell)
    if not lines:
        return ""
    # Paragraph spacing inside the cell, where there is any, also ends a paragraph.
    # (A line's place is its median baseline: a single glyph's box, such as that of 一, can be off.)
    base = [sorted(c.bottom for c in ln)[len(ln) // 2] for ln in lines]
    pitches = [b - a for a, b in itertools.pairwise(base)]
    pitch = min(pitches) if pitches else 0.0
    out: list[str] = []
    for k, line in enumerate(lines):
        text = _line_text(line)
        prev = lines[k - 1]
        if k and _wrapped(prev, line, right) and not (pitch > 0 and base[k] - base[k - 1] > 1.4 * pitch):
            out.append(out.pop() + _wrap_sep(prev, line, left, right) + text)
            continue
        out.append(text)
    return "\n".join(out)


def _join(a: str, b: str) -> str:
    if a and b and a[-1].isascii() and a[-1].isalnum() and b[0].isascii() and b[0].isalnum():
        return a + " " + b
    return a + b


@dataclass
class _PageFlow:
    """The page's first and last body lines, to join a paragraph that a page break split."""

    first: list[Char] | None = None  # first body line, when the page opens with body text flush left
    last: list[Char] | None = None  # last body line, when the page closes with body text
    left: float = 0.0
    right: float = 0.0


def _paragraphs(chars: list[Char], page_w: float, page_h: float, flow: _PageFlow) -> list[tuple[float, str]]:
    lines = _lines(chars)
    kept: list[list[Char]] = []
    for line in lines:
        text = "".join(c.c for c in line)
        near_edge = line[0].top < page_h * 0.08 or line[-1].bottom > page_h * 0.92
        if near_edge and _PAGE_NUMBER.match(text):
            continue
        kept.append(line)
    if not kept:
        return []
    # A line Writer could not fit runs on past the page edge (clipped when shown): it says nothing of
    # where the margin is.
    inside = [ln for ln in kept if ln[-1].x1 <= page_w] or kept
    right = _text_right(inside)
    left = min(line[0].x0 for line in kept)
    cw = _char_w(kept[0])
    mirrored = page_w - left
    long_ends = [ln[-1].x1 for ln in kept if ln[-1].x1 - ln[0].x0 > 0.6 * (mirrored - left)]
    if sum(1 for x in long_ends if abs(x - right) < 0.5 * cw) < 2:
        # No two long lines end at the same place, so nothing shows where the margin is (a page of
        # headings between tables): assume the right margin mirrors the left one, as Word's defaults do.
        right = max(right, mirrored)
    paras: list[tuple[float, str]] = []
    prev: list[Char] | None = None
    for line in kept:
        text = _line_text(line)
        # A line drawn with a flat text matrix has zero-height glyph boxes: it joins nothing.
        h = max(c.h for c in prev) if prev is not None else 0.0
        if prev is not None and paras and h > 0:
            # Short lines (a centred title, a signature) end where they end, whatever comes next.
            wrapped = _wrapped(prev, line, right) and prev[-1].x1 - prev[0].x0 > (right - left) * 0.6
            close = line[0].top - prev[-1].bottom < 0.9 * h
            indented = line[0].x0 > left + 1.5 * h
            same_size = 0.75 < max(c.h for c in line) / h < 1.33
            if wrapped and close and not indented and same_size:
                y, t = paras.pop()
                paras.append((y, t + _wrap_sep(prev, line, left, right) + text))
                prev = line
                continue
        paras.append((line[0].top, text))
        prev = line
    first, last = kept[0], kept[-1]
    flow.left, flow.right = left, right
    if first[0].x0 <= left + 0.5 * max(c.h for c in first):
        flow.first = first
    if last[-1].x1 - last[0].x0 > (right - left) * 0.6:
        flow.last = last
    return paras


@dataclass
class _CellEdge:
    """A cell's position and its first and last text lines, to rejoin a row that a page break split."""

    x0: float
    x1: float
    first: list[Char] | None
    last: list[Char] | None
    left: float
    right: float
    nlines: int


def _table_rows(t: _GridTable) -> tuple[list[list[str]], list[list[_CellEdge]]]:
    rows: dict[int, list[_Cell]] = {}
    for c in t.cells:
        rows.setdefault(c.row, []).append(c)
    out: list[list[str]] = []
    edges: list[list[_CellEdge]] = []
    for r in sorted(rows):
        # Slivers between two borders close together (a frame around a nested table, a double rule) are
        # no cells of the form.
        cells = sorted(
            (c for c in rows[r] if c.chars or (c.x1 - c.x0 >= 6 and c.bottom - c.top >= 4)), key=lambda c: c.x0
        )
        if not cells:
            continue
        out.append([_cell_text(c) for c in cells])
        row_edges = []
        for c in cells:
            lines, left, right = _cell_lines(c)
            row_edges.append(
                _CellEdge(
                    c.x0, c.x1, lines[0] if lines else None, lines[-1] if lines else None, left, right, len(lines)
                )
            )
        edges.append(row_edges)
    return out, edges


def _inside(inner: _GridTable, outer: _GridTable) -> bool:
    return (
        inner is not outer
        and outer.x0 - 1 <= inner.x0
        and inner.x1 <= outer.x1 + 1
        and outer.top - 1 <= inner.top
        and inner.bottom <= outer.bottom + 1
    )


def _assign_chars(chars: list[Char], tables: list[_GridTable]) -> list[Char]:
    """Put each glyph into the innermost table cell holding it; return the glyphs outside every table."""
    cells = sorted((c for t in tables for c in t.cells), key=lambda c: (c.x1 - c.x0) * (c.bottom - c.top))
    # Cells by 20 pt band of the page, smallest first, so a glyph is checked against a handful of cells.
    bands: dict[int, list[_Cell]] = {}
    for c in cells:
        for b in range(int(c.top // 20), int(c.bottom // 20) + 1):
            bands.setdefault(b, []).append(c)
    home: dict[int, _Cell | None] = {}
    for ch in chars:
        cx, cy = ch.cx, ch.cy
        home[id(ch)] = next(
            (c for c in bands.get(int(cy // 20), ()) if c.x0 <= cx <= c.x1 and c.top <= cy <= c.bottom), None
        )
    if cells:
        _keep_overflow_in_cell(chars, home)
    loose: list[Char] = []
    for ch in chars:
        cell = home[id(ch)]
        if cell is None:
            loose.append(ch)
        else:
            cell.chars.append(ch)
    if not loose or not tables:
        return loose
    # Text that overflows a cell's right border (Writer clips a line it could not wrap in a merged cell,
    # but the text layer keeps it) belongs to the cell whose line it continues.
    rest: list[Char] = []
    for ch in sorted(loose, key=lambda c: c.x0):
        target = None
        for t in tables:
            if not (t.top <= ch.cy <= t.bottom and ch.x0 >= t.x1 - 2):
                continue
            for cell in t.cells:
                if abs(cell.x1 - t.x1) > 2 or not cell.top <= ch.cy <= cell.bottom:
                    continue
                if any(abs(o.cy - ch.cy) < 0.3 * max(o.h, 1.0) and o.x1 > cell.x1 - 2 * max(o.h, 1.0)
                       for o in cell.chars):  # fmt: skip
                    target = cell
                    break
            if target is not None:
                break
        if target is not None:
            target.chars.append(ch)
        else:
            rest.append(ch)
    return rest


def _chains(chars: list[Char]) -> list[list[Char]]:
    """Runs of glyphs set one after the other on a baseline (each starting where the last one ended)."""
    open_: dict[int, list[list[Char]]] = {}
    out: list[list[Char]] = []
    for ch in sorted(chars, key=lambda c: c.x0):
        key = round(ch.x0 * 2)
        chain = None
        for k in (key - 1, key, key + 1):
            for cand in open_.get(k, ()):
                last = cand[-1]
                if abs(last.x1 - ch.x0) < 0.3 and abs(last.top - ch.top) < 0.3 * max(ch.h, 1.0):
                    chain = cand
                    open_[k].remove(cand)
                    break
            if chain is not None:
                break
        if chain is None:
            chain = []
            out.append(chain)
        chain.append(ch)
        open_.setdefault(round(ch.x1 * 2), []).append(chain)
    return out


def _keep_overflow_in_cell(chars: list[Char], home: dict[int, _Cell | None]) -> None:
    """A line that Writer could not fit in its cell runs on over the next cell, on top of that cell's own
    text (a narrow label cell): the glyphs set on from the line's start, where they overlap other glyphs,
    stay in the line's own cell."""
    for chain in _chains(chars):
        first = home[id(chain[0])]
        if first is None or all(home[id(ch)] is first for ch in chain):
            continue
        mine = {id(ch) for ch in chain}
        for ch in chain[1:]:
            other = home[id(ch)]
            if other is first or other is None:
                continue
            w = ch.x1 - ch.x0
            if any(
                id(o) not in mine and home[id(o)] is other and abs(o.cy - ch.cy) < 0.3 * max(ch.h, 1.0)
                and o.x0 < ch.x1 - 0.2 * w and ch.x0 < o.x1 - 0.2 * (o.x1 - o.x0)
                for o in chars
            ):
                home[id(ch)] = first


def _read_page(
    page: pdfium.PdfPage, index: int
) -> tuple[PageInfo, list[str | Table], _PageFlow, dict[int, list[list[_CellEdge]]]]:
    w, h = page.get_size()
    info = PageInfo(index=index, width=w, height=h)
    xf = _Xform(page)
    chars = _page_chars(page, xf, info)
    segs, boxes = _page_graphics(page, xf, info)
    chars.extend(_box_chars(boxes, chars))
    tables = _find_tables(segs) if chars else []
    loose = _assign_chars(chars, tables)
    items: list[tuple[float, str | Table]] = []
    flow = _PageFlow()
    for y, text in _paragraphs(loose, w, h, flow):
        items.append((y, text))
    edges: dict[int, list[list[_CellEdge]]] = {}
    built: dict[int, Table] = {}
    for t in tables:
        rows, row_edges = _table_rows(t)
        kept = [(r, e) for r, e in zip(rows, row_edges, strict=True) if any(c.strip() for c in r)]
        table = Table(rows=[r for r, _ in kept])
        edges[id(table)] = [e for _, e in kept]
        built[id(t)] = table
    # A table drawn inside another's cell: nested in it, as in the Word original; an outer table that is
    # only a frame around the form (no text of its own) is dropped and its tables stand on their own.
    parent: dict[int, _GridTable] = {}
    for t in tables:
        outers = [o for o in tables if _inside(t, o)]
        if outers:
            parent[id(t)] = min(outers, key=lambda o: (o.x1 - o.x0) * (o.bottom - o.top))
    for t in tables:
        table = built[id(t)]
        p = parent.get(id(t))
        while p is not None and not built[id(p)].rows:
            p = parent.get(id(p))
        if p is not None:
            built[id(p)].nested.append(table)
        elif table.rows:
            items.append((t.top, table))
        else:
            edges.pop(id(table), None)
    items.sort(key=lambda it: it[0])
    blocks = [b for _, b in items]
    if blocks and isinstance(blocks[0], Table):
        flow.first = None
    if blocks and isinstance(blocks[-1], Table):
        flow.last = None
    return info, blocks, flow, edges


def _box_chars(boxes: list[tuple[float, float, float, float, bool]], chars: list[Char]) -> list[Char]:
    """Check boxes drawn as squares (Writer's and Word's form check boxes) as tick glyphs, unless a box
    glyph already stands there."""
    out: list[Char] = []
    for x0, top, x1, bottom, ticked in boxes:
        if any(
            c.c in (TICKED, UNTICKED) and c.x0 < x1 and x0 < c.x1 and c.top < bottom and top < c.bottom
            for c in chars
        ):
            continue
        out.append(Char(TICKED if ticked else UNTICKED, x0, top, x1, bottom))
    return out


def _rows_continue(
    last: list[_CellEdge], first: list[_CellEdge], first_text: list[str]
) -> list[tuple[int, bool]] | None:
    """For a table's first row on a page: per cell, the cell of the previous page's last row it continues
    (-1 for none) and whether its text runs on across the break; None when it is a row of its own.

    A split row shows the same cells on both pages (a vertically merged cell that began higher up shows
    again, empty). Either its text runs on: some cell's last line was full and goes on, and every other
    cell that goes on held several lines (a break between its paragraphs); a new row whose label merely
    filled the previous row's label cell still has short values above its own. Or the row's label cell
    is empty on the second page while at most half of its cells go on (a vertically merged label starts
    a new row with every cell filled).
    """
    match: list[tuple[int, bool]] = []
    consistent = prose = True
    for b, text in zip(first, first_text, strict=True):
        k = next((k for k, a in enumerate(last) if abs(a.x0 - b.x0) <= 2 and abs(a.x1 - b.x1) <= 2), -1)
        if k < 0 and text.strip():
            return None
        a = last[k] if k >= 0 else None
        run = a is not None and a.last is not None and b.first is not None and _wrapped(a.last, b.first, a.right)
        if text.strip() and not run:
            if a is not None and a.nlines == 1:
                consistent = False
            # A cell that goes on after a paragraph end held text (several lines, or a sentence), not a
            # label such as 数据集来源 above the next row's 数据集名称.
            if a is None or a.last is None or not (a.nlines >= 2 or a.last[-1].c in _SENTENCE_END):
                prose = False
        match.append((k, run))
    filled = [t for t in first_text if t.strip()]
    label_empty = not first_text[0].strip() or match[0][0] < 0
    if consistent and any(run for _, run in match):
        return match
    if label_empty and prose and len(filled) <= max(1, len(first) // 2):
        return match
    return None


def _merge_continued_table(
    blocks: list[str | Table], new: list[str | Table], edges: dict[int, list[list[_CellEdge]]]
) -> None:
    """Join a table that a page break split in two, as the Word original has it."""
    if blocks and new and isinstance(blocks[-1], Table) and isinstance(new[0], Table):
        prev, cont = blocks[-1], new[0]
        prev_edges = edges.get(id(prev), [])
        cont_edges = edges.get(id(cont), [])
        rows = list(cont.rows)
        if prev.rows and rows and prev_edges and cont_edges:
            match = _rows_continue(prev_edges[-1], cont_edges[0], rows[0])
            if match is not None:
                merged = list(prev.rows[-1])
                merged_edges = list(prev_edges[-1])
                for (k, run), b, eb in zip(match, rows[0], cont_edges[0], strict=True):
                    if k < 0 or not b:
                        continue
                    a, ea = merged[k], merged_edges[k]
                    if not a:
                        merged[k] = b
                    elif run and ea.last is not None and eb.first is not None:
                        merged[k] = a + _wrap_sep(ea.last, eb.first, ea.left, ea.right) + b
                    else:
                        merged[k] = a + "\n" + b
                    merged_edges[k] = eb
                prev.rows[-1] = merged
                prev_edges[-1] = merged_edges
                rows = rows[1:]
                cont_edges = cont_edges[1:]
        prev.rows.extend(rows)
        prev_edges.extend(cont_edges)
        prev.nested.extend(cont.nested)
        blocks.extend(new[1:])
        return
    blocks.extend(new)


# ---------------------------------------------------------------- rendering


def render_page(
    pdf: pdfium.PdfDocument,
    index: int,
    dpi: float = 150,
    max_pixels: int = 40_000_000,
    info: PageInfo | None = None,
) -> Any:
    """Render one page to a PIL RGB image, refusing pages whose images would blow the memory budget."""
    if info is not None and info.max_image_pixels > max_pixels * 4:
        raise PdfError(
            f"page {index + 1} holds an image of {info.max_image_pixels:,} pixels (decompression bomb?)"
        )
    page = pdf[index]
    try:
        w, h = page.get_size()
        scale = dpi / 72.0
        if w * h * scale * scale > max_pixels:
            scale = (max_pixels / max(w * h, 1.0)) ** 0.5
        bitmap = page.render(scale=scale, may_draw_forms=True)
        return bitmap.to_pil().convert("RGB")
    finally:
        page.close()
