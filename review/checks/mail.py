"""Rules about the emails and files themselves (SPEC 4): cloud-attachment links, unreadable files."""

from __future__ import annotations

from collections.abc import Iterator

from parsers.types import Problem
from review.checks import problem, rule
from review.checks._common import short
from review.model import AppView, CheckContext

_PROVIDER = {"qq": "QQ 邮箱", "126": "126 邮箱", "163": "163 邮箱", "netease": "网易邮箱", "other": "网盘"}


@rule("cloud_attachment")
def cloud_attachment(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """A 超大附件 link instead of a file: staff must download it before the link expires."""
    seen: set[str] = set()
    for m in sorted(app.messages, key=lambda m: m.id):
        for link in m.cloud_links:
            url = str(link.get("url") or "")
            if url in seen:
                continue
            seen.add(url)
            provider = str(link.get("provider") or "other")
            parts = [f"邮件《{short(m.subject or '（无主题）', 60)}》含{_PROVIDER.get(provider, provider)}云附件"]
            parts.append(f"文件 {link.get('filename') or '（未注明文件名）'}")
            if link.get("size_text"):
                parts.append(f"大小 {link['size_text']}")
            parts.append(f"有效期 {link.get('expires_text') or '未注明'}")
            parts.append(f"链接 {url}")
            yield problem("cloud_attachment", "，".join(parts) + "；请在链接过期前下载并存档")


@rule("unreadable_attachment")
def unreadable_attachment(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """A file of the application (or of its emails, when grouping could not place it) that could not
    be opened or parsed; the detail is the parser's "file: reason"."""
    details: list[str] = []
    for d in sorted(app.docs, key=lambda d: d.id):
        details += [str(p.get("detail") or d.filename) for p in d.problems if p.get("code") == "unreadable_attachment"]
    for m in sorted(app.messages, key=lambda m: m.id):
        details += list(m.unreadable)
    for detail in dict.fromkeys(details):
        yield problem("unreadable_attachment", detail)
