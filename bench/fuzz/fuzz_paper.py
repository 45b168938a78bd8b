"""libFuzzer/atheris harness: the paper-log import reads any .xlsx/.csv without raising; bad cells name row+column.

An input starting with "<" is a worksheet's XML, packed into a real workbook here (mutating deflated bytes
would only ever test the zip reader); "PK" is a whole .xlsx; anything else is a .csv.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

T: dict[str, Any] = {}
TZ = ZoneInfo("Asia/Shanghai")
DEADLINE = datetime(2026, 7, 7, 17, 0, tzinfo=TZ)
_COL = re.compile(r"[A-Z]{1,3}")
_TMP = Path(tempfile.mkdtemp(prefix="fuzz-paper-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))


def _load() -> None:
    import io
    import zipfile

    import openpyxl  # imported lazily by review.paper: instrument it here

    from review import paper

    T["paper"] = paper
    wb = openpyxl.Workbook()
    wb.worksheets[0].append(list(paper.HEADINGS))
    buf = io.BytesIO()
    wb.save(buf)
    zf = zipfile.ZipFile(buf)
    T["parts"] = {n: zf.read(n) for n in zf.namelist()}


def as_xlsx(sheet_xml: bytes) -> bytes:
    """A workbook whose first worksheet is `sheet_xml` (stored, so the bytes reach the XML parsers as they are)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, body in T["parts"].items():
            zf.writestr(name, sheet_xml if name == "xl/worksheets/sheet1.xml" else body)
    return buf.getvalue()


def one_input(data: bytes) -> None:
    paper = T["paper"]
    if data[:1] == b"<":
        data = as_xlsx(data)
    path = _TMP / ("log.xlsx" if data[:2] == b"PK" else "log.csv")
    path.write_bytes(data)
    res = paper.read_log(path, tz=TZ, deadline=DEADLINE)
    assert isinstance(res, paper.ImportResult)
    for e in res.errors:
        assert e.row >= 1 and _COL.fullmatch(e.column), f"error without row and column: {e}"
        assert e.heading and e.message
    if res.file_error is None:
        for v in res.entries:
            assert v["received_at"] is not None and v["org_name"] and v["copies"]
    else:
        assert not res.entries, "a file error with entries read"


if __name__ == "__main__":
    common.run("paper", one_input, limit=10.0, instrumented=_load)
