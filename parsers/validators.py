"""Field validators and normalisers: credit codes (GB 32100-2015), phones, names, counts, lengths."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

# --- 统一社会信用代码 (GB 32100-2015) ------------------------------------------------------------

# The code alphabet omits I O Z S V so they cannot be confused with digits.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
# 登记管理部门码 (position 1) and 机构类别码 (position 2) per GB 32100-2015 table 1.
_USCC_DEPT = set("123456789ANY")

CreditVerdict = Literal["valid", "invalid_length", "invalid_format", "invalid_checksum"]


@dataclass(frozen=True)
class CreditCheck:
    """Outcome of checking one credit code: never a rejection, a report staff can act on."""

    code: str  # normalised: half-width, upper-cased, spaces and dashes removed
    verdict: CreditVerdict
    expected_check: str | None = None  # the check character GB 32100 computes, when computable

    @property
    def ok(self) -> bool:
        return self.verdict == "valid"

    def describe(self) -> str:
        """A sentence for staff and applicants."""
        if self.verdict == "valid":
            return f"统一社会信用代码 {self.code} 校验通过"
        if self.verdict == "invalid_length":
            return f"统一社会信用代码 {self.code} 应为18位，实际{len(self.code)}位"
        if self.verdict == "invalid_format":
            return f"统一社会信用代码 {self.code} 含有不允许的字符（不使用 I、O、Z、S、V）"
        return (
            f"统一社会信用代码 {self.code} 校验位应为 {self.expected_check}，"
            "与所填不符（早期试点地区的部分真实代码也如此，可人工核实后豁免）"
        )


def normalize_credit_code(raw: str) -> str:
    """Half-width, upper-case, without spaces or separators: what applicants mean by the code."""
    s = unicodedata.normalize("NFKC", raw).upper()
    return re.sub(r"[\s\-_·.]", "", s)


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters (which must be in the alphabet)."""
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def check_credit_code(raw: str) -> CreditCheck:
    """Check a 统一社会信用代码. Reports, never raises: some real early pilot-region codes fail."""
    code = normalize_credit_code(raw)
    if len(code) != 18:
        return CreditCheck(code, "invalid_length")
    if (
        code[0] not in _USCC_DEPT
        or any(c not in _USCC_VALUE for c in code)
        or not code[2:8].isdigit()  # 登记管理机关行政区划码 is numeric
    ):
        return CreditCheck(code, "invalid_format")
    expected = uscc_check_char(code[:17])
    if expected != code[17]:
        return CreditCheck(code, "invalid_checksum", expected)
    return CreditCheck(code, "valid", expected)


def is_valid_credit_code(raw: str) -> bool:
    return check_credit_code(raw).ok


# --- Phones --------------------------------------------------------------------------------------

# Three-digit area codes: 010 (Beijing) and 020-029; every other area code has four digits.
_THREE_DIGIT_AREA = re.compile(r"^0(10|2\d)")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def normalize_phone(raw: str) -> str | None:
    """Digits with one `-` after an area code (`027-85317173`), a bare mobile (`13812345678`), or None.

    Accepts brackets, spaces, dashes, dots, a +86 / 0086 prefix and a trailing extension (转/ext),
    which is dropped: the ack and matching need the reachable number.
    """
    s = unicodedata.normalize("NFKC", raw).strip()
    if not s:
        return None
    s = re.split(r"(?:转|分机|ext\.?|x)\s*\d+\s*$", s, flags=re.I)[0]
    s = re.sub(r"^\s*(?:\+\s*86|0086)[\s\-]*", "", s)
    s = re.sub(r"^\(\s*\+?86\s*\)", "", s)
    if re.search(r"[^\d\s\-().（）]", s):
        return None
    digits = re.sub(r"\D", "", s)
    if _MOBILE.match(digits):
        return digits
    if digits.startswith("86") and _MOBILE.match(digits[2:]):
        return digits[2:]
    if not digits.startswith("0"):
        # A local number without area code (8 digits) is plausible for a Wuhan form, but cannot be
        # dialled from elsewhere; keep it as written.
        return digits if re.fullmatch(r"[2-9]\d{6,7}", digits) else None
    area_len = 3 if _THREE_DIGIT_AREA.match(digits) else 4
    area, local = digits[:area_len], digits[area_len:]
    if not re.fullmatch(r"[2-9]\d{6,7}", local):
        return None
    return f"{area}-{local}"


def is_valid_phone(raw: str) -> bool:
    return normalize_phone(raw) is not None


# --- Names and counts ----------------------------------------------------------------------------

def normalize_name(raw: str) -> str:
    """Comparison key for org and project names (SPEC 3).

    NFKC folds full-width letters, digits and brackets to half width (（）→ ()), then all whitespace
    (including line breaks inside cells and the ideographic space) is removed and Latin is lower-cased;
    bracket variants 【】〔〕［］ fold to () too, as applicants use them interchangeably.
    """
    s = unicodedata.normalize("NFKC", raw)
    s = s.translate(_BRACKETS)
    s = re.sub(r"\s+", "", s)
    return s.casefold()


_BRACKETS = str.maketrans({"【": "(", "】": ")", "〔": "(", "〕": ")", "[": "(", "]": ")"})

MAX_UNITS = 3


def joint_applicant_problem(applicant: str | None, joint: list[str] | None) -> str | None:
    """Detail text when more than 3 units apply together (lead + joint), else None."""
    names: list[str] = []
    for n in ([applicant] if applicant else []) + list(joint or []):
        key = normalize_name(n)
        if key and key not in names:
            names.append(key)
    if len(names) > MAX_UNITS:
        return f"申报单位与联合申报单位共{len(names)}家，超过最多{MAX_UNITS}家的限制"
    return None


def count_units(applicant: str | None, joint: list[str] | None) -> int:
    """Distinct units applying together: the lead applicant plus the joint applicants."""
    keys = {normalize_name(n) for n in ([applicant] if applicant else []) + list(joint or [])}
    keys.discard("")
    return len(keys)


PRODUCT_SUMMARY_LIMIT = 300


def summary_length(text: str) -> int:
    """Characters of a 产品简介 as the template counts them (字): whitespace does not count."""
    return len(re.sub(r"\s+", "", text))


def summary_too_long(text: str | None) -> str | None:
    """Detail text when 附件4 产品简介 exceeds 300 characters, else None."""
    if not text:
        return None
    n = summary_length(text)
    if n > PRODUCT_SUMMARY_LIMIT:
        return f"产品简介共{n}字，超过{PRODUCT_SUMMARY_LIMIT}字"
    return None
