"""Form schemas and the schema-driven extractor: every template x variant extracts exactly."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import docx
import pytest

from parsers.extract import extract_fields, label_key, parse_date, parse_number
from parsers.layout import TICKED, UNTICKED, Layout, Table
from parsers.schema import SchemaError, all_schemas, load_schema, parse_schema
from parsers.types import Kind
from parsers.word import read_docx
from tests.formgen import FORM_KINDS, SUMMARY_VARIANTS, VARIANTS, make_form, make_summary

# SPEC section 3 keys per kind (cover and table 一 keys are common to the four forms).
_COMMON = {
    "applicant",
    "joint_applicants",
    "project_name",
    "apply_date",
    "org_name",
    "credit_code",
    "org_address",
    "org_type",
    "leader_name",
    "leader_title",
    "leader_phone",
    "contact_name",
    "contact_title",
    "contact_phone",
    "org_intro",
    "joint_intro",
    "funding",
}
SPEC_KEYS = {
    Kind.form_scenario: _COMMON
    | {"scenario_type", "background", "implementation", "outcomes", "promotion_value"},
    Kind.form_model: _COMMON
    | {
        "revenue_2025",
        "ai_revenue_2025",
        "staff_total",
        "rd_staff",
        "ai_rd_staff",
        "rd_investment_3y",
        "product_type",
        "base_model_name",
        "param_count_100m",
        "dataset_source",
        "dataset_name",
        "dataset_scale",
        "filing_status",
        "service_modes",
        "overview",
        "innovation",
        "outcomes",
    },
    Kind.form_platform: _COMMON
    | {
        "revenue_2025",
        "revenue_2026h1",
        "staff_total",
        "ops_staff",
        "ai_rd_staff",
        "platform_intro",
        "platform_domain",
        "service_modes",
        "service_domains",
        "open_models",
        "usable_models",
        "ai_providers",
        "ai_companies",
        "open_datasets_tb",
        "compute_p",
        "overview",
        "innovation",
        "construction",
        "outcomes",
    },
    Kind.form_terminal: _COMMON
    | {
        "revenue_2025",
        "ai_revenue_2025",
        "staff_total",
        "rd_staff",
        "ai_rd_staff",
        "product_summary",
        "rd_cost_3y",
        "overview",
        "scenarios_outcomes",
        "innovation_experience",
    },
    Kind.summary: {"recommender", "contact_name", "contact_phone"},
}


def test_every_kind_has_a_schema_with_the_spec_keys() -> None:
    schemas = all_schemas()
    assert set(schemas) == set(SPEC_KEYS)
    for kind, keys in SPEC_KEYS.items():
        s = load_schema(kind)
        assert {f.key for f in s.fields} == keys, kind
        for f in s.fields:
            assert f.key and f.label and isinstance(f.required, bool) and f.type
        assert s.titles, kind
    assert {t.section for t in load_schema(Kind.summary).tables} == {
        "scenario",
        "model",
        "platform",
        "terminal",
    }


def test_required_fields_name_the_printed_labels() -> None:
    s = load_schema("form_platform")
    assert "credit_code" in s.required_keys
    assert s.label_of("contact_name") == "申报人姓名"  # 附件3 says 申报人
    assert s.label_of("credit_code") == "统一社会信用代码"
    scenario = load_schema(Kind.form_scenario)
    assert scenario.field("scenario_type").choices[-1] == "其他"
    assert "AI+一网统管" in scenario.field("scenario_type").choices


def test_schema_errors_are_clear() -> None:
    with pytest.raises(SchemaError, match="kind"):
        parse_schema('kind = "nope"\n[[fields]]\nkey="a"\nlabel="b"\n')
    with pytest.raises(SchemaError, match="unknown type"):
        parse_schema('kind = "form_model"\n[[fields]]\nkey="a"\nlabel="b"\ntype="money"\n')
    with pytest.raises(SchemaError, match="needs choices"):
        parse_schema('kind = "form_model"\n[[fields]]\nkey="a"\nlabel="b"\ntype="single_choice"\n')
    with pytest.raises(SchemaError, match="unknown settings"):
        parse_schema('kind = "form_model"\n[[fields]]\nkey="a"\nlabel="b"\nlable="c"\n')


def _diff(got: dict[str, Any], want: dict[str, Any]) -> str:
    lines = []
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            lines.append(f"{k}: got {got.get(k)!r:.200} want {want.get(k)!r:.200}")
    return "\n".join(lines)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind", FORM_KINDS, ids=lambda k: k.value)
def test_extract_exact(kind: Kind, variant: str, seed: int) -> None:
    g = make_form(kind, seed, variant)
    got, _warnings = extract_fields(kind, read_docx(g.data))
    assert got == g.expected_fields, _diff(got, g.expected_fields)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("variant", SUMMARY_VARIANTS)
def test_extract_summary_exact(variant: str, seed: int) -> None:
    g = make_summary(seed=seed, variant=variant)
    got, warnings = extract_fields(Kind.summary, read_docx(g.data))
    assert got == g.expected_fields, _diff(got, g.expected_fields)
    assert not warnings


def test_summary_given_rows_and_terminal_has_no_direction() -> None:
    rows = [
        {
            "section": "terminal",
            "seq": 1,
            "district": "江夏区",
            "org_name": "武汉甲科技有限公司",
            "project_name": "巡检机器人",
            "description": "室外巡检。",
            "contact_name": "王伟",
            "contact_phone": "13812345678",
        },
        {
            "section": "model",
            "seq": 1,
            "district": "江夏区",
            "org_name": "武汉乙科技有限公司",
            "project_name": "城管大模型",
            "direction": "语言大模型",
            "description": "城管问答。",
            "contact_name": "李娜",
            "contact_phone": "027-87654321",
        },
    ]
    g = make_summary(
        rows, recommender="江夏区经济和信息化局", contact_name="张三", contact_phone="027-81234567"
    )
    got, _ = extract_fields(Kind.summary, read_docx(g.data))
    assert got["recommender"] == "江夏区经济和信息化局"
    assert got["rows"] == [rows[1], rows[0]]  # table order: 模型 before 终端


def test_blank_form_gives_no_values() -> None:
    g = make_form(Kind.form_model, 0, "plain", values={k: None for k in SPEC_KEYS[Kind.form_model]})
    got, _ = extract_fields(Kind.form_model, read_docx(g.data))
    assert got == {}


def test_choice_cells() -> None:
    layout = Layout(
        blocks=[
            Table(
                rows=[
                    ["单位性质", f"{UNTICKED}党政机关 {TICKED}其他（请注明）__民办非企业__"],
                    [
                        "服务方式",
                        f"{TICKED}APP {UNTICKED}网页 {TICKED}API接口 {TICKED}其他（请注明）：私有化部署",
                    ],
                    [
                        "数据集模态与规模(TB)",
                        f"{TICKED}文本 12 {UNTICKED}图像___ {TICKED}音频 3.5TB {UNTICKED}视频 ___",
                    ],
                    ["产品类型", "多模态大模型"],  # the applicant deleted the other options
                ]
            )
        ]
    )
    got, warnings = extract_fields(Kind.form_model, layout)
    assert got["org_type"] == "其他：民办非企业"
    assert got["service_modes"] == ["APP", "API接口", "其他：私有化部署"]
    assert got["dataset_scale"] == {"文本": 12.0, "音频": 3.5}
    assert got["product_type"] == "多模态大模型"
    two = Layout(blocks=[Table(rows=[["单位性质", f"{TICKED}国有企业 {TICKED}民营企业"]])])
    got, warnings = extract_fields(Kind.form_scenario, two)
    assert got["org_type"] == "国有企业" and any("多个" in w for w in warnings)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2026年6月30日", "2026-06-30"),
        ("2026 年 6 月 30 日", "2026-06-30"),
        ("2026.6.30", "2026-06-30"),
        ("2026-06-30", "2026-06-30"),
        ("2026/6/30", "2026-06-30"),
        ("20260630", "2026-06-30"),
        ("二〇二六年六月三十日", "2026-06-30"),
        ("二〇二六年十二月一日", "2026-12-01"),
        ("年 月 日", None),
        ("2026年2月30日", None),
    ],
)
def test_dates(text: str, want: str | None) -> None:
    assert parse_date(text) == want


@pytest.mark.parametrize(
    ("text", "ftype", "unit", "want"),
    [
        ("1,200", "number_wan", None, 1200.0),
        ("1200万元", "number_wan", None, 1200.0),
        ("约 35", "int", None, 35),
        ("35人", "int", None, 35),
        ("1.2亿元", "number_wan", None, 12000.0),
        ("3,500,000元", "number_wan", None, 350.0),
        ("70亿", "number", "亿", 70.0),
        ("7B", "number", "亿", 70.0),
        ("12.5", "number", "TB", 12.5),
        ("无", "int", None, None),
    ],
)
def test_numbers(text: str, ftype: str, unit: str | None, want: float | None) -> None:
    assert parse_number(text, ftype, unit) == want


def test_label_key() -> None:
    assert label_key("单 位 名 称：") == "单位名称"
    assert label_key("2025 年营业收入 (万元)") == "2025年营业收入"
    assert (
        label_key("2026 年上半年总营收和人工智能收入（万元，可预估）") == "2026年上半年总营收和人工智能收入"
    )
    assert label_key("联合单位情况介绍（如有）") == "联合单位情况介绍"


def test_next_call_template_is_a_new_schema_file_not_code(tmp_path: Path) -> None:
    """A changed template (new labels, a new field) is read by writing a schema file only."""
    (tmp_path / "scenario.toml").write_text(
        """kind = "form_scenario"
name = "2027年 新场景申报书"
titles = ["新场景申报书"]
cover_end = ["基本信息"]
section_end = ["附件"]

[[fields]]
key = "applicant"
label = "申报主体"
where = ["cover"]
required = true

[[fields]]
key = "org_name"
label = "主体名称"
required = true

[[fields]]
key = "headcount"
label = "从业人数"
type = "int"

[[fields]]
key = "green"
label = "绿色低碳"
type = "multi_choice"
choices = ["节能", "减排", "其他"]

[[fields]]
key = "summary"
label = "项目摘要"
type = "section"
""",
        encoding="utf-8",
    )
    d = docx.Document()
    d.add_paragraph("新场景申报书")
    d.add_paragraph("申报主体：武汉新公司")
    d.add_paragraph("一、基本信息")
    t = d.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate(
        [
            ("主 体 名 称", "武汉新公司"),
            ("从业人数", "约 120 人"),
            ("绿色低碳", "☑节能 □减排 ■其他（请注明）光伏"),
        ]
    ):
        t.cell(r, 0).text, t.cell(r, 1).text = a, b
    d.add_paragraph("（一）项目摘要。建设一个新平台。")
    d.add_paragraph("第二段。")
    d.add_paragraph("附件")
    buf = io.BytesIO()
    d.save(buf)
    schema = load_schema(Kind.form_scenario, tmp_path)
    got, _ = extract_fields(Kind.form_scenario, read_docx(buf.getvalue()), schema)
    assert got == {
        "applicant": "武汉新公司",
        "org_name": "武汉新公司",
        "headcount": 120,
        "green": ["节能", "其他：光伏"],
        "summary": "建设一个新平台。\n第二段。",
    }
