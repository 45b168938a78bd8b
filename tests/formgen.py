"""Fixture factory: realistic filled 附件1-5, 承诺书 and 推荐意见 .docx files with their expected fields.

Usage::

    from tests.formgen import make_form, make_summary, VARIANTS
    g = make_form(Kind.form_model, seed=3, variant="tick_wingdings2")
    g.data               # .docx bytes
    g.expected_fields    # exactly what parsers.extract.extract_fields must return (SPEC 3 formats)

Every variant reproduces one thing applicants do to the templates (see VARIANTS); "mixed" draws several
at once from the seed. `to_doc` / `to_pdf` convert batches with one LibreOffice start.
"""

# ruff: noqa: E501  -- template texts and option lists are quoted verbatim, one per line

from __future__ import annotations

import copy
import io
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docx
from docx.document import Document as DocxDocument
from docx.enum.text import WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.table import Table as DocxTable
from docx.table import _Cell
from docx.text.paragraph import Paragraph

from parsers.types import Kind
from parsers.validators import USCC_ALPHABET, uscc_check_char
from parsers.word import convert_batch

DATA = Path(__file__).parent / "data"

# What applicants do to the templates. Each name is one habit; "mixed" combines several by seed.
VARIANTS: tuple[str, ...] = (
    "plain",            # clean fill, ☑ / ☐ characters
    "spaced_labels",    # 单 位 名 称, half-width brackets in labels, spaced title
    "split_runs",       # every label and value split over several formatted runs
    "colon_in_label",   # 单位名称：XX公司 typed into the label cell, value cell left empty
    "tick_square",      # ■ / □
    "tick_check",       # √ replacing the box of the chosen option
    "tick_x",           # ☒ / ☐
    "tick_wingdings",   # w:sym Wingdings F0FE / F0A8
    "tick_wingdings2",  # w:sym Wingdings 2 F052 / F0A3
    "tick_pua",         # symbol-font runs holding the PUA code point (LibreOffice-style export)
    "tick_w14",         # Word content-control check boxes (w14:checkbox)
    "tick_legacy",      # legacy FORMCHECKBOX fields
    "other_text",       # 其他（请注明）with what the applicant wrote
    "numbers",          # 1,200 / 1200万元 / 约 35 / 35人
    "dates",            # 2026.6.30, 2026/6/30, 二〇二六年六月三十日, ...
    "merged",           # extra horizontal and vertical merges
    "nested",           # the form tables inside an outer one-cell table
    "linebreaks",       # line breaks inside name cells, paragraphs inside text cells
    "joint",            # three joint applicants, several separators, one per line
    "blank",            # some required fields left blank
    "hints_kept",       # the template's instruction text left in cells and sections
    "phones",           # (027)85317173, +86 138 ..., 138-1234-5678
    "mixed",            # several of the above, drawn by seed
)
TICK_STYLES = ("unicode", "square", "check", "x", "wingdings", "wingdings2", "pua", "w14", "legacy")
FORM_KINDS = (Kind.form_scenario, Kind.form_model, Kind.form_platform, Kind.form_terminal)

_TITLES = {
    Kind.form_scenario: ("附件1", "武汉市“人工智能+社会治理”典型应用场景案例申报书", "案例名称"),
    Kind.form_model: ("附件2", "武汉市社会治理行业模型和智能体项目申报书", "产品名称"),
    Kind.form_platform: ("附件3", "武汉市人工智能+社会治理公共服务平台申报书", "产品名称"),
    Kind.form_terminal: ("附件4", "武汉市社会治理行业智能终端产品申报书", "产品名称"),
}
ORG_TYPES = ("党政机关", "事业单位", "社会团体", "国有企业", "民营企业", "外资企业", "其他")
SCENARIO_TYPES = ("AI+市政设施", "AI+一网统管", "AI+公共资源", "AI+国土空间", "AI+应急安防", "AI+网络治理",
                  "AI+示范应用", "其他")
PRODUCT_TYPES = ("语言大模型", "视觉大模型", "多模态大模型", "智能体", "其他")
DATASET_SOURCES = ("自建", "采购", "其他")
MODALITIES = ("文本", "图像", "音频", "视频", "其他")
SERVICE_MODES = ("APP", "网页", "API接口", "小程序", "其他")
SERVICE_DOMAINS = ("市政设施", "城市治理", "公共资源", "国土空间", "应急安防", "网络治理", "示范应用", "其他")
DISTRICTS = ("江岸区", "江汉区", "硚口区", "汉阳区", "武昌区", "青山区", "洪山区", "东西湖区", "蔡甸区", "江夏区",
             "黄陂区", "新洲区", "武汉经开区", "东湖高新区", "长江新区")

COMMITMENT_TEXT = (
    "1.本单位对本申请材料的合法性、真实性、准确性和完整性负责。",
    "2.本单位自愿提供开展武汉市“人工智能+社会治理”创新应用征集入库所需的材料，并为相关工作提供方便。",
    "3.本单位同意将本申请材料向负责征集评选工作人员和评审专家公开。",
    "4.本申请材料用于武汉市“人工智能+社会治理”创新应用征集入库和评选补助相关工作，不再要求予以退还。",
    "特此承诺。",
)

# --- plausible content ---------------------------------------------------------------------------


def _short_names() -> list[str]:
    lines = (DATA / "company_short_names.txt").read_text(encoding="utf-8").splitlines()
    return [ln for ln in lines if ln and not ln.startswith("#")]


_SHORT: list[str] = []
_INDUSTRY = ("智能科技", "信息技术", "数字科技", "网络科技", "智慧城市科技", "软件", "电子科技", "数据科技",
             "人工智能科技", "机器人", "测绘科技", "安防科技")
_SUFFIX = ("有限公司", "股份有限公司", "有限责任公司")
_PUBLIC = ("城市运行管理中心", "大数据中心", "应急管理服务中心", "城市管理执法委员会信息中心", "自然资源和规划信息中心",
           "消防救援支队", "公共资源交易中心")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万钱严覃武戴莫孔向汤"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力晶鹏宇浩然子轩欣怡梓涵一诺雨萱博文思远志明海燕春梅国庆立新晓东"
_TITLES_JOB = ("总经理", "董事长", "副总经理", "技术总监", "主任", "副主任", "项目经理", "研发经理", "办公室主任", "科长",
               "工程师", "高级工程师", "市场部经理")
_TECH = ("多模态大模型", "视觉大模型", "深度学习", "知识图谱", "数字孪生", "边缘计算", "大语言模型", "智能体", "计算机视觉",
         "时空大数据")
_DOMAIN = ("城市内涝", "桥梁隧道", "燃气管网", "占道经营", "渣土车", "森林防火", "危化品运输", "电动自行车", "老旧小区",
           "河湖巡查", "违法建设", "网络谣言", "工地扬尘", "交通拥堵", "高空抛物")
_THING = ("智能预警系统", "智能巡检平台", "综合治理应用", "智能识别系统", "辅助决策平台", "一体化监测平台", "智能调度系统",
          "协同处置应用")
_TERMINAL = ("智能巡检机器人", "防爆排险机器人", "低空巡查无人机", "多参数监测终端", "智能执法记录仪", "危化品检测终端",
             "消防侦察机器人")
_SENTENCES = (
    "项目围绕社会治理中的实际痛点，构建了覆盖感知、分析、处置、评估的全流程闭环。",
    "系统接入视频、物联感知和业务数据，实现了对重点区域的全天候智能监测。",
    "通过引入大模型技术，事件识别准确率提升至百分之九十五以上。",
    "平台已在多个街道和社区落地运行，累计处置各类事件一万余件。",
    "项目采用国产化软硬件环境，满足等保三级等数据安全要求。",
    "相比传统人工巡查方式，巡查效率提升约三倍，人力成本下降约四成。",
    "方案具备良好的可复制性，可在同类城市和场景中快速推广部署。",
    "团队由三十余名算法、软件和行业专家组成，拥有多项发明专利和软件著作权。",
    "项目与高校和科研院所开展产学研合作，持续迭代模型和算法。",
    "在汛期、节假日等关键时段，系统有效支撑了指挥调度和应急处置。",
    "模型经过行业数据微调，在复杂场景下依然保持稳定的识别效果。",
    "通过统一的数据中台，打通了多个部门的业务系统和数据壁垒。",
)
_FUNDING = (
    "项目资金以企业自筹为主，财政资金为辅。",
    "研发资金主要用于开发费用、测试费用、人工费用以及设备采购费用。",
    "其中人工费用约占六成，软件及设备采购约占三成，其余为测试和材料费用。",
)


def _rng_short(rng: random.Random) -> str:
    if not _SHORT:
        _SHORT.extend(_short_names())
    return rng.choice(_SHORT)


def org_name(rng: random.Random) -> str:
    """A plausible Chinese organisation name (company, or now and then a public body)."""
    roll = rng.random()
    if roll < 0.12:
        return f"武汉市{rng.choice(DISTRICTS)}{rng.choice(_PUBLIC)}"
    short = _rng_short(rng)
    if roll < 0.22:
        return f"{short}（武汉）{rng.choice(_INDUSTRY)}{rng.choice(_SUFFIX)}"
    city = rng.choice(("武汉", "武汉", "武汉", "湖北", "湖北省"))
    return f"{city}{short}{rng.choice(_INDUSTRY)}{rng.choice(_SUFFIX)}"


def person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))


def credit_code(rng: random.Random, valid: bool = True) -> str:
    """A 统一社会信用代码 with a correct (or deliberately wrong) GB 32100 check character."""
    head = rng.choice(("91", "91", "91", "92", "12", "52", "11"))
    region = "4201" + rng.choice(("00", "02", "03", "04", "05", "06", "07", "11", "12", "13", "14", "15", "16"))
    body = "".join(rng.choice(USCC_ALPHABET[:10] if rng.random() < 0.6 else USCC_ALPHABET) for _ in range(9))
    first17 = head + region + body
    check = uscc_check_char(first17)
    if not valid:
        check = rng.choice([c for c in USCC_ALPHABET if c != check])
    return first17 + check


def phone(rng: random.Random, mobile: bool | None = None) -> str:
    """A normalised mainland phone: 027-8xxxxxxx or a mobile."""
    if mobile is None:
        mobile = rng.random() < 0.6
    if mobile:
        return rng.choice(("13", "15", "17", "18", "19")) + "".join(rng.choice("0123456789") for _ in range(9))
    return "027-" + rng.choice("5678") + "".join(rng.choice("0123456789") for _ in range(7))


def project_name(rng: random.Random, kind: Kind) -> str:
    if kind == Kind.form_terminal:
        return f"{rng.choice(('智巡', '天眼', '鹰眼', '守护', '安行', '灵犀'))}{rng.choice(_TERMINAL)}"
    if kind == Kind.form_model:
        return f"{rng.choice(_DOMAIN)}{rng.choice(('治理大模型', '智能体', '行业大模型', '研判智能体'))}"
    if kind == Kind.form_platform:
        return f"武汉市{rng.choice(('城市治理', '社会治理', '一网统管', '低空', '应急'))}人工智能公共服务平台"
    return f"基于{rng.choice(_TECH)}的{rng.choice(_DOMAIN)}{rng.choice(_THING)}"


def _paragraphs(rng: random.Random, n_par: tuple[int, int] = (1, 3), pool: tuple[str, ...] = _SENTENCES) -> str:
    pars = []
    for _ in range(rng.randint(*n_par)):
        pars.append("".join(rng.sample(pool, rng.randint(1, min(3, len(pool))))))
    return "\n".join(pars)


def _wan(rng: random.Random, lo: float, hi: float) -> float:
    v = rng.uniform(lo, hi)
    return float(round(v)) if rng.random() < 0.6 else round(v, 1)


# --- truth values per kind -----------------------------------------------------------------------


def base_values(kind: Kind, rng: random.Random, *, n_joint: int | None = None) -> dict[str, Any]:
    """SPEC 3 values for one application, in canonical form (what extraction must return)."""
    org = org_name(rng)
    if n_joint is None:
        n_joint = rng.choice((0, 0, 1, 2))
    joint = []
    while len(joint) < n_joint:
        j = org_name(rng)
        if j != org and j not in joint:
            joint.append(j)
    v: dict[str, Any] = {
        "applicant": org,
        "project_name": project_name(rng, kind),
        "apply_date": f"2026-0{rng.choice((6, 7))}-{rng.randint(1, 28):02d}",
        "org_name": org,
        "credit_code": credit_code(rng),
        "org_address": f"武汉市{rng.choice(DISTRICTS)}{rng.choice(('光谷大道', '解放大道', '中北路', '发展大道', '高新大道', '汉阳大道'))}{rng.randint(1, 999)}号",
        "org_type": rng.choice(ORG_TYPES[:6]),
        "leader_name": person_name(rng),
        "leader_title": rng.choice(_TITLES_JOB),
        "leader_phone": phone(rng),
        "contact_name": person_name(rng),
        "contact_title": rng.choice(_TITLES_JOB),
        "contact_phone": phone(rng),
        "org_intro": _paragraphs(rng),
        "funding": _paragraphs(rng, (1, 2), _FUNDING),
    }
    if joint:
        v["joint_applicants"] = joint
        v["joint_intro"] = _paragraphs(rng, (1, 1))
    if kind == Kind.form_scenario:
        v["scenario_type"] = rng.choice(SCENARIO_TYPES[:7])
        for k in ("background", "implementation", "outcomes", "promotion_value"):
            v[k] = _paragraphs(rng)
    elif kind == Kind.form_model:
        v.update(
            revenue_2025=_wan(rng, 200, 80000), ai_revenue_2025=_wan(rng, 50, 20000),
            staff_total=rng.randint(20, 3000), rd_staff=rng.randint(5, 800), ai_rd_staff=rng.randint(3, 300),
            rd_investment_3y=_wan(rng, 100, 20000), product_type=rng.choice(PRODUCT_TYPES[:4]),
            base_model_name=rng.choice(("DeepSeek-R1", "通义千问Qwen2.5-72B", "文心一言4.0", "GLM-4", "自研")),
            param_count_100m=float(rng.choice((7, 14, 32, 70, 671, 1.5))),
            dataset_source=rng.choice(DATASET_SOURCES[:2]),
            dataset_name=f"{rng.choice(_DOMAIN)}事件数据集",
            dataset_scale={m: float(rng.choice((0.5, 1, 2, 3.5, 12, 40)))
                           for m in sorted(rng.sample(MODALITIES[:4], rng.randint(1, 3)), key=MODALITIES.index)},
            filing_status=rng.choice(("已完成国家网信办生成式人工智能服务备案。", "已完成湖北省委网信办登记，国家备案申报中。")),
            service_modes=sorted(rng.sample(SERVICE_MODES[:4], rng.randint(1, 3)), key=SERVICE_MODES.index),
        )
        for k in ("overview", "innovation", "outcomes"):
            v[k] = _paragraphs(rng)
    elif kind == Kind.form_platform:
        v.update(
            revenue_2025=f"总营收{rng.randint(500, 90000)}万元，人工智能收入{rng.randint(50, 9000)}万元",
            revenue_2026h1=f"总营收{rng.randint(200, 40000)}万元，人工智能收入{rng.randint(20, 4000)}万元（预估）",
            staff_total=rng.randint(20, 3000), ops_staff=rng.randint(3, 200), ai_rd_staff=rng.randint(3, 300),
            platform_intro=_paragraphs(rng, (1, 2)),
            platform_domain=f"https://{rng.choice(('ai', 'city', 'zl', 'gov'))}.{rng.choice(('whzl', 'whai', 'wuhanai'))}.cn",
            service_modes=sorted(rng.sample(SERVICE_MODES[:4], rng.randint(1, 3)), key=SERVICE_MODES.index),
            service_domains=sorted(rng.sample(SERVICE_DOMAINS[:7], rng.randint(1, 3)), key=SERVICE_DOMAINS.index),
            open_models=rng.randint(1, 200), open_datasets_tb=float(rng.choice((0.5, 2, 15, 120))),
            usable_models=rng.randint(1, 100), compute_p=float(rng.choice((10, 50, 200, 1000.5))),
            ai_providers=rng.randint(0, 80), ai_companies=rng.randint(0, 500),
        )
        for k in ("overview", "innovation", "construction", "outcomes"):
            v[k] = _paragraphs(rng)
    elif kind == Kind.form_terminal:
        v.update(
            revenue_2025=_wan(rng, 200, 80000), ai_revenue_2025=_wan(rng, 50, 20000),
            staff_total=rng.randint(20, 3000), rd_staff=rng.randint(5, 800), ai_rd_staff=rng.randint(3, 300),
            product_summary="".join(rng.sample(_SENTENCES, 3)),
            rd_cost_3y=_wan(rng, 100, 20000),
        )
        for k in ("overview", "scenarios_outcomes", "innovation_experience"):
            v[k] = _paragraphs(rng)
    return v


# --- rendering options ---------------------------------------------------------------------------


@dataclass
class Style:
    """How one generated form is typed: every switch is one applicant habit."""

    spaced_labels: bool = False
    split_runs: bool = False
    colon_in_label: bool = False
    tick: str = "unicode"
    other_text: bool = False
    numbers: bool = False
    dates: bool = False
    merged: bool = False
    nested: bool = False
    linebreaks: bool = False
    joint: bool = False
    blank: bool = False
    hints_kept: bool = False
    phones: bool = False


def style_for(variant: str, rng: random.Random) -> Style:
    s = Style()
    if variant in ("plain",):
        return s
    if variant.startswith("tick_"):
        s.tick = {"tick_square": "square", "tick_check": "check", "tick_x": "x"}.get(variant, variant[5:])
        return s
    if variant == "mixed":
        flags = [f for f in ("spaced_labels", "split_runs", "colon_in_label", "other_text", "numbers", "dates",
                             "merged", "nested", "linebreaks", "joint", "hints_kept", "phones")]
        for f in rng.sample(flags, 4):
            setattr(s, f, True)
        s.tick = rng.choice(TICK_STYLES)
        return s
    if not hasattr(s, variant):
        raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
    setattr(s, variant, True)
    return s


class _Writer:
    """python-docx helpers that type text the way the style says."""

    def __init__(self, doc: DocxDocument, style: Style, rng: random.Random) -> None:
        self.doc = doc
        self.s = style
        self.rng = rng

    def label(self, text: str) -> str:
        if self.s.spaced_labels and len(text) <= 10 and self.rng.random() < 0.7:
            text = " ".join(text)
        if self.s.spaced_labels:
            text = text.replace("（", "(").replace("）", ")")
        return text

    def runs(self, p: Paragraph, text: str, bold: bool = False) -> None:
        """Add text to a paragraph, split into several runs when the style says so."""
        pieces = [text]
        if self.s.split_runs and len(text) > 2:
            cuts = sorted(self.rng.sample(range(1, len(text)), min(3, len(text) - 1)))
            pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        for i, piece in enumerate(pieces):
            lines = piece.split("\n")
            run = p.add_run(lines[0])
            run.bold = bold or (self.s.split_runs and i % 2 == 1)
            for ln in lines[1:]:
                run.add_break()
                run = p.add_run(ln)
                run.bold = bold

    def para(self, text: str = "", bold: bool = False, container: Any = None) -> Paragraph:
        p = (container or self.doc).add_paragraph()
        if text:
            self.runs(p, text, bold)
        return p

    def cell(self, cell: _Cell, text: str, *, multiline: bool = False) -> None:
        """Write text into a cell: lines of a multi-line value go in separate paragraphs."""
        p = cell.paragraphs[0]
        lines = text.split("\n") if multiline else [text]
        self.runs(p, lines[0])
        for ln in lines[1:]:
            self.runs(cell.add_paragraph(), ln)

    # Tick marks --------------------------------------------------------------------------------

    def box(self, p: Paragraph, ticked: bool) -> None:
        t = self.s.tick
        if t in ("unicode", "square", "check", "x"):
            on = {"unicode": "☑", "square": "■", "check": "√", "x": "☒"}[t]
            p.add_run(on if ticked else ("☐" if t in ("x", "unicode") and self.rng.random() < 0.5 else "□"))
        elif t in ("wingdings", "wingdings2"):
            font = "Wingdings" if t == "wingdings" else "Wingdings 2"
            char = {("wingdings", True): "F0FE", ("wingdings", False): "F0A8",
                    ("wingdings2", True): "F052", ("wingdings2", False): "F0A3"}[(t, ticked)]
            r = p.add_run()
            sym = OxmlElement("w:sym")
            sym.set(qn("w:font"), font)
            sym.set(qn("w:char"), char)
            r._r.append(sym)
        elif t == "pua":
            r = p.add_run("\uf052" if ticked else "\uf0a3")
            rfonts = OxmlElement("w:rFonts")
            for a in ("w:ascii", "w:hAnsi"):
                rfonts.set(qn(a), "Wingdings 2")
            r._r.get_or_add_rPr().append(rfonts)
        elif t == "w14":
            p._p.append(_w14_checkbox(ticked))
        elif t == "legacy":
            _legacy_checkbox(p, ticked)
        else:
            raise ValueError(t)

    def choices(self, cell: _Cell, options: tuple[str, ...], chosen: list[str], printed: dict[str, str]) -> None:
        """A row of options with boxes; `chosen` holds option texts or 其他：<text> values."""
        p = cell.paragraphs[0]
        chosen_base = {c.split("：", 1)[0] for c in chosen}
        for i, opt in enumerate(options):
            ticked = opt in chosen_base
            if self.s.tick == "check" and ticked:
                p.add_run("√")
            else:
                self.box(p, ticked)
            text = printed.get(opt, opt)
            if opt == "其他":
                extra = next((c.split("：", 1)[1] for c in chosen if c.startswith("其他：")), "")
                if extra:
                    sep = self.rng.choice(("", "：", "__", " "))
                    text += sep + extra + ("__" if sep == "__" else "")
                elif "请注明" in text:
                    text += "________"
            self.runs(p, text)
            if i < len(options) - 1:
                p.add_run(self.rng.choice(("  ", " ", "\u3000")))


def _w14_checkbox(ticked: bool) -> Any:
    sdt = OxmlElement("w:sdt")
    pr = OxmlElement("w:sdtPr")
    cb = OxmlElement("w14:checkbox")
    chk = OxmlElement("w14:checked")
    chk.set(qn("w14:val"), "1" if ticked else "0")
    cb.append(chk)
    for tag, val in (("w14:checkedState", "2612"), ("w14:uncheckedState", "2610")):
        st = OxmlElement(tag)
        st.set(qn("w14:val"), val)
        st.set(qn("w14:font"), "MS Gothic")
        cb.append(st)
    pr.append(cb)
    sdt.append(pr)
    content = OxmlElement("w:sdtContent")
    r = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = "☒" if ticked else "☐"
    r.append(t)
    content.append(r)
    sdt.append(content)
    return sdt


def _legacy_checkbox(p: Paragraph, ticked: bool) -> None:
    r1 = p.add_run()
    fc = OxmlElement("w:fldChar")
    fc.set(qn("w:fldCharType"), "begin")
    ff = OxmlElement("w:ffData")
    name = OxmlElement("w:name")
    name.set(qn("w:val"), "Check")
    ff.append(name)
    ff.append(OxmlElement("w:enabled"))
    cb = OxmlElement("w:checkBox")
    cb.append(OxmlElement("w:sizeAuto"))
    d = OxmlElement("w:default")
    d.set(qn("w:val"), "1" if ticked else "0")
    cb.append(d)
    ff.append(cb)
    fc.append(ff)
    r1._r.append(fc)
    r2 = p.add_run()
    it = OxmlElement("w:instrText")
    it.set(qn("xml:space"), "preserve")
    it.text = " FORMCHECKBOX "
    r2._r.append(it)
    for kind in ("separate", "end"):
        r = p.add_run()
        e = OxmlElement("w:fldChar")
        e.set(qn("w:fldCharType"), kind)
        r._r.append(e)


# --- value rendering -----------------------------------------------------------------------------


def _fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def render_wan(v: float, style: Style, rng: random.Random) -> str:
    if not style.numbers:
        return _fmt_num(v)
    r = rng.randrange(4)
    if r == 0 and float(v).is_integer():
        return f"{int(v):,}"
    if r == 1:
        return f"{_fmt_num(v)}万元"
    if r == 2:
        return f"约 {_fmt_num(v)}"
    return f"{_fmt_num(v)} 万元"


def render_int(v: int, style: Style, rng: random.Random, unit: str = "人") -> str:
    if not style.numbers:
        return str(v)
    return rng.choice((f"{v}{unit}", f"约 {v}", f"{v:,}", f"{v} {unit}"))


def render_date(iso: str, style: Style, rng: random.Random) -> str:
    y, m, d = (int(x) for x in iso.split("-"))
    if not style.dates:
        return f"{y} 年 {m} 月 {d} 日"
    cn = "〇一二三四五六七八九"

    def cn_num(n: int) -> str:
        if n < 10:
            return cn[n]
        return ("" if n < 20 else cn[n // 10]) + "十" + (cn[n % 10] if n % 10 else "")

    return rng.choice((
        f"{y}年{m}月{d}日", f"{y}.{m}.{d}", f"{iso}", f"{y}/{m}/{d}", f"{y}年{m:02d}月{d:02d}日",
        "".join(cn[int(c)] for c in str(y)) + f"年{cn_num(m)}月{cn_num(d)}日",
    ))


def render_phone(p: str, style: Style, rng: random.Random) -> str:
    if not style.phones:
        return p
    if "-" in p:
        area, local = p.split("-")
        return rng.choice((f"({area}){local}", f"（{area}）{local}", f"{area} {local[:4]} {local[4:]}", f"{area}{local}"))
    return rng.choice((f"+86 {p[:3]} {p[3:7]} {p[7:]}", f"{p[:3]}-{p[3:7]}-{p[7:]}", f"+86-{p}", f"{p[:3]} {p[3:7]} {p[7:]}"))


def _break_name(name: str, style: Style, rng: random.Random) -> str:
    if style.linebreaks and len(name) > 6:
        k = rng.randint(3, len(name) - 3)
        return name[:k] + "\n" + name[k:]
    return name


# --- documents -----------------------------------------------------------------------------------


@dataclass
class GeneratedForm:
    """One generated document and what extraction must return for it."""

    kind: Kind
    data: bytes
    expected_fields: dict[str, Any]
    variant: str = "plain"
    seed: int = 0
    filename: str = "form.docx"
    style: Style = field(default_factory=Style)

    @property
    def org_name(self) -> str | None:
        return self.expected_fields.get("org_name") or self.expected_fields.get("recommender")

    @property
    def project_name(self) -> str | None:
        return self.expected_fields.get("project_name")


_HINTS = {
    "funding_scenario": "（自筹、财政资金或其他，请详细介绍。研发资金组成，包括开发费用、测试费用、人工费用、软件及设备采购费用、材料费用、制造费用）",
    "org_intro_scenario": "（包括单位基本信息，人工智能应用赋能等情况）",
    "joint_intro_scenario": "（简要介绍联合单位在场景建设中的主要支撑作用等）",
    "org_intro": "（包括单位基本情况、主营业务及产品、核心优势、研发团队等，重点突出人工智能研发团队及领军人才、人工智能的技术攻关和产品研发、人工智能应用赋能等情况）",
    "org_intro_platform": "（包括公司基本情况、主营业务及产品、核心优势、研发团队等，重点突出人工智能研发团队及领军人才、人工智能的技术攻关和产品研发、人工智能应用赋能等情况）",
    "joint_intro_model": "（简要介绍联合单位在模型和智能体研发中的主要支撑作用等）",
    "joint_intro_platform": "（简要介绍联合单位在平台开发和运营中主要支撑作用等）",
    "joint_intro_terminal": "（简要介绍联合单位在产品研发中的主要支撑作用等）",
    "platform_intro": "（包括平台基本情况、软硬件设施和能力、应用服务规模、创新带动效应、经济社会效益等）",
    "rd_investment_3y": "(近三年时间: 2023年6月1日至2026年5月30日)",
    "filing_status": "(包括国家网信办模型(算法)备案、省委网信办登记等相关情况)",
    "funding_model": "(自筹、财政资金或其他,请详细介绍。研发资金组成,包括语料和数据费用、产品开发费用、测试费用、人工费用、设备采购和材料费用等)",
    "funding_platform": "（自筹、财政资金或其他，请详细介绍。研发资金组成，包括语料和数据费用、模型开发费用、测试费用、人工费用、设备采购和材料费用等）",
    "product_summary": "(300字以内)",
    "rd_cost_3y": "(统计时段: 2023年5月1日至2026年4月30日)",
    "funding_terminal": "(自筹、财政资金或其他, 请详细介绍。研发资金组成, 包括产品开发费用、测试费用、人工费用、设备采购和材料费用等)",
}

_SECTIONS = {
    Kind.form_scenario: ("二、案例描述", (
        ("background", "背景", "重点阐述利用人工智能技术所解决的社会治理领域痛点或关键问题，简要介绍技术创新性和前沿性。"),
        ("implementation", "实施情况", "包括但不限于需求分析、技术研发或个性化定制、应用优化及数据安全防护等方面切实可行的解决方案。可图文并茂。"),
        ("outcomes", "应用成效", "重点介绍在社会治理领域具体应用场景落地情况及创新性，介绍可带来的经济效益及社会效益。"),
        ("promotion_value", "推广价值", "包括但不限于当前应用深度及广度、技术方案在不同场景的适应性与灵活性，以及在社会治理领域的示范引领作用等。"),
    ), "三、附件材料"),
    Kind.form_model: ("三、项目内容", (
        ("overview", "项目概述", "包括立项的背景、意义、国内外研究现状和发展趋势，本项目进展情况和下一步计划。项目牵头或参与制修订标准情况、参与省部级以上项目情况以及获得荣誉表彰情况。"),
        ("innovation", "技术创新", "重点介绍项目在人工智能技术应用等方面的创新情况。包括采用的大模型技术，使用的架构、数据集、工具箱，产品的关键技术、性能指标和创新性。算力使用量、使用类型、服务方式、算力供给方情况，产品部署灵活性与兼容性以及安全保障情况。"),
        ("outcomes", "应用成效", "包括产品应用案例，介绍投入产出比、可带来的经济效益及社会效益，可与使用技术前进行对比，包括但不限于问题解决情况、效益提升、服务改善、管理优化、产品升级等方面的成效。"),
    ), "四、附件材料"),
    Kind.form_platform: ("三、平台项目内容", (
        ("overview", "项目概述", "包括项目立项的背景与意义、国内外相关领域的研究现状与发展趋势，平台基本情况，项目当前进展与下一步计划，项目牵头或参与标准制修订的情况、参与省部级以上项目的情况，以及所获得的荣誉与表彰。"),
        ("innovation", "技术创新", "包括平台架构、可使用模型、数据集、工具箱，产品的关键技术、性能指标和创新性，并与国内外同类平台进行对比分析。"),
        ("construction", "建设内容", "包括平台各子模块功能情况、平台具备的服务能力情况，并与国内外同类平台进行对比分析。"),
        ("outcomes", "应用成效", "包括平台在人工智能赋能社会治理的重要作用，平台服务武汉市及其他城市社会治理行业的实际情况案例，介绍平台可带来的经济效益及社会效益。"),
    ), "四、附件材料"),
    Kind.form_terminal: ("三、产品介绍", (
        ("overview", "产品概述", "包括研发产品的背景和意义, 国内外研究现状和发展趋势, 产品技术路线和关键技术, 实现的功能, 在人工智能领域技术水平等。"),
        ("scenarios_outcomes", "适用场景及应用成效", "简要介绍产品的服务对象、应用领域及市场表现情况、经济社会成效等。"),
        ("innovation_experience", "创新经验", "包括产品研发应用过程中总结的先进经验、创新点等。"),
    ), "四、附件材料"),
}
_ENUMS = ("（一）", "（二）", "（三）", "（四）")


class _FormBuilder:
    def __init__(self, kind: Kind, values: dict[str, Any], style: Style, rng: random.Random) -> None:
        self.kind = kind
        self.v = values
        self.s = style
        self.rng = rng
        self.doc = docx.Document()
        self.w = _Writer(self.doc, style, rng)
        self.blank: set[str] = set()

    # Grid tables: each row is a list of (text, span, kind) where kind is "label", "value", "multi",
    # "choice:<key>", "vm" (continuation of a vertically merged label) or "vmstart".
    def grid(self, rows: list[list[tuple[str, int, str]]], ncols: int) -> None:
        container: Any = self.doc
        if self.s.nested:
            outer = self.doc.add_table(rows=1, cols=1)
            outer.style = self.doc.styles["Table Grid"]
            container = outer.cell(0, 0)
        table: DocxTable = container.add_table(rows=len(rows), cols=ncols)
        table.style = self.doc.styles["Table Grid"]
        vm_start: dict[int, int] = {}
        for r, spec in enumerate(rows):
            col = 0
            cells = table.rows[r].cells
            for text, span, ckind in spec:
                cell = cells[col]
                if span > 1:
                    cell = cell.merge(cells[col + span - 1])
                if ckind == "vmstart":
                    vm_start[col] = r
                if ckind == "vm":
                    table.cell(vm_start[col], col).merge(table.cell(r, col))
                else:
                    self.fill(cell, text, ckind)
                col += span

    def fill(self, cell: _Cell, text: str, ckind: str) -> None:
        if ckind in ("label", "vmstart"):
            self.w.cell(cell, self.w.label(text))
        elif ckind.startswith("choice:"):
            key, options, printed = _CHOICE_SPECS[ckind[7:]]
            value = self.v.get(key)
            chosen = [] if value is None else (value if isinstance(value, list) else [value])
            if key == "dataset_scale":
                self.dataset_cell(cell)
            else:
                self.w.choices(cell, options, chosen, printed)
        else:
            self.w.cell(cell, text, multiline=(ckind == "multi"))

    def dataset_cell(self, cell: _Cell) -> None:
        p = cell.paragraphs[0]
        scale: dict[str, float] = self.v.get("dataset_scale") or {}
        for m in MODALITIES:
            self.w.box(p, m in scale)
            p.add_run(m)
            p.add_run(f"{_fmt_num(scale[m])}" if m in scale else "_____")
            p.add_run("  ")

    # Values ---------------------------------------------------------------------------------------

    def val(self, key: str, text: str | None = None, hint: str | None = None) -> str:
        """Cell text for a value (empty when the field is blank)."""
        if key not in self.v:
            return hint if (hint and self.s.hints_kept) else ""
        raw = self.v[key]
        if text is None:
            if key.endswith("phone"):
                text = render_phone(raw, self.s, self.rng)
            elif isinstance(raw, float):
                text = render_wan(raw, self.s, self.rng)
            elif isinstance(raw, int):
                text = render_int(raw, self.s, self.rng, "个" if key in _COUNT_KEYS else "人")
            elif key in ("org_name", "project_name", "org_address"):
                text = _break_name(str(raw), self.s, self.rng)
            else:
                text = str(raw)
        if hint and self.s.hints_kept:
            text = hint + "\n" + text
        return text

    def labelled(self, label: str, key: str, span: int, hint: str | None = None, multi: bool = False) -> list[tuple[str, int, str]]:
        """A label cell and its value cell, or (colon_in_label) the value typed into the label cell."""
        value = self.val(key, hint=hint)
        if self.s.colon_in_label and not multi and key in self.v and "\n" not in value and self.rng.random() < 0.6:
            return [(f"{label}{self.rng.choice(('：', ':', '： '))}{value}", 1, "value"), ("", span, "value")]
        return [(label, 1, "label"), (value, span, "multi" if multi or "\n" in value else "value")]

    # The document -----------------------------------------------------------------------------------

    def cover(self) -> None:
        no, title, name_label = _TITLES[self.kind]
        w = self.w
        w.para(no)
        if self.s.spaced_labels:
            title = title.replace("申报书", " 申报书").replace("场景案例", " 场景案例")
        w.para(title, bold=True)
        sp = lambda lbl: w.label(lbl)  # noqa: E731
        w.para(f"{sp('申报单位')}  {self.v.get('applicant', '________________')}  (加盖公章)")
        joint = self.v.get("joint_applicants") or []
        if not joint:
            w.para(f"{sp('联合申报单位')}  ________________  (加盖公章)")
        elif self.s.joint and len(joint) > 1 and self.rng.random() < 0.5:
            w.para(f"{sp('联合申报单位')}  {joint[0]}")
            for j in joint[1:]:
                w.para(f"{j}（加盖公章）" if self.rng.random() < 0.5 else j)
        else:
            sep = self.rng.choice(("、", "，", "；", ";", "\n")) if self.s.joint else "、"
            w.para(f"{sp('联合申报单位')}  {sep.join(joint)}  (加盖公章)")
        w.para(f"{sp(name_label)}  {self.v.get('project_name', '________________')}")
        w.para(f"{sp('单位地址')}  {self.v.get('org_address', '________________')}")
        if "apply_date" in self.v:
            w.para(f"{sp('申报日期')}{self.rng.choice((':', '：', ' '))} {render_date(self.v['apply_date'], self.s, self.rng)}")
        else:
            w.para(f"{sp('申报日期')}: _____ 年 _____ 月 _____ 日")
        w.para("武汉市经济和信息化局 武汉市公安局")
        w.para("2026 年")
        self.doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)

    def table_one(self) -> None:
        k = self.kind
        contact = "申报人姓名" if k == Kind.form_platform else "联系人姓名"
        group = "联系人情况" if k == Kind.form_platform else "申报人员"
        rows: list[list[tuple[str, int, str]]] = [
            self.labelled("单位名称", "org_name", 6),
            self.labelled("统一社会信用代码", "credit_code", 6),
            self.labelled("单位地址", "org_address", 6),
            [("单位性质", 1, "label"), ("", 6, "choice:org_type")],
            [(group, 1, "vmstart"), *self.labelled("负责人姓名", "leader_name", 1),
             *self.labelled("职务", "leader_title", 1), *self.labelled("电话", "leader_phone", 1)],
            [("", 1, "vm"), *self.labelled(contact, "contact_name", 1),
             *self.labelled("职务", "contact_title", 1), *self.labelled("电话", "contact_phone", 1)],
        ]
        sfx = {Kind.form_scenario: "_scenario", Kind.form_model: "_model", Kind.form_platform: "_platform",
               Kind.form_terminal: "_terminal"}[k]
        if k == Kind.form_scenario:
            rows += [
                self.labelled("场景名称", "project_name", 6),
                [("场景类型", 1, "label"), ("", 6, "choice:scenario_type")],
                self.labelled("建设资金来源及组成", "funding", 6, _HINTS["funding_scenario"], multi=True),
                self.labelled("单位情况介绍", "org_intro", 6, _HINTS["org_intro_scenario"], multi=True),
                self.labelled("联合单位情况介绍（如有）", "joint_intro", 6, _HINTS["joint_intro_scenario"], multi=True),
            ]
        elif k == Kind.form_platform:
            rows += [
                [("单位经营情况", 1, "label"), ("2025 年总营收和人工智能收入（万元）", 1, "label"),
                 (self.val("revenue_2025"), 2, "value"),
                 ("2026 年上半年总营收和人工智能收入（万元，可预估）", 1, "label"), (self.val("revenue_2026h1"), 2, "value")],
                [("平台人才情况", 1, "label"), *self.labelled("员工总数", "staff_total", 1),
                 *self.labelled("运营人员数量", "ops_staff", 1), *self.labelled("人工智能研发人员数量", "ai_rd_staff", 1)],
                self.labelled("平台建设或运营单位情况介绍", "org_intro", 6, _HINTS["org_intro_platform"], multi=True),
                self.labelled("联合单位情况介绍（如有）", "joint_intro", 6, _HINTS["joint_intro_platform"], multi=True),
                self.labelled("平台情况介绍", "platform_intro", 6, _HINTS["platform_intro"], multi=True),
            ]
        else:
            rows += [
                [("单位经营情况", 1, "label"), ("2025 年营业收入 (万元)", 2, "label"), (self.val("revenue_2025"), 1, "value"),
                 ("2025 年人工智能营业收入 (万元)", 2, "label"), (self.val("ai_revenue_2025"), 1, "value")],
                [("单位人才情况", 1, "label"), *self.labelled("员工总数", "staff_total", 1),
                 *self.labelled("研发人员数量", "rd_staff", 1), *self.labelled("人工智能研发人员数量", "ai_rd_staff", 1)],
                self.labelled("单位情况介绍", "org_intro", 6, _HINTS["org_intro"], multi=True),
                self.labelled("联合单位情况介绍（如有）", "joint_intro", 6, _HINTS["joint_intro" + sfx], multi=True),
            ]
        if self.s.merged:
            # Label cells widened over two grid columns where the row allows it.
            rows = [_widen(r) for r in rows]
            self.grid(rows, 8)
        else:
            self.grid(rows, 7)

    def table_two(self) -> None:
        k = self.kind
        if k == Kind.form_model:
            self.w.para("二、项目基本情况", bold=True)
            rows = [
                self.labelled("产品名称", "project_name", 4),
                self.labelled("近三年研发投入 (万元)", "rd_investment_3y", 4, _HINTS["rd_investment_3y"]),
                [("产品类型", 1, "label"), ("", 4, "choice:product_type")],
                [("模型指标", 1, "label"), *self.labelled("基础大模型 名称", "base_model_name", 1),
                 *self.labelled("参数量 (亿)", "param_count_100m", 1)],
                [("数据指标", 1, "vmstart"), ("数据集来源", 1, "label"), ("", 3, "choice:dataset_source")],
                [("", 1, "vm"), *self.labelled("数据集名称", "dataset_name", 3)],
                [("", 1, "vm"), ("数据集模态与 规模(TB)", 1, "label"), ("", 3, "choice:dataset_scale")],
                self.labelled("备案情况", "filing_status", 4, _HINTS["filing_status"], multi=True),
                [("服务方式", 1, "label"), ("", 4, "choice:service_modes")],
                self.labelled("近三年 研发资金来源 及组成", "funding", 4, _HINTS["funding_model"], multi=True),
            ]
            self.grid(rows, 5)
        elif k == Kind.form_platform:
            self.w.para("二、平台基本情况", bold=True)
            rows = [
                self.labelled("平台名称", "project_name", 4),
                self.labelled("平台域名", "platform_domain", 4),
                [("服务方式", 1, "label"), ("", 4, "choice:service_modes")],
                [("服务领域", 1, "label"), ("", 4, "choice:service_domains")],
                [("平台指标", 1, "vmstart"), *self.labelled("开源模型资源数量（个）", "open_models", 1),
                 *self.labelled("开放数据集资源数量（TB）", "open_datasets_tb", 1)],
                [("", 1, "vm"), *self.labelled("可使用模型数量（个）", "usable_models", 1),
                 *self.labelled("算力规模（P）", "compute_p", 1)],
                [("", 1, "vm"), *self.labelled("入驻人工智能服务商数量（个）", "ai_providers", 1),
                 *self.labelled("注册人工智能企业数量（个）", "ai_companies", 1)],
                self.labelled("近三年平台研发资金来源及组成", "funding", 4, _HINTS["funding_platform"], multi=True),
            ]
            self.grid(rows, 5)
        elif k == Kind.form_terminal:
            self.w.para("二、产品基本情况", bold=True)
            rows = [
                self.labelled("产品名称", "project_name", 1),
                self.labelled("产品简介", "product_summary", 1, _HINTS["product_summary"], multi=True),
                self.labelled("近三年研发成本(万元)", "rd_cost_3y", 1, _HINTS["rd_cost_3y"]),
                self.labelled("产品研发资金来源及组成", "funding", 1, _HINTS["funding_terminal"], multi=True),
            ]
            self.grid(rows, 2)

    def sections(self) -> None:
        heading, secs, annex = _SECTIONS[self.kind]
        w = self.w
        w.para(heading, bold=True)
        for i, (key, label, hint) in enumerate(secs):
            enum = _ENUMS[i]
            head = f"{enum}{w.label(label) if self.s.spaced_labels else label}。"
            text = self.v.get(key, "")
            p = w.para()
            w.runs(p, head, bold=True)
            pars = text.split("\n") if text else []
            if self.s.hints_kept or not pars:
                w.runs(p, hint)
            elif self.rng.random() < 0.5:
                w.runs(p, pars.pop(0))
            for par in pars:
                w.para(par)
        w.para(annex, bold=True)
        w.para("（一）承诺书（见模板）；")
        w.para("（二）营业执照（事业单位提供法人证书）副本复印件；")
        w.para("（三）体现技术水平、建设进展和应用情况，以及取得成效的相关证明材料，包括但不限于专利、软著、获奖等情况。")
        self.doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        _commitment_page(self.doc, None, None)

    def build(self) -> bytes:
        self.cover()
        self.w.para("一、单位基本情况", bold=True)
        self.table_one()
        self.table_two()
        self.sections()
        buf = io.BytesIO()
        self.doc.save(buf)
        return buf.getvalue()


_COUNT_KEYS = {"open_models", "usable_models", "ai_providers", "ai_companies"}
_CHOICE_SPECS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "org_type": ("org_type", ORG_TYPES, {"其他": "其他（请注明）"}),
    "scenario_type": ("scenario_type", SCENARIO_TYPES, {"其他": "其他（请注明）"}),
    "product_type": ("product_type", PRODUCT_TYPES, {"其他": "其他(请注明)"}),
    "dataset_source": ("dataset_source", DATASET_SOURCES, {"其他": "其他(请注明)"}),
    "dataset_scale": ("dataset_scale", MODALITIES, {}),
    "service_modes": ("service_modes", SERVICE_MODES, {"其他": "其他（请注明）"}),
    "service_domains": ("service_domains", SERVICE_DOMAINS, {"其他": "其他（可多选）"}),
}


def _widen(row: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    """One more grid column: the first label spans two columns (merged variant)."""
    first = row[0]
    if first[2] in ("label", "vmstart", "vm") or (first[2] == "value" and first[1] == 1):
        return [(first[0], 2, first[2]), *row[1:]]
    return [(first[0], first[1] + 1, first[2]), *row[1:]]


def _commitment_page(doc: DocxDocument, org: str | None, date_text: str | None) -> None:
    doc.add_paragraph().add_run("承诺书").bold = True
    doc.add_paragraph("(模板)" if org is None else "")
    for line in COMMITMENT_TEXT:
        doc.add_paragraph(line)
    doc.add_paragraph("申请单位法人代表（签名）：")
    doc.add_paragraph(f"申请单位（盖章）：{org or ''}")
    doc.add_paragraph(date_text or "年 月 日")


def _apply_style_to_values(kind: Kind, v: dict[str, Any], style: Style, rng: random.Random) -> None:
    """Adjust the truth values for variants that change what is in the form."""
    if style.joint:
        joint = list(v.get("joint_applicants") or [])
        while len(joint) < 3:
            j = org_name(rng)
            if j != v["applicant"] and j not in joint:
                joint.append(j)
        v["joint_applicants"] = joint
        v.setdefault("joint_intro", _paragraphs(rng, (1, 1)))
    if style.other_text:
        extra = rng.choice(("智慧社区", "城市更新", "文旅融合", "基层治理"))
        v["org_type"] = "其他：" + rng.choice(("民办非企业单位", "合伙企业", "高校科研院所"))
        if kind == Kind.form_scenario:
            v["scenario_type"] = f"其他：AI+{extra}"
        if kind == Kind.form_model:
            v["product_type"] = "其他：" + rng.choice(("行业小模型", "具身智能模型"))
            v["service_modes"] = [*v["service_modes"], "其他：私有化部署"]
        if kind == Kind.form_platform:
            v["service_domains"] = [*v["service_domains"], f"其他：{extra}"]
    if style.blank:
        candidates = ["credit_code", "leader_phone", "contact_title", "org_type", "funding", "joint_intro",
                      "leader_title", "apply_date"]
        candidates += {
            Kind.form_scenario: ["scenario_type", "implementation", "promotion_value"],
            Kind.form_model: ["rd_staff", "base_model_name", "service_modes", "innovation"],
            Kind.form_platform: ["platform_domain", "compute_p", "service_domains", "construction"],
            Kind.form_terminal: ["product_summary", "rd_cost_3y", "innovation_experience"],
        }[kind]
        for k in rng.sample(candidates, 4):
            v.pop(k, None)


def make_form(
    kind: Kind | str,
    seed: int = 0,
    variant: str = "plain",
    *,
    values: dict[str, Any] | None = None,
) -> GeneratedForm:
    """A filled form of `kind` as .docx bytes, with the fields extraction must return.

    `values` overrides generated truth values (canonical SPEC 3 forms, e.g. {"org_name": ..., "applicant":
    ..., "credit_code": ...}); a key set to None is left blank.
    """
    kind = Kind(kind)
    if kind == Kind.summary:
        return make_summary(seed=seed, variant=variant)
    if kind not in FORM_KINDS:
        raise ValueError(f"make_form makes the four forms and the summary, not {kind}")
    rng = random.Random(f"{kind.value}:{seed}:{variant}")
    style = style_for(variant, rng)
    v = base_values(kind, rng)
    _apply_style_to_values(kind, v, style, rng)
    for k, val in (values or {}).items():
        if val is None:
            v.pop(k, None)
        else:
            v[k] = val
    data = _FormBuilder(kind, v, style, rng).build()
    expected = {k: copy.deepcopy(val) for k, val in v.items() if val not in (None, "", [], {})}
    no = _TITLES[kind][0]
    return GeneratedForm(kind, data, expected, variant, seed, f"{no}_{v.get('org_name', '申报单位')}.docx", style)


# --- 附件5 汇总表 -----------------------------------------------------------------------------------

_SUMMARY_TABLES = (
    ("scenario", "典型应用场景汇总表", ("序号", "所在区/单位", "申报单位名称", "场景名称", "场景方向", "场景描述 (100 字左右)", "联系人", "联系方式")),
    ("model", "模型和智能体项目汇总表", ("序号", "所在区/单位", "申报单位名称", "产品名称", "产品类型", "产品描述 (100 字左右)", "联系人", "联系方式")),
    ("platform", "公共服务平台申报信息汇总表", ("序号", "所在区/单位", "申报单位名称", "平台名称", "服务领域", "平台项目描述 (100 字左右)", "联系人", "联系方式")),
    ("terminal", "智能终端产品汇总表", ("序号", "所在区/单位", "申报单位名称", "产品名称", "产品描述 (100 字左右)", "联系人", "联系方式")),
)
_SECTION_KIND = {"scenario": Kind.form_scenario, "model": Kind.form_model, "platform": Kind.form_platform,
                 "terminal": Kind.form_terminal}
SUMMARY_VARIANTS = ("plain", "one_table", "no_titles", "spaced_labels", "split_runs", "phones", "linebreaks")


def summary_row(section: str, rng: random.Random, seq: int, district: str) -> dict[str, Any]:
    kind = _SECTION_KIND[section]
    row: dict[str, Any] = {
        "section": section, "seq": seq, "district": district, "org_name": org_name(rng),
        "project_name": project_name(rng, kind),
        "description": "".join(rng.sample(_SENTENCES, 2)),
        "contact_name": person_name(rng), "contact_phone": phone(rng),
    }
    if section == "scenario":
        row["direction"] = rng.choice(SCENARIO_TYPES[:7])
    elif section == "model":
        row["direction"] = rng.choice(PRODUCT_TYPES[:4])
    elif section == "platform":
        row["direction"] = "、".join(rng.sample(SERVICE_DOMAINS[:7], 2))
    return row


def make_summary(
    rows: list[dict[str, Any]] | None = None,
    *,
    seed: int = 0,
    variant: str = "plain",
    recommender: str | None = None,
    contact_name: str | None = None,
    contact_phone: str | None = None,
    district: str | None = None,
) -> GeneratedForm:
    """附件5 with the given rows (dicts with SPEC keys incl. `section`) or random ones."""
    rng = random.Random(f"summary:{seed}:{variant}")
    if variant == "mixed":
        variant = rng.choice(SUMMARY_VARIANTS)
    style = style_for(variant, rng) if variant in VARIANTS else Style()
    district = district or rng.choice(DISTRICTS)
    if rows is None:
        rows = []
        for section, _, _ in _SUMMARY_TABLES:
            for i in range(rng.randint(0, 3)):
                rows.append(summary_row(section, rng, i + 1, district))
        if not rows:
            rows.append(summary_row("scenario", rng, 1, district))
    recommender = recommender or f"{district}经济和信息化局"
    contact_name = contact_name or person_name(rng)
    contact_phone = contact_phone or phone(rng, mobile=False)

    doc = docx.Document()
    w = _Writer(doc, style, rng)
    w.para("附件5")
    w.para(f"{district}（单位）“人工智能+社会治理”创新应用项目申报信息汇总表", bold=True)
    w.para(f"{w.label('推荐单位')}（盖章）：{recommender}    {w.label('联系人')}：{contact_name}    "
           f"{w.label('联系电话')}：{render_phone(contact_phone, style, rng)}")
    one_table = variant == "one_table"
    big: DocxTable | None = None
    for section, title, headers in _SUMMARY_TABLES:
        sec_rows = [r for r in rows if r["section"] == section]
        n_rows = max(3, len(sec_rows))
        if one_table:
            if big is None:
                big = doc.add_table(rows=0, cols=8)
                big.style = doc.styles["Table Grid"]
            t = big
        else:
            if section != "scenario" and variant != "no_titles":
                w.para(title, bold=True)
            t = doc.add_table(rows=0, cols=len(headers))
            t.style = doc.styles["Table Grid"]
        ncols = len(t.columns)
        if (one_table or section == "scenario") and variant != "no_titles":
            cells = t.add_row().cells
            merged = cells[0].merge(cells[ncols - 1])
            w.cell(merged, title)
        cells = t.add_row().cells
        for i, h in enumerate(headers):
            w.cell(cells[i], w.label(h) if len(h) < 8 else h)
        keys = ["seq", "district", "org_name", "project_name"] + (["direction"] if len(headers) == 8 else []) + [
            "description", "contact_name", "contact_phone"]
        for i in range(n_rows):
            cells = t.add_row().cells
            r = sec_rows[i] if i < len(sec_rows) else {"seq": i + 1}
            for j, key in enumerate(keys):
                val = r.get(key)
                if val is None:
                    text = ""
                elif key == "contact_phone":
                    text = render_phone(val, style, rng)
                elif key in ("org_name", "project_name"):
                    text = _break_name(str(val), style, rng)
                else:
                    text = str(val)
                w.cell(cells[j], text)
        if not one_table:
            doc.add_paragraph()
    buf = io.BytesIO()
    doc.save(buf)
    expected_rows = [{k: v for k, v in r.items() if v not in (None, "")} for r in rows]
    order = {s: i for i, (s, _, _) in enumerate(_SUMMARY_TABLES)}
    expected_rows.sort(key=lambda r: order[r["section"]])
    expected: dict[str, Any] = {"recommender": recommender, "contact_name": contact_name,
                                "contact_phone": contact_phone, "rows": expected_rows}
    return GeneratedForm(Kind.summary, buf.getvalue(), expected, variant, seed,
                         f"附件5_{district}汇总表.docx", style)


# --- 承诺书, 推荐意见, licence and evidence texts ----------------------------------------------------


def make_commitment(org: str | None = None, *, seed: int = 0, date_text: str = "2026年6月28日") -> GeneratedForm:
    """A filled 承诺书 as a separate .docx."""
    rng = random.Random(f"commitment:{seed}")
    org = org or org_name(rng)
    doc = docx.Document()
    _commitment_page(doc, org, date_text)
    buf = io.BytesIO()
    doc.save(buf)
    return GeneratedForm(Kind.commitment, buf.getvalue(), {}, "plain", seed, f"承诺书_{org}.docx")


def make_recommendation(
    district: str | None = None, projects: list[tuple[str, str]] | None = None, *, seed: int = 0
) -> GeneratedForm:
    """A district's 推荐意见 (.docx) recommending (org, project) pairs."""
    rng = random.Random(f"recommendation:{seed}")
    district = district or rng.choice(DISTRICTS)
    projects = projects or [(org_name(rng), project_name(rng, rng.choice(FORM_KINDS))) for _ in range(rng.randint(1, 4))]
    doc = docx.Document()
    doc.add_paragraph().add_run(f"关于推荐{district}“人工智能+社会治理”创新应用项目的推荐意见").bold = True
    doc.add_paragraph("市经信局、市公安局：")
    doc.add_paragraph(
        f"根据《市经信局 市公安局关于联合开展“人工智能+社会治理”创新应用征集的通知》要求，我区组织辖区企事业单位积极申报，"
        f"经初审，共有{len(projects)}个项目符合申报条件，同意推荐。具体如下："
    )
    for i, (org, proj) in enumerate(projects, 1):
        doc.add_paragraph(f"{i}. {org}：{proj}")
    doc.add_paragraph("经审核，上述单位申报材料真实、完整，特此推荐。")
    doc.add_paragraph(f"{district}经济和信息化局（盖章）")
    doc.add_paragraph("2026年7月3日")
    buf = io.BytesIO()
    doc.save(buf)
    return GeneratedForm(Kind.recommendation, buf.getvalue(), {}, "plain", seed, f"{district}推荐意见.docx")


def license_text(org: str | None = None, code: str | None = None, *, seed: int = 0, noisy: bool = False) -> str:
    """Text as OCR reads a 营业执照 (noisy=True: dropped/confused characters, no layout)."""
    rng = random.Random(f"license:{seed}")
    org = org or org_name(rng)
    code = code or credit_code(rng)
    lines = [
        "营业执照", "(副本)", f"统一社会信用代码 {code}", f"名称 {org}", "类型 有限责任公司(自然人投资或控股)",
        f"法定代表人 {person_name(rng)}", f"注册资本 {rng.randint(100, 9000)}万元整", "成立日期 2015年03月12日",
        "营业期限 长期", "经营范围 人工智能应用软件开发；信息系统集成服务；物联网技术服务。",
        f"住所 武汉市{rng.choice(DISTRICTS)}光谷大道{rng.randint(1, 300)}号", "登记机关", "国家企业信用信息公示系统网址",
    ]
    text = "\n".join(lines)
    return _noise(text, rng) if noisy else text


def institution_certificate_text(org: str | None = None, *, seed: int = 0) -> str:
    """Text of a 事业单位法人证书 copy."""
    rng = random.Random(f"inst:{seed}")
    org = org or f"武汉市{rng.choice(DISTRICTS)}大数据中心"
    return "\n".join([
        "事业单位法人证书", f"统一社会信用代码 {credit_code(rng)}", f"名称 {org}", "宗旨和业务范围 为城市运行提供数据支撑。",
        f"法定代表人 {person_name(rng)}", "经费来源 财政补助", "开办资金 ￥500万元", "举办单位 武汉市人民政府", "登记管理机关",
    ])


def evidence_text(kind: str = "patent", *, seed: int = 0) -> str:
    """Text of a proof document: patent, software copyright, award, test report or usage proof."""
    rng = random.Random(f"evidence:{seed}")
    org = org_name(rng)
    texts = {
        "patent": f"发明专利证书\n发明名称：一种基于深度学习的{rng.choice(_DOMAIN)}识别方法\n专利号：ZL 2024 1 0{rng.randint(100000, 999999)}.X\n专利权人：{org}\n国家知识产权局",
        "software": f"中华人民共和国国家版权局\n计算机软件著作权登记证书\n软件名称：{project_name(rng, Kind.form_scenario)}V1.0\n著作权人：{org}\n登记号：2025SR{rng.randint(100000, 999999)}",
        "award": f"荣誉证书\n{org}：\n你单位申报的项目荣获2025年度湖北省科学技术进步奖二等奖。\n特发此证，以资鼓励。",
        "test_report": f"检测报告\n样品名称：{rng.choice(_TERMINAL)}\n委托单位：{org}\n检测依据：GB/T 2423\n检测结论：所检项目符合要求。",
        "usage": f"应用证明\n兹证明{org}开发的系统已在我单位部署使用，运行稳定，效果良好。\n特此证明。",
    }
    return texts[kind]


def _noise(text: str, rng: random.Random, rate: float = 0.04) -> str:
    """OCR-like damage: dropped characters, stray spaces, similar-shape substitutions, lost line breaks."""
    subs = {"执": "执", "照": "照", "码": "玛", "信": "倍", "用": "甪", "统": "统", "一": "—", "人": "入"}
    out = []
    for ch in text:
        r = rng.random()
        if r < rate / 3:
            continue
        if r < rate * 2 / 3:
            out.append(subs.get(ch, ch))
        elif r < rate:
            out.append(ch + " ")
        else:
            out.append(ch)
    s = "".join(out)
    return re.sub(r"\n", lambda m: " " if rng.random() < 0.3 else "\n", s)


# --- conversions ---------------------------------------------------------------------------------


def to_doc(docx_bytes: bytes | list[bytes], *, timeout: float = 180.0) -> Any:
    """Legacy Word 97 (.doc) bytes of one or several .docx (one LibreOffice start for all)."""
    items = [docx_bytes] if isinstance(docx_bytes, bytes) else list(docx_bytes)
    out = convert_batch([(d, ".docx") for d in items], "doc:MS Word 97", timeout=timeout)
    if any(o is None for o in out):
        raise RuntimeError("LibreOffice did not convert every file to .doc")
    return out[0] if isinstance(docx_bytes, bytes) else out


def to_pdf(docx_bytes: bytes | list[bytes], *, timeout: float = 180.0) -> Any:
    """PDF bytes (text layer) of one or several .docx, rendered by LibreOffice with CJK fonts."""
    items = [docx_bytes] if isinstance(docx_bytes, bytes) else list(docx_bytes)
    out = convert_batch([(d, ".docx") for d in items], "pdf:writer_pdf_Export", timeout=timeout)
    if any(o is None for o in out):
        raise RuntimeError("LibreOffice did not convert every file to PDF")
    return out[0] if isinstance(docx_bytes, bytes) else out


def all_cases(seeds: range | list[int] = range(1)) -> list[tuple[Kind, str, int]]:
    """(kind, variant, seed) for every template × variant, for parametrised tests and the bench."""
    cases: list[tuple[Kind, str, int]] = []
    for seed in seeds:
        for kind in FORM_KINDS:
            cases += [(kind, v, seed) for v in VARIANTS]
        cases += [(Kind.summary, v, seed) for v in SUMMARY_VARIANTS]
    return cases
