"""Classify a document into a SPEC kind from its content (titles, labels, wording); filename as a hint."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from pathlib import PurePath

from rapidfuzz import fuzz

from parsers.layout import Layout
from parsers.schema import FormSchema, all_schemas
from parsers.types import Kind

# Content cues for the kinds that have no schema, with weights. A cue counts once.
# Titles (looked for near the top) weigh most; wording anywhere less; a form beats its embedded
# 承诺书 page because a form also has its title and table labels.
_HEAD_CUES: dict[Kind, tuple[tuple[str, float], ...]] = {
    Kind.commitment: (("承诺书", 4),),
    Kind.recommendation: (("推荐意见", 6), ("推荐函", 5), ("推荐信", 5)),
    Kind.license: (("营业执照", 7), ("事业单位法人证书", 9), ("社会团体法人登记证书", 9),
                   ("民办非企业单位登记证书", 9)),
    Kind.evidence: (
        ("专利证书", 6), ("计算机软件著作权登记证书", 7), ("软件著作权登记证书", 7),
        ("荣誉证书", 6), ("获奖证书", 6), ("检测报告", 6), ("检验报告", 6),
        ("测试报告", 5), ("应用证明", 5), ("使用证明", 5), ("用户使用报告", 5),
        ("验收报告", 5), ("查新报告", 5), ("评估报告", 4), ("证书", 2),
    ),
}
_BODY_CUES: dict[Kind, tuple[tuple[str, float], ...]] = {
    Kind.commitment: (("特此承诺", 3), ("本单位对本申请材料的合法性", 4), ("申请单位法人代表", 2),
                      ("不再要求予以退还", 2)),
    Kind.recommendation: (("同意推荐", 3), ("特此推荐", 3), ("经初审", 1), ("经审核", 1), ("推荐以下", 2)),
    Kind.license: (("经营范围", 3), ("注册资本", 2), ("登记机关", 2), ("成立日期", 1), ("营业期限", 2),
                   ("国家企业信用信息公示系统", 3), ("宗旨和业务范围", 3), ("举办单位", 2), ("开办资金", 2),
                   ("经费来源", 1), ("住所", 1)),
    Kind.evidence: (("专利号", 3), ("专利权人", 3), ("发明名称", 2), ("国家知识产权局", 2), ("著作权人", 3),
                    ("登记号", 1), ("国家版权局", 2), ("特发此证", 3), ("荣获", 2), ("检测结论", 3),
                    ("检测依据", 2), ("委托单位", 1), ("兹证明", 3), ("特此证明", 3), ("部署使用", 1)),
}
_FILENAME_CUES: dict[Kind, tuple[str, ...]] = {
    Kind.commitment: ("承诺书", "承诺函", "承诺"),
    Kind.recommendation: ("推荐意见", "推荐函", "推荐信", "推荐表"),
    Kind.license: ("营业执照", "执照", "法人证书", "登记证书", "事业单位法人"),
    Kind.evidence: ("专利", "软著", "著作权", "获奖", "荣誉", "证书", "检测", "检验", "测试报告", "证明",
                    "照片", "截图", "合同", "验收", "报告"),
}
_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".webp"}
_HEAD_CHARS = 600
_THRESHOLD = 4.0


def _compact(text: str) -> str:
    s = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s\"“”'‘’「」《》]+", "", s)


def _hint_re(hint: str) -> re.Pattern[str]:
    h = re.escape(_compact(hint))
    return re.compile(h + (r"(?!\d)" if hint[-1:].isdigit() else ""))


def _fuzzy_in(needle: str, hay: str) -> float:
    if len(needle) < 4 or not hay:
        return 0.0
    return float(fuzz.partial_ratio(needle, hay))


def classify(layout: Layout | None, text: str, filename: str) -> tuple[Kind, list[str]]:
    """The SPEC kind of a document and the reasons, in words staff can check.

    Works on .docx layouts and on PDF or OCR text (noisy, no tables): titles are matched without
    spaces and line breaks, and fuzzily when the text comes from OCR. The filename only tips the
    balance when the content says little.
    """
    body = text or (layout.text() if layout is not None else "")
    key = _compact(body)
    head = key[:_HEAD_CHARS]
    noisy = layout is None or layout.source != "docx"
    scores: dict[Kind, float] = defaultdict(float)
    reasons: dict[Kind, list[str]] = defaultdict(list)
    schemas = all_schemas()

    # Application forms and the 汇总表, from their schema files.
    titles_found = []
    for kind, schema in schemas.items():
        for title in schema.titles:
            t = _compact(title)
            if t in head:
                titles_found.append((kind, title, 10.0))
                break
            if noisy and _fuzzy_in(t, head) >= 85:
                titles_found.append((kind, title, 7.0))
                break
    # The call notice (or a bundle of all templates) names every form and holds every table.
    form_titles = {k for k, s in schemas.items() if k.form_type and any(_compact(t) in key for t in s.titles)}
    form_labels = {k: _labels_found(s, key) for k, s in schemas.items()}
    full_forms = {k for k, found in form_labels.items() if k.form_type and len(found) >= 3}
    if len(form_titles) >= 3 or len(full_forms) >= 3:
        return Kind.other, [
            f"同时含{max(len(form_titles), len(full_forms))}种申报书的标题或栏目：像是征集通知或空白模板合集"
        ]
    for kind, title, weight in titles_found:
        scores[kind] += weight
        reasons[kind].append(f"标题含“{title}”")
    for kind, found in form_labels.items():
        if found:
            scores[kind] += 2.0 * min(len(found), 5)
            reasons[kind].append("含该表特有栏目：" + "、".join(found[:5]))

    for kind, cues in _HEAD_CUES.items():
        for cue, weight in cues:
            if cue in head:
                scores[kind] += weight
                reasons[kind].append(f"开头含“{cue}”")
                break
    for kind, cues in _BODY_CUES.items():
        hits = [c for c, _ in cues if c in key]
        if hits:
            scores[kind] += sum(w for c, w in cues if c in hits)
            reasons[kind].append("正文含" + "、".join(f"“{c}”" for c in hits[:4]))

    # A form carries a 承诺书 page and a list of 附件材料 naming 营业执照/专利: those cues must not
    # outvote the form's own title and labels.
    if any(scores[k] >= 10 for k in schemas):
        for k in (Kind.commitment, Kind.license, Kind.evidence, Kind.recommendation):
            scores[k] = min(scores[k], 9.0)

    content_best = max(scores.items(), key=lambda kv: kv[1], default=(Kind.other, 0.0))
    fname_kind, fname_reason = _filename_hint(filename, schemas)
    if fname_kind is not None:
        scores[fname_kind] += 3.0
        reasons[fname_kind].append(fname_reason)

    best, score = max(scores.items(), key=lambda kv: kv[1], default=(Kind.other, 0.0))
    if content_best[1] >= _THRESHOLD or (score >= 3.0 and fname_kind == best):
        return best, reasons[best]
    suffix = PurePath(filename).suffix.lower()
    if not key and suffix in _IMAGE_EXT:
        return Kind.evidence, ["图片且无可识别文字：按证明材料（照片）处理"]
    why = reasons[Kind.other] or (["无可识别文字"] if not key else ["内容与文件名均无可识别的材料特征"])
    return Kind.other, why


def _labels_found(schema: FormSchema, key: str) -> list[str]:
    return [lbl for lbl in schema.distinctive_labels if _compact(lbl) in key]


def _filename_hint(filename: str, schemas: dict[Kind, FormSchema]) -> tuple[Kind | None, str]:
    name = _compact(PurePath(filename or "").stem)
    if not name:
        return None, ""
    # Specific words first: "附件1承诺书.pdf" is a 承诺书, not the form.
    for kind in (Kind.commitment, Kind.license, Kind.recommendation):
        for cue in _FILENAME_CUES[kind]:
            if cue in name:
                return kind, f"文件名提示：“{cue}”"
    for kind, schema in schemas.items():
        for hint in schema.filename_hints:
            if _hint_re(hint).search(name):
                return kind, f"文件名提示：“{hint}”"
    for cue in _FILENAME_CUES[Kind.evidence]:
        if cue in name:
            return Kind.evidence, f"文件名提示：“{cue}”"
    return None, ""
