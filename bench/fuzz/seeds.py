"""Seed corpora for the fuzz targets: the test generators' tricky inputs plus permissively licensed real files."""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGETS = ("message", "document", "archive", "paper")
CORPUS = Path(__file__).resolve().parent / "corpus"
# Seeds above this size are cut: libFuzzer mutates small inputs far faster, and the parsers' size limits are
# exercised by the hypothesis tests and tests/test_hostile.py instead.
MAX_SEED = 512 * 1024
# Licences under which a real-world file may be copied (shared/realworld/README.md); everything else there is
# for local evaluation only. The pdf.js samples are bug-report attachments without a licence of their own.
PERMISSIVE = ("MIT", "BSD", "Apache-2.0", "PSF", "ISC")
NOT_PERMISSIVE_NOTES = ("bug-report samples", "GPLv2", "NONE")


def realworld_dir() -> Path | None:
    """shared/realworld beside the repository (or $INTAKE_REALWORLD), when present."""
    env = os.environ.get("INTAKE_REALWORLD")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "realworld"]:
        if (cand / "MANIFEST.tsv").exists():
            return cand
    return None


def permissive_realworld(suffixes: tuple[str, ...], under: tuple[str, ...]) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of realworld files with a permissive licence, never DANGEROUS_bombs or unlicensed ones."""
    rw = realworld_dir()
    if rw is None:
        return
    with open(rw / "MANIFEST.tsv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            path, lic = row["local_file"], row["license"]
            if not path.startswith(under) or "DANGEROUS" in path or not path.lower().endswith(suffixes):
                continue
            if not lic.startswith(PERMISSIVE) or any(n in lic for n in NOT_PERMISSIVE_NOTES):
                # sisimai's BSD set says a few samples came from GPLv2 mailman: keep only the families the
                # project already copies (tests/data/eml/ATTRIBUTION.md).
                base = path.rsplit("/", 1)[-1]
                if not ("sisimai" in path and base.startswith(("bounce__lhost-", "bounce__rhost-", "autoreply__"))):
                    continue
            f = rw / path
            if f.is_file():
                yield path.replace("/", "__"), f.read_bytes()


def message_seeds() -> Iterator[tuple[str, bytes]]:
    from tests import mailgen

    for name, raw, _ in mailgen.corpus():
        yield f"mailgen_{name}.eml", raw
    for name, raw, _ in mailgen.hopeless():
        if name != "recursion_bomb":
            yield f"hopeless_{name}.eml", raw
    yield "mailgen_deep_nesting_60.eml", mailgen.deep_nesting(60)
    for f in sorted((ROOT / "tests" / "data" / "eml").rglob("*.eml")):
        yield f"testdata_{f.parent.name}_{f.name}", f.read_bytes()
    yield from permissive_realworld((".eml",), ("eml/",))


def _docx_seeds() -> Iterator[tuple[str, bytes]]:
    from parsers.types import Kind
    from tests import formgen

    for kind, variant in (
        (Kind.form_scenario, "plain"),
        (Kind.form_model, "wingdings"),
        (Kind.form_platform, "w14"),
        (Kind.form_terminal, "legacy"),
    ):
        try:
            g = formgen.make_form(kind, 0, variant)
        except Exception:  # a variant name not known to this formgen: the plain one still seeds
            g = formgen.make_form(kind, 0)
        yield f"formgen_{kind.value}_{variant}.docx", g.data
    yield "formgen_summary.docx", formgen.make_summary(seed=0).data
    yield "formgen_commitment.docx", formgen.make_commitment().data
    yield "formgen_recommendation.docx", formgen.make_recommendation().data


def document_seeds(with_pdf: bool = True) -> Iterator[tuple[str, bytes]]:
    from tests import formgen, scangen

    docx = list(_docx_seeds())
    yield from docx
    if with_pdf:
        try:
            pdfs = formgen.to_pdf([d for _, d in docx[:2]])
            for i, p in enumerate(pdfs if isinstance(pdfs, list) else [pdfs]):
                yield f"formgen_text_{i}.pdf", p
        except Exception as exc:  # LibreOffice missing: the scan PDFs below still seed the PDF parser
            print(f"seeds: no text PDFs ({exc})", file=sys.stderr)
    lic = scangen.license_image("武汉光谷智能科技有限公司", "91420100MA4K2XXX1X", seed=1)
    yield "scangen_license.img", lic
    from PIL import Image

    img = Image.open(io.BytesIO(lic)).convert("RGB")
    img.thumbnail((400, 400))
    yield "scangen_scan.pdf", scangen.images_to_pdf([img], dpi=50)
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"):
        buf = io.BytesIO()
        img.resize((64, 48)).save(buf, fmt)
        yield f"small.{fmt.lower()}", buf.getvalue()
    yield "scangen_looping.pdf", scangen.looping_pdf()
    yield "scangen_xxe.docx", scangen.xxe_docx()
    yield "scangen_truncated.docx", scangen.truncated(docx[0][1])
    yield "scangen_gbk.zip", scangen.gbk_zip({"附件1_申报书.docx": docx[0][1], "说明.txt": "申报材料".encode("gbk")})
    yield "scangen_traversal.zip", scangen.traversal_zip()
    yield "scangen_encrypted.zip", scangen.plain_zip({"a.docx": docx[1][1]}, encrypt_names={"a.docx"})
    yield "text_gb18030.txt", "申报单位：武汉市某某科技有限公司\r\n".encode("gb18030")
    yield "page.html", "<html><body><table><tr><td>申报单位</td></tr></table></body></html>".encode()
    yield "rtf.doc", rb"{\rtf1\ansi\deff0 {\fonttbl {\f0 Times;}} \f0 hello \par}"
    owner = "zhangs".encode("utf-16-le")
    yield "lockfile_~$附件1.docx", bytes([6]) + b"zhangs" + bytes(47) + bytes([6]) + owner + bytes(96)
    yield from permissive_realworld(
        (".docx", ".docm", ".doc", ".pdf", ".xlsx", ".zip", ".rar"), ("docs/", "hostile/", "archives/")
    )


def archive_seeds() -> Iterator[tuple[str, bytes]]:
    from tests import scangen

    small = {"附件1_申报书.docx": b"PK\x03\x04 not really", "营业执照.jpg": b"\xff\xd8\xff\xe0" + bytes(60)}
    yield "gbk.zip", scangen.gbk_zip(small)
    yield "plain.zip", scangen.plain_zip(small)
    yield "encrypted.zip", scangen.plain_zip(small, encrypt_names={"营业执照.jpg"})
    yield "traversal.zip", scangen.traversal_zip()
    yield "many.zip", scangen.many_members_zip(350)
    inner = scangen.plain_zip({"inner.txt": b"x" * 200})
    yield "nested.zip", scangen.plain_zip({"inner.zip": inner, "a/b/../c.txt": b"hello"})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("stored.txt", b"stored " * 20)
        zi = zipfile.ZipInfo("link")
        zi.external_attr = 0o120777 << 16
        zf.writestr(zi, b"/etc/passwd")
    yield "stored_symlink.zip", buf.getvalue()
    try:
        import py7zr

        b7 = io.BytesIO()
        with py7zr.SevenZipFile(b7, "w") as sz:
            sz.writestr("申报书内容" * 20, "附件1.txt")
            sz.writestr(b"\x00\x01" * 50, "dir/bin.dat")
        yield "plain.7z", b7.getvalue()
    except Exception as exc:
        print(f"seeds: no 7z seed ({exc})", file=sys.stderr)
    yield from permissive_realworld((".zip", ".rar", ".7z"), ("archives/", "hostile/"))
    yield from ((n, d) for n, d in permissive_realworld((".docx", ".xlsx"), ("hostile/",)))


def paper_seeds() -> Iterator[tuple[str, bytes]]:
    import tempfile

    import openpyxl

    from review.paper import HEADINGS, template_bytes
    from tests import papergen

    yield "template.xlsx", template_bytes()
    season = papergen.make_season(12, seed=3)
    rows = [
        [
            e.received_at.strftime("%Y/%m/%d %H:%M"),
            e.org_name,
            e.project_name,
            e.form_type or "",
            "申报书",
            e.copies,
            e.district or "",
            e.received_by,
            "",
        ]
        for e in season.entries
    ]
    for enc, name in (("utf-8-sig", "log_utf8.csv"), ("gb18030", "log_gbk.csv")):
        s = io.StringIO()
        w = csv.writer(s, delimiter="\t" if enc == "gb18030" else ",")
        w.writerow(HEADINGS)
        w.writerows(rows)
        w.writerow(["", "合计", "", "", "", sum(r[5] for r in rows)])
        yield name, s.getvalue().encode(enc)
    wb = openpyxl.Workbook()
    ws = wb.worksheets[0]
    ws.title = "7月"
    ws.append(["纸质材料接收登记表"])
    ws.merge_cells("A1:I1")
    ws.append([*HEADINGS, "统一社会信用代码"])
    for r in rows:
        ws.append([season.entries[0].received_at.replace(tzinfo=None), *r[1:], "91420100MA4K2XXX1X"])
    ws.append(["=NOW()", "=A3", None, None, "推荐意见", 46210.6875, None, None, None])
    ws.merge_cells(f"H3:H{ws.max_row}")
    out = io.BytesIO()
    wb.save(out)
    yield "log.xlsx", out.getvalue()
    _xlsx_files = [("template", template_bytes()), ("log", out.getvalue())]
    try:
        from tests.test_paper import bad_log, real_log

        with tempfile.TemporaryDirectory() as tmp:
            _xlsx_files.append(("real_log", real_log(Path(tmp) / "real.xlsx").read_bytes()))
            _xlsx_files.append(("bad_log", bad_log(Path(tmp) / "bad.xlsx").read_bytes()))
            yield from ((f"{n}.xlsx", d) for n, d in _xlsx_files[-2:])
    except Exception as exc:
        print(f"seeds: no test_paper logs ({exc})", file=sys.stderr)
    # Worksheet XML seeds (fuzz_paper.py packs an input starting with "<" into a workbook).
    for name, data in _xlsx_files:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for member in zf.namelist():
                if member.startswith("xl/worksheets/sheet"):
                    yield f"{name}.{member.rsplit('/', 1)[-1]}", zf.read(member)


SEEDS: dict[str, Callable[[], Iterator[tuple[str, bytes]]]] = {
    "message": message_seeds,
    "document": document_seeds,
    "archive": archive_seeds,
    "paper": paper_seeds,
}


def write_seeds(target: str, dest: Path | None = None) -> Path:
    """Write the target's seeds (named by content hash and origin) into corpus/<target>/seed; returns the dir."""
    out = dest or CORPUS / target / "seed"
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for name, data in SEEDS[target]():
        data = data[:MAX_SEED]
        h = hashlib.sha1(data).hexdigest()[:12]
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-80:]
        (out / f"{h}-{safe}").write_bytes(data)
        n += 1
    print(f"{target}: {n} seeds in {out}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("targets", nargs="*", default=list(TARGETS), choices=TARGETS)
    args = ap.parse_args()
    for t in args.targets:
        write_seeds(t)


if __name__ == "__main__":
    main()
