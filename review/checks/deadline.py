"""Deadline rules (SPEC 4, 5): `late` when a required item first arrived at or after the cutoff,
`late_revision` when a newer version came after it while an on-time one stays of record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from parsers.types import Problem
from review.checks import problem, rule
from review.checks._common import is_late, short, when
from review.model import ITEM_LABEL, ITEMS, REQUIRED_ITEMS, AppView, CheckContext, DocView

_SOURCE = {
    "internaldate": "服务器接收时间 INTERNALDATE",
    "received": "接收时间，取自最新 Received 头",
    "date": "接收时间，取自邮件 Date 头",
}


_NEVER = datetime.max.replace(tzinfo=UTC)


def _arrival(d: DocView) -> tuple[bool, datetime, int]:
    # Unknown arrival times sort last, as in AppView.versions.
    return (d.received_at is None, d.received_at or _NEVER, d.id)


def item_sources(app: AppView, item: str, ctx: CheckContext) -> list[DocView]:
    """Every document that provides `item`, oldest first: its own versions, a 承诺书 page in the form's
    PDF, and the unit's 承诺书 / licence sent on time with its other applications.

    A sibling's copy that came after the cutoff does not count here: it would make an application sent
    entirely on time `late` for a document it never carried. Without an on-time copy the item is simply
    missing from this application (and late where the sibling that carried it is concerned)."""
    own = app.versions(item)
    extra: list[DocView] = []
    if item == "commitment":
        extra += [d for d in app.versions("pdf") if d.has_commitment_page]
    if item in ("commitment", "license"):
        extra += [d for d in app.org_docs if d.item == item and not is_late(ctx, d.received_at)]
    if not extra:
        return list(own)  # already in arrival order
    unique = {d.id: d for d in [*own, *extra]}
    return sorted(unique.values(), key=_arrival)


def _cutoff_text(ctx: CheckContext) -> str:
    text = f"截止时间 {when(ctx, ctx.deadline)}"
    if ctx.grace > timedelta(0):
        text += f"（含宽限期 {_duration(ctx.grace)}，至 {when(ctx, ctx.cutoff)}）"
    return text


def _duration(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} 小时"
    if seconds % 60 == 0:
        return f"{seconds // 60} 分钟"
    return f"{seconds} 秒"


def arrival_evidence(ctx: CheckContext, d: DocView) -> str:
    """Why we say when a document arrived: INTERNALDATE, the Date header against the deadline, the
    newest Received hop. Staff deciding on `accept_late` need all three."""
    m = d.message
    source = _SOURCE.get(m.received_source or "", "接收时间")
    parts = [f"《{d.filename}》首次收到于 {when(ctx, d.received_at)}（{source}）"]
    if m.sent_at is None:
        parts.append("邮件无可读的 Date 头")
    else:
        before = "早于截止时间" if m.sent_at < ctx.deadline else "不早于截止时间"
        parts.append(f"邮件 Date 头 {when(ctx, m.sent_at)}（{before}）")
    if m.received_chain:
        parts.append(f"最新 Received 记录：{short(m.received_chain[0], 200)}")
    else:
        parts.append("无 Received 记录")
    return "，".join(parts)


@rule("late")
def late(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """A required item whose first arrival is at or after the cutoff makes the application late, even
    when the rest was on time."""
    found: list[tuple[str, DocView]] = []
    for item in REQUIRED_ITEMS:
        sources = item_sources(app, item, ctx)
        if sources and is_late(ctx, sources[0].received_at):
            found.append((item, sources[0]))
    if found:
        items = "、".join(ITEM_LABEL[i] for i, _ in found)
        evidence = "；".join(f"{ITEM_LABEL[i]}：{arrival_evidence(ctx, d)}" for i, d in found)
        yield problem("late", f"{_cutoff_text(ctx)}后才首次收到：{items}。{evidence}")


@rule("late_revision")
def late_revision(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """Versions received after the cutoff while an on-time version exists: the on-time one stays of
    record. Proof materials sent after the cutoff are listed too (they are not taken into account)."""
    arrivals = [d.received_at for d in app.docs if d.received_at is not None]
    # Proof sent late by an application that itself came late adds nothing to `late`.
    came_on_time = bool(arrivals) and not is_late(ctx, min(arrivals))
    for item in ITEMS:
        versions = app.versions(item)
        on_time = [d for d in versions if d.received_at is not None and not is_late(ctx, d.received_at)]
        after = [d for d in versions if is_late(ctx, d.received_at)]
        if not after:
            continue
        names = "、".join(f"《{d.filename}》（{when(ctx, d.received_at)}）" for d in after)
        if item == "evidence":
            if not came_on_time:
                continue
            yield problem("late_revision", f"{ITEM_LABEL[item]}：{_cutoff_text(ctx)}后收到 {names}，不予采用")
        elif on_time:
            record = on_time[-1]
            yield problem(
                "late_revision",
                f"{ITEM_LABEL[item]}：{_cutoff_text(ctx)}后又收到新版本 {names}；"
                f"仍以截止前的版本《{record.filename}》（{when(ctx, record.received_at)}）为准",
            )
