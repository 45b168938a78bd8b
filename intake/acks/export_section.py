"""The `ack` section of exported applications (SPEC 9): what was sent for the emails that made them up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from store.acks_models import AckOutbox
from store.models import DocumentRow, Message

# SPEC 5: times are shown in Asia/Shanghai (the export hook is not given the configuration).
_TZ = ZoneInfo("Asia/Shanghai")
_CHUNK = 500


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(_TZ).isoformat() if dt is not None else None


def ack_sections(session: Session, apps: Sequence[Any]) -> Mapping[int, dict[str, Any]]:
    """{application id: {status, sent_at, acks}}: `status` and `sent_at` of the newest email's ack, and every
    ack of the application's emails (oldest email first)."""
    ids = [a.id for a in apps if a.id is not None]
    msgs_of: dict[int, set[int]] = {}
    for i in range(0, len(ids), _CHUNK):
        q = (
            select(DocumentRow.application_pk, DocumentRow.message_pk)
            .where(col(DocumentRow.application_pk).in_(ids[i : i + _CHUNK]))
            .distinct()
        )
        for app_id, msg_id in session.exec(q):
            if app_id is not None:
                msgs_of.setdefault(int(app_id), set()).add(int(msg_id))
    all_msgs = sorted({m for ms in msgs_of.values() for m in ms})
    rows: dict[int, tuple[AckOutbox, Message]] = {}
    for i in range(0, len(all_msgs), _CHUNK):
        q2 = (
            select(AckOutbox, Message)
            .join(Message, col(Message.id) == col(AckOutbox.message_pk))
            .where(col(AckOutbox.message_pk).in_(all_msgs[i : i + _CHUNK]))
        )
        for ack, msg in session.exec(q2):
            rows[ack.message_pk] = (ack, msg)
    out: dict[int, dict[str, Any]] = {}
    for app_id, mids in msgs_of.items():
        found = sorted(
            (rows[m] for m in mids if m in rows),
            key=lambda am: (am[1].received_at is None, am[1].received_at or datetime.min, am[1].id or 0),
        )
        if not found:
            continue
        newest = found[-1][0]
        sent = [a.sent_at for a, _ in found if a.status == "sent" and a.sent_at is not None]
        out[app_id] = {
            "status": newest.status,
            "sent_at": _iso(max(sent)) if sent else None,
            "acks": [
                {
                    "id": a.id,
                    "message_id": m.message_id,
                    "status": a.status,
                    "kind": a.kind,
                    "to": a.recipient,
                    "sent_at": _iso(a.sent_at),
                    "reason": a.reason,
                }
                for a, m in found
            ],
        }
    return out
