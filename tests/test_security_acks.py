"""Acknowledgement abuse: a Reply-To in another domain, the hourly sending cap (SECURITY.md, ack abuse)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, col, select

from store.acks_models import AckOutbox
from tests.test_acks_helpers import (
    Env,
    mail,
)


def test_a_reply_to_in_another_domain_is_not_acknowledged(env_factory: Callable[..., Env]) -> None:
    """A throwaway account with `Reply-To: victim@elsewhere` must not get the mailbox to write to the victim."""
    env = env_factory()
    forged = env.receive(
        mail("throwaway@163.com", "请点击 http://evil.test 领取补贴", headers=[("Reply-To", "victim@gov.example.cn")])
    )
    assert forged.status == "pending"
    assert forged.recipient == "throwaway@163.com"
    assert any("victim@gov.example.cn" in str(e.get("note")) for e in forged.history), forged.history
    question = env.receive(
        mail("asker@qq.com", "请问", files=0, headers=[("Reply-To", "Someone Else <other@corp.example.cn>")])
    )
    assert question.recipient == "asker@qq.com"
    # Same organisation (a subdomain counts): the Reply-To is honoured as before.
    colleague = env.receive(mail("clerk@mail.corp.example.cn", headers=[("Reply-To", "boss@corp.example.cn")]))
    assert colleague.recipient == "boss@corp.example.cn"
    assert colleague.history == []
    # Without a usable From there is nobody to vouch for the Reply-To: no acknowledgement at all.
    nobody = env.receive(mail("not an address", headers=[("Reply-To", "victim@gov.example.cn")]))
    assert nobody.status == "suppressed" and nobody.recipient is None
    assert "no usable address" in (nobody.reason or "")
    env.send()
    assert env.server is not None
    got = env.server.wait_for(3)
    assert sorted(m.rcpt_tos[0] for m in got) == ["asker@qq.com", "boss@corp.example.cn", "throwaway@163.com"]


def test_an_hourly_cap_holds_back_a_flood_without_dropping_anything(env_factory: Callable[..., Env]) -> None:
    """Forged From addresses, one per victim, each under the per-recipient limit: the mailbox still sends at
    most [ack] max_per_hour an hour; the rest wait (nothing is suppressed) and go out in the next hour."""
    env = env_factory(ack={"max_per_hour": 3})
    rows = [env.receive(mail(f"victim{i}@example{i}.cn")) for i in range(5)]
    assert {r.status for r in rows} == {"pending"}
    first = env.send()
    assert first.sent == 3
    assert "max_per_hour" in (first.skipped or "")
    assert env.server is not None
    assert len(env.server.wait_for(3)) == 3
    env.tick(minutes=30)
    assert env.send().sent == 0
    with Session(env.services.engine) as s:
        waiting = list(s.exec(select(AckOutbox).where(col(AckOutbox.status) == "pending")))
    assert len(waiting) == 2
    env.tick(minutes=31)
    assert env.send().sent == 2
    assert len(env.server.wait_for(5)) == 5
    # 0 switches the cap off.
    off = env_factory(ack={"max_per_hour": 0})
    for i in range(4):
        off.receive(mail(f"other{i}@example{i}.cn"))
    assert off.send().sent == 4
