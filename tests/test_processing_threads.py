"""Several processing threads per daemon: claims never stop early, messages are parsed in parser processes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, update
from sqlmodel import Session, col, select

from intake.config import load_config
from intake.pipeline import Services, claim
from intake.services import build_services
from parsers import sandbox
from parsers.documents import ParseOptions
from parsers.mail import MessageParseError, parse_message
from parsers.sandbox import InProcessParser, ParserPool
from store.models import MESSAGES, Message, insert_values
from tests import mailgen
from tests.support import write_config


def _services(tmp_path: Path, db_url: str | None = None, **pipeline: Any) -> Services:
    sections = {"pipeline": pipeline} if pipeline else None
    return build_services(load_config(write_config(tmp_path, db_url=db_url, sections=sections)))


def _add_messages(services: Services, n: int) -> list[int]:
    t0 = datetime(2026, 7, 6, 2, 0, tzinfo=UTC)
    rows = [
        insert_values(
            Message,
            sha256=f"{i:064x}",
            size=1,
            source="file",
            source_ref=f"m{i}.eml",
            received_at=t0 + timedelta(seconds=i),
            received_source="received",
        )
        for i in range(n)
    ]
    with Session(services.engine) as s:
        ids = [int(r[0]) for r in s.exec(insert(Message).returning(col(Message.id)), params=rows)]  # type: ignore[call-overload]
        s.commit()
    return ids


def test_a_claim_whose_candidates_another_worker_took_moves_on_to_the_next(tmp_path: Path) -> None:
    """Between this claim's SELECT and its UPDATE another worker leases every candidate: the claim must
    lease the next ones, not come back empty (an empty claim makes a processing thread stop for the cycle)."""
    services = _services(tmp_path)
    ids = _add_messages(services, 15)
    rival: list[int] = []

    @event.listens_for(services.processing_engine, "before_cursor_execute")
    def _rival(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if rival or not (statement.lstrip().upper().startswith("UPDATE MESSAGE SET") and "lease_owner=" in statement):
            return
        rival.extend(ids[:10])
        # Another worker's connection (the durable engine is a separate pool), committed in between.
        with services.engine.begin() as c:
            c.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id.in_(ids[:10]))
                .values(lease_owner="another-daemon", lease_until=datetime.now(UTC) + timedelta(hours=1))
            )

    try:
        assert claim(services, limit=10) == ids[10:]
        assert rival == ids[:10]
        assert claim(services, limit=10) == []  # now truly nothing is left
    finally:
        services.close()


def test_concurrent_claims_take_every_message_exactly_once_and_stop_only_when_none_is_left(
    tmp_path: Path, db_url: str
) -> None:
    services = _services(tmp_path, db_url)
    ids = _add_messages(services, 240)
    taken: list[list[int]] = [[] for _ in range(4)]
    early: list[int] = []
    start = threading.Barrier(4)

    def claimable() -> int:
        with Session(services.engine) as s:
            q = select(Message.id).where(Message.state == "new", col(Message.lease_owner).is_(None))
            if services.engine.dialect.name == "postgresql":
                # PostgreSQL claims skip rows another claim has locked (SKIP LOCKED): those are being
                # leased by it, not left over. A claim's locked rows are always leased when it commits.
                q = q.with_for_update(skip_locked=True)
            n = len(s.exec(q).all())
            s.rollback()
            return n

    def run(k: int) -> None:
        start.wait()
        while True:
            got = claim(services, limit=3)
            if not got:
                # Nothing is ever given back in this test, so "none left" must still hold afterwards.
                if claimable():
                    early.append(k)
                return
            taken[k].extend(got)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        everything = [m for t in taken for m in t]
        assert sorted(everything) == ids  # each message once, none missed
        assert early == []
        assert sum(1 for t in taken if t) >= 2  # the claims really did run side by side
    finally:
        services.close()


def test_messages_have_their_own_parser_processes_one_per_processing_thread(tmp_path: Path) -> None:
    services = _services(tmp_path, threads=3)
    try:
        messages = services.message_parser()
        assert messages is services.message_parser()  # one pool per process
        assert len(messages._all) == 3
        documents = services.parser_pool()
        assert documents is not messages and len(documents._all) == services.config.parsing.workers
    finally:
        services.close()


@pytest.fixture(scope="module")
def pool() -> Any:
    with ParserPool(ParseOptions(time_limit_s=60, ocr=False), workers=1) as p:
        yield p


def test_a_message_parsed_in_a_worker_is_the_message_parsed_here(pool: ParserPool) -> None:
    internaldate = datetime(2026, 7, 7, 8, 59, tzinfo=UTC)
    for make in (mailgen.gbk_in_gb2312, mailgen.bounce_dsn, mailgen.nested_forward):
        raw = make()[0]
        assert pool.parse_message(raw, internaldate=internaldate) == parse_message(raw, internaldate=internaldate)
    with InProcessParser() as here:
        raw = mailgen.gbk_in_gb2312()[0]
        assert here.parse_message(raw) == parse_message(raw)


def test_bytes_that_are_no_message_raise_the_parsers_own_error_from_the_worker(pool: ParserPool) -> None:
    raw = b"%PDF-1.7\n" + bytes(range(256)) * 20
    with pytest.raises(MessageParseError) as here:
        parse_message(raw)
    with pytest.raises(MessageParseError) as there:
        pool.parse_message(raw)
    assert str(there.value) == str(here.value) and "not an email message" in str(there.value)
    # The worker is still there for the next message.
    assert pool.parse_message(mailgen.bounce_dsn()[0]).msg_class.value == "bounce"


def test_a_message_that_overruns_the_time_limit_is_unparseable_and_the_worker_is_replaced() -> None:
    # 40 MB of base64 in 4,000 parts: far more than a hundredth of a second of parsing.
    parts = "".join(
        f'--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="f{i}.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + ("QUJDRA==\r\n" * 1000)
        for i in range(4000)
    )
    raw = (
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + parts
        + "--b--\r\n"
    ).encode()
    with ParserPool(ParseOptions(time_limit_s=0.01, ocr=False), workers=1) as p:
        p.parse_message(b"From: a@example.com\r\n\r\nwarm\r\n")  # the worker has started
        before = {w.proc.pid for w in p._all}
        with pytest.raises(MessageParseError, match=r"timed out after 0.01 s"):
            p.parse_message(raw)
        assert {w.proc.pid for w in p._all}.isdisjoint(before)
        p.options.time_limit_s = 60
        assert p.parse_message(b"From: a@example.com\r\n\r\nnext\r\n").from_addr == "a@example.com"


def test_a_bug_in_the_message_parser_comes_back_as_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(raw: bytes, *, internaldate: datetime | None = None) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(sandbox, "parse_message", broken)
    status, text = sandbox._message_task(b"From: a@example.com\r\n\r\nx\r\n", None)
    assert status == "bug" and "KeyError: 'a bug'" in text and "Traceback" in text


def test_pipes_to_a_worker_hold_a_whole_typical_message(pool: ParserPool) -> None:
    import fcntl

    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    worker = next(iter(pool._all))
    for conn in (worker.conn.writer, worker.conn.reader):
        size = fcntl.fcntl(conn.fileno(), fcntl.F_GETPIPE_SZ)
        assert size == (sandbox.PIPE_BYTES if limit >= sandbox.PIPE_BYTES else 65536)
