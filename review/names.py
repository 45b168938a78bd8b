"""Name keys for matching: organisations (SPEC 3 normalisation, legal-form variants) and projects."""

from __future__ import annotations

import re

from parsers.validators import normalize_credit_code, normalize_name

# Legal-form suffixes that applicants and districts write interchangeably.
_LEGAL_FORMS = ("股份有限公司", "有限责任公司", "有限公司", "集团公司", "公司")
# A city or district prefix written or omitted: 武汉市 / 武汉 / (武汉) in the middle of a name.
_CITY = re.compile(r"^(湖北省)?(武汉市|武汉)")
_PAREN_CITY = re.compile(r"\((武汉|湖北|中国)\)")
# Resubmission markers and packaging words in project names and file names.
_PROJECT_NOISE = re.compile(
    r"(\(?(更正版?|修改版?|修订版?|补充材料?|补充|以此为准|最终版|终版|新版|第?[一二三四五0-9]+版|v\d+(\.\d+)*|"
    r"盖章版?|扫描件|word版|pdf版|电子版|定稿)\)?)",
    re.I,
)
_PUNCT = re.compile(r"[\"'“”‘’《》<>「」『』.,，。、;；:：!！?？\-—_·•\s]+")


def credit_key(raw: str | None) -> str | None:
    """The credit code as an identity key when it has the 18-character shape (checksum not required:
    a few real, early codes fail it and still name one organisation)."""
    if not raw:
        return None
    code = normalize_credit_code(raw)
    return code if re.fullmatch(r"[0-9A-Z]{18}", code) else None


def org_key(raw: str | None) -> str | None:
    """Organisation name key: SPEC 3 normalisation, city prefix and legal-form suffix variants folded."""
    if not raw:
        return None
    s = normalize_name(raw)
    s = _PAREN_CITY.sub("", s)
    s = _CITY.sub("", s)
    for suffix in _LEGAL_FORMS:
        if s.endswith(suffix):
            s = s[: -len(suffix)]
            break
    s = _PUNCT.sub("", s)
    return s or None


def project_key(raw: str | None) -> str | None:
    """Project name key: normalised, without resubmission markers (更正, 以此为准, ...) and punctuation."""
    if not raw:
        return None
    s = normalize_name(raw)
    s = _PROJECT_NOISE.sub("", s)
    s = _PUNCT.sub("", s)
    s = s.replace("()", "")
    return s or None
