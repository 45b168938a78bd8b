"""Name keys for matching: organisations (SPEC 3 normalisation, legal-form variants) and projects."""

from __future__ import annotations

import re

from rapidfuzz.distance import OSA

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


# Industry words between a company's trade name (字号) and its legal form (武汉|光谷|智能科技|有限公司):
# distinct companies often share them, so a match on them says little. Longest first.
_INDUSTRY_WORDS = sorted(
    (
        "人工智能", "智慧城市", "信息技术", "信息科技", "网络科技", "智能科技", "数字科技", "电子科技", "数据科技",
        "测绘科技", "安防科技", "软件技术", "物联网", "大数据", "云计算", "机器人", "科技", "技术", "信息", "网络",
        "智能", "数字", "电子", "数据", "软件", "通信", "系统", "工程", "咨询", "服务", "发展", "实业", "控股", "集团",
        "智慧", "安防", "测绘", "光电", "环保", "能源", "设计", "传媒", "文化", "交通", "检测", "股份",
    ),
    key=len,
    reverse=True,
)  # fmt: skip
_INDUSTRY_TAIL = re.compile("(" + "|".join(_INDUSTRY_WORDS) + ")+$")
_REGION_HEAD = re.compile(r"^(湖北省|湖北)?(武汉市|武汉)?")
# Wuhan's districts and zones at the head of a public body's name: what tells 江汉区大数据中心 from
# 洪山区大数据中心, as the trade name does for a company.
_DISTRICT_HEAD = re.compile(
    r"^((江岸|江汉|硚口|汉阳|武昌|青山|洪山|东西湖|汉南|蔡甸|江夏|黄陂|新洲)区|东湖高新区|东湖新技术开发区|"
    r"武汉经开区|经开区|经济技术开发区|长江新区)(?=.)"
)


# Legal forms long enough to recognise with one typing slip in them (有限公思, 有线公司, 有限司公).
_LONG_FORMS = ("股份有限公司", "有限责任公司", "有限公司")
_FORM_CHARS = frozenset("股份有限责任公司")


def org_loose_key(raw: str | None) -> str | None:
    """org_key, also without a legal form that has one typo in it (edit distance 1, swaps included),
    and without a leading province or second city (湖北…, 武汉市武汉经开区…): for fuzzy matching only."""
    if not raw:
        return None
    s = normalize_name(raw)
    # Fast path: the end has too little of a legal form to be one, typo or not.
    if len(_FORM_CHARS.intersection(s[-4:])) >= 2:
        for form in _LONG_FORMS:
            n = len(form)
            cut = next(
                (k for k in (n, n - 1, n + 1) if 0 < k < len(s) and OSA.distance(s[-k:], form, score_cutoff=1) <= 1),
                None,
            )
            if cut:
                s = s[:-cut]
                break
    # 五汉市, 武汗市: the city prefix with a slip in it.
    if len(s) > 4 and s[2] == "市" and s[:3] != "武汉市" and OSA.distance(s[:3], "武汉市", score_cutoff=1) <= 1:
        s = s[3:]
    s = org_key(s) or ""
    if not s:
        return None
    return _REGION_HEAD.sub("", s) or s


def org_trade_key(raw: str | None) -> str | None:
    """The trade name (字号) part of an organisation key: org_key without a province or second city
    prefix (湖北…, 武汉市武汉经开区…) and without the industry words before the legal form ("光谷智能科技" -> "光谷").

    For fuzzy matching alongside org_key: "汉北网络科技" and "索弗网络科技" share two thirds of their
    characters but nothing of their trade names. A name that is all industry words keeps them. A public
    body named after its district (江汉区城市运行管理中心) gives the district.
    """
    s = org_loose_key(raw)
    return trade_name(s) if s else None


def trade_name(loose: str) -> str:
    """org_trade_key of an org_loose_key already computed (matching computes both for every name)."""
    m = _DISTRICT_HEAD.match(loose)
    if m:
        return m.group(1)
    return _INDUSTRY_TAIL.sub("", loose) or loose
