"""Archives: GBK names, nesting, 7z/rar, bombs and lying headers, traversal names, encryption."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from parsers.archives import ArchiveLimits, decode_legacy_name, read_archive
from parsers.documents import ParseOptions, parse_document
from parsers.sniff import FileType
from parsers.types import Format
from tests import scangen

REALWORLD = Path(os.environ.get("INTAKE_REALWORLD", "/work/shared/realworld"))


def rw(rel: str) -> bytes:
    p = REALWORLD / rel
    if not p.exists():
        pytest.fail(f"realworld corpus missing: {p} (set INTAKE_REALWORLD)")
    return p.read_bytes()


def test_gbk_names_without_utf8_flag() -> None:
    data = scangen.gbk_zip(
        {"附件1 典型应用场景案例申报书.txt": "典型应用场景案例申报书".encode(), "营业执照.txt": b"x"}
    )
    res = read_archive(data, FileType.zip)
    assert [m.path for m in res.members] == ["附件1 典型应用场景案例申报书.txt", "营业执照.txt"]
    assert (
        read_archive(rw("archives/admzip_chs_name_gbk.zip"), FileType.zip).members[0].path == "中文路径.txt"
    )
    names = [
        m.path for m in read_archive(rw("archives/libarchive_zip_filename_cp932.zip"), FileType.zip).members
    ]
    assert names == ["表だよ/一覧表.txt", "表だよ/漢字.txt"]
    assert decode_legacy_name("承诺书.pdf".encode("gbk")) == "承诺书.pdf"


def test_nested_zip_one_level_and_deeper_warns() -> None:
    inner2 = scangen.plain_zip({"deep.txt": b"deep"})
    inner = scangen.plain_zip({"承诺书.txt": "承诺书".encode(), "more.zip": inner2})
    outer = scangen.gbk_zip({"材料.zip": inner, "__MACOSX/._x": b"", "Thumbs.db": b"", "~$附件1.docx": b"x"})
    d = parse_document(outer, "区汇总.zip")
    assert d.format == Format.archive and not d.unreadable
    assert [m.member_path for m in d.members] == ["材料.zip"]
    nested = d.members[0]
    assert nested.format == Format.archive
    assert {m.member_path for m in nested.members} == {"材料.zip/承诺书.txt", "材料.zip/more.zip"}
    deep = next(m for m in nested.members if m.filename == "more.zip")
    assert deep.members == [] and any("nested" in w for w in deep.warnings)


def test_7z_and_rar() -> None:
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        z.writestr("承诺书内容".encode(), "承诺书.txt")
    res = read_archive(buf.getvalue(), FileType.sevenzip)
    assert [m.path for m in res.members] == ["承诺书.txt"] and res.members[0].data == "承诺书内容".encode()
    rar = read_archive(rw("archives/rarfile_rar5-subdirs.rar"), FileType.rar)
    assert rar.error is None and len(rar.members) == 4


def test_ratio_bomb_rejected_quickly() -> None:
    t = time.perf_counter()
    d = parse_document(scangen.ratio_bomb(300), "bomb.zip")
    assert d.unreadable and "MB" in d.problems[0].detail
    assert time.perf_counter() - t < 5


def test_lying_headers_stopped_while_streaming() -> None:
    res = read_archive(
        scangen.lying_bomb(80, declared=1000), FileType.zip, ArchiveLimits(max_total_size=32 << 20)
    )
    # Reading stops at the declared size: the member is reported damaged, never inflated to 80 MB.
    (m,) = res.members
    assert m.data is None and m.problem and "damaged" in m.problem


def test_many_members_limited() -> None:
    res = read_archive(scangen.many_members_zip(5000), FileType.zip, ArchiveLimits(max_members=300))
    assert res.error and "too many" in res.error
    res2 = read_archive(scangen.many_members_zip(400), FileType.zip, ArchiveLimits(max_members=300))
    assert len(res2.members) == 300 and any("300" in w for w in res2.warnings)


def test_traversal_names_are_labels_only(tmp_path: Path) -> None:
    before = set(os.listdir(tmp_path.parent))
    res = read_archive(scangen.traversal_zip(), FileType.zip)
    assert sorted(m.path for m in res.members) == ["abs/evil2.txt", "evil.txt", "ok/承诺书.txt"]
    assert set(os.listdir(tmp_path.parent)) == before


def test_encrypted_zip_member_and_rar() -> None:
    data = scangen.plain_zip({"a.docx": b"secret", "b.txt": b"ok"}, encrypt_names={"a.docx"})
    d = parse_document(data, "enc.zip")
    a = next(m for m in d.members if m.filename == "a.docx")
    assert a.unreadable and "encrypted" in a.problems[0].detail
    assert (
        read_archive(rw("hostile/rarfile_rar5-hpsw.rar"), FileType.rar).error
        == "加密文件，无法打开 (encrypted)"
    )


def test_dangerous_bombs_rejected_in_memory() -> None:
    for name in ("zbsm_overlap_bomb.zip.bin", "Challenge9_recursive_bomb.zip.bin"):
        t = time.perf_counter()
        d = parse_document(rw(f"hostile/DANGEROUS_bombs/{name}"), name, options=ParseOptions(ocr=False))
        assert time.perf_counter() - t < 30
        if name.startswith("zbsm"):
            assert d.unreadable
        else:
            # 42.zip style: each level is tiny; opened one level down, deeper levels only warned about.
            assert all(not mm.members for m in d.members for mm in m.members)
