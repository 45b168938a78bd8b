"""Receipt numbers: stable, human-readable, unique per call and form type, assigned once, never reused."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from review.model import FORM_TYPE_LETTER
from store.models import ReceiptCounter


def format_receipt(call_code: str, form_type: str, n: int) -> str:
    """AI2026-S-0007: call, direction letter (S 场景, M 模型, P 平台, T 终端), number."""
    return f"{call_code}-{FORM_TYPE_LETTER[form_type]}-{n:04d}"


def next_receipt(session: Session, call_code: str, form_type: str) -> str:
    """Take the next number for (call, form type) inside the caller's transaction.

    The counter row is updated in place, so two daemons on PostgreSQL serialise on its row lock and never
    hand out the same number; a number taken by a transaction that rolls back is simply never used.
    """
    for _ in range(3):
        res = session.exec(
            update(ReceiptCounter)
            .where(col(ReceiptCounter.call_code) == call_code, col(ReceiptCounter.form_type) == form_type)
            .values(last=ReceiptCounter.last + 1)
            .returning(col(ReceiptCounter.last))
        ).first()
        if res is not None:
            return format_receipt(call_code, form_type, int(res[0]))
        try:
            with session.begin_nested():
                session.add(ReceiptCounter(call_code=call_code, form_type=form_type, last=0))
        except IntegrityError:
            pass  # another process created it first; take a number from it
    raise RuntimeError(f"could not allocate a receipt number for {call_code}/{form_type}")


def peek(session: Session, call_code: str, form_type: str) -> int:
    row = session.exec(
        select(ReceiptCounter).where(ReceiptCounter.call_code == call_code, ReceiptCounter.form_type == form_type)
    ).first()
    return row.last if row else 0


def take_receipts(session: Session, call_code: str, counts: dict[str, int]) -> dict[str, list[str]]:
    """`counts[form_type]` new numbers per form type, one statement per type (a regroup creating many)."""
    out: dict[str, list[str]] = {}
    for form_type, n in sorted(counts.items()):
        if n <= 0:
            continue
        for _ in range(3):
            res = session.exec(
                update(ReceiptCounter)
                .where(col(ReceiptCounter.call_code) == call_code, col(ReceiptCounter.form_type) == form_type)
                .values(last=ReceiptCounter.last + n)
                .returning(col(ReceiptCounter.last))
            ).first()
            if res is not None:
                last = int(res[0])
                out[form_type] = [format_receipt(call_code, form_type, k) for k in range(last - n + 1, last + 1)]
                break
            try:
                with session.begin_nested():
                    session.add(ReceiptCounter(call_code=call_code, form_type=form_type, last=0))
            except IntegrityError:
                pass
        else:
            raise RuntimeError(f"could not allocate receipt numbers for {call_code}/{form_type}")
    return out
