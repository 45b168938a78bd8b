"""Validators: GB 32100 credit codes against the realworld vector files, phones, names, counts, lengths."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from parsers.validators import (
    check_credit_code,
    count_units,
    is_valid_phone,
    joint_applicant_problem,
    normalize_credit_code,
    normalize_name,
    normalize_phone,
    summary_length,
    summary_too_long,
    uscc_check_char,
)

REALWORLD = Path(os.environ.get("INTAKE_REALWORLD", "/work/shared/realworld"))
_STDNUM = {"valid": "valid", "InvalidLength": "invalid_length", "InvalidFormat": "invalid_format",
           "InvalidChecksum": "invalid_checksum"}


def _realworld(rel: str) -> Path:
    p = REALWORLD / rel
    if not p.exists():
        pytest.fail(f"realworld corpus missing: {p} (set INTAKE_REALWORLD)")
    return p


def _vectors() -> list[dict[str, str]]:
    with _realworld("orgnames/uscc_test_vectors_DERIVED.tsv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_derived_vectors_agree_with_python_stdnum() -> None:
    rows = _vectors()
    assert len(rows) > 200
    for r in rows:
        got = check_credit_code(r["code"]).verdict
        want = _STDNUM[r["python-stdnum-2.2_result"]]
        if r["code"].startswith("A") and want == "invalid_format":
            # GB 32100-2015 lists A (中央军委改革和编制办公室) as a registration department; python-stdnum
            # does not. Either way the code is not valid.
            assert got != "valid"
            continue
        assert got == want, (r["code"], r["source"])


def test_real_early_codes_fail_checksum_but_are_reported_not_rejected() -> None:
    early = [r for r in _vectors() if "real/legal" in r["expected_per_source"]]
    assert len(early) == 3
    for r in early:
        res = check_credit_code(r["code"])
        assert res.verdict == "invalid_checksum" and res.expected_check
        assert "豁免" in res.describe()  # staff can waive it


def test_idcheck_go_vectors() -> None:
    text = _realworld("orgnames/IDCheck_USCI_test.go.txt").read_text(encoding="utf-8")
    true_part, false_part = text.split("USCI_TestDataFalse", 1)
    valid = re.findall(r'"([0-9A-Z]{18})":', true_part)
    invalid = re.findall(r'"([0-9A-Z]{18})":', false_part)
    assert len(valid) == 12 and len(invalid) == 3
    assert all(check_credit_code(c).ok for c in valid)
    assert not any(check_credit_code(c).ok for c in invalid)


def test_stdnum_js_vectors() -> None:
    text = _realworld("orgnames/stdnumjs_cn_uscc.spec.ts.txt").read_text(encoding="utf-8")
    assert "91110000600037341L" in text
    assert check_credit_code("91110000600037341L").ok
    assert check_credit_code("12345678").verdict == "invalid_length"
    assert check_credit_code("91110000600037342L").verdict == "invalid_checksum"


def test_credit_code_normalisation() -> None:
    assert normalize_credit_code(" ９１１１００００６０００３７３４１ｌ ") == "91110000600037341L"
    assert normalize_credit_code("9111 0000-6000 3734 1l") == "91110000600037341L"
    assert check_credit_code("91110000600037341l").ok
    assert check_credit_code("9111000060003IOZSV").verdict == "invalid_format"
    assert uscc_check_char("91110000600037341") == "L"


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("027-85317173", "027-85317173"),
        ("(027)85317173", "027-85317173"),
        ("（027）85317173", "027-85317173"),
        ("027 8531 7173", "027-85317173"),
        ("02785317173", "027-85317173"),
        ("010-65123456", "010-65123456"),
        ("0710-3456789", "0710-3456789"),
        ("+86 138 1234 5678", "13812345678"),
        ("+86-13812345678", "13812345678"),
        ("0086 13812345678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("027-85317173转8001", "027-85317173"),
        ("85317173", "85317173"),
        ("12345", None),
        ("1381234567", None),
        ("23812345678", None),
        ("027-1234", None),
        ("电话", None),
        ("", None),
    ],
)
def test_phones(raw: str, want: str | None) -> None:
    assert normalize_phone(raw) == want
    assert is_valid_phone(raw) is (want is not None)


def test_normalize_name() -> None:
    a = "谷歌信息技术（中国）有限公司"
    assert normalize_name(a) == normalize_name("谷歌信息技术(中国)有限公司")
    assert normalize_name(a) == normalize_name("谷歌信息技术 （中国）\n有限公司")
    assert normalize_name("ＡＢＣ科技有限公司") == normalize_name("abc科技有限公司")
    assert normalize_name("武汉\u3000某某【集团】") == normalize_name("武汉某某(集团)")
    assert normalize_name("甲公司") != normalize_name("乙公司")


def test_joint_applicant_count() -> None:
    assert count_units("甲公司", ["乙公司", "丙公司"]) == 3
    assert joint_applicant_problem("甲公司", ["乙公司", "丙公司"]) is None
    problem = joint_applicant_problem("甲公司", ["乙公司", "丙公司", "丁公司"])
    assert problem and "4" in problem
    # The lead listed again among the joint applicants (another bracket width) is one unit.
    assert count_units("甲(武汉)公司", ["甲（武汉）公司", "乙公司", "丙公司"]) == 3
    assert joint_applicant_problem(None, None) is None


def test_product_summary_length() -> None:
    assert summary_too_long("字" * 300) is None
    detail = summary_too_long("字" * 301)
    assert detail and "301" in detail
    assert summary_length("一 二\n三") == 3
    assert summary_too_long(None) is None
