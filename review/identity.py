"""Who a document says it comes from (credit code, unit name, project), read once when it is parsed."""

from __future__ import annotations

import re
from typing import Any

from parsers.types import Kind
from review.names import credit_key, org_key, project_key

# Lines on supporting documents that name the unit: 承诺书 (申请单位（盖章）：…), licences (名称 …),
# patents (专利权人：…), software copyrights (著作权人：…), test reports (委托单位：…), proofs.
_UNIT_LINE = re.compile(
    r"(?:申请单位|申报单位|单位名称|专利权人|著作权人|委托单位|权利人|获奖单位|名\s*称)\s*(?:[（(][^）)]{0,6}[）)])?\s*[:：]?\s*"
    r"([^\s:：，,。;；()（）]{4,60}?(?:公司|中心|研究院|研究所|大学|学院|医院|局|委员会|集团|协会|学会|站|所|院))"
)
_CODE = re.compile(r"(?<![0-9A-Z])[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Z])")
_FORMS = (Kind.form_scenario, Kind.form_model, Kind.form_platform, Kind.form_terminal)


def document_identity(kind: Kind, fields: dict[str, Any], text: str) -> tuple[str | None, str | None, str | None]:
    """(credit code key, org name key, project key) for the indexed columns of a document row."""
    code = credit_key(fields.get("credit_code"))
    name = org_key(fields.get("org_name") or fields.get("applicant"))
    project = project_key(fields.get("project_name")) if kind in _FORMS else None
    if kind in _FORMS or kind in (Kind.summary, Kind.recommendation):
        return code, name, project
    head = text[:3000]
    if code is None:
        m = _CODE.search(head.upper())
        code = m.group(0) if m else None
    if name is None:
        m = _UNIT_LINE.search(head)
        name = org_key(m.group(1)) if m else None
    return code, name, project
