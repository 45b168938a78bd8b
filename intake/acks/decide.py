"""Who gets an acknowledgement: the reply address, and every reason not to answer a message (SPEC 8)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from intake.config import Config
from parsers.mail import auto_generated_signals
from parsers.types import MessageClass, ParsedMessage
from store.models import Message

# A reply address we are willing to put in To: no spaces, control characters, brackets or quotes.
_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z0-9-]+$")
_SYSTEM_LOCALS = frozenset({"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster", "root", "abuse"})
_NOREPLY = re.compile(r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|noreply|bounces?)(?:[-_+.].*)?$")


@dataclass(frozen=True)
class Decision:
    """receipt (a submission), question (a plain question) or none (suppressed, with the reasons)."""

    kind: str
    recipient: str | None
    reasons: list[str] = field(default_factory=list)
    # Why the recipient is not the address a mail client would reply to (a Reply-To in another domain).
    note: str | None = None

    @property
    def suppressed(self) -> bool:
        return self.kind == "none"


def parsed_view(msg: Message) -> ParsedMessage:
    """The parse results kept on the message row, in the shape `auto_generated_signals` reads."""
    try:
        klass = MessageClass(msg.msg_class or "other")
    except ValueError:
        klass = MessageClass.other
    return ParsedMessage(
        message_id=msg.message_id,
        from_addr=msg.from_addr,
        from_name=msg.from_name,
        reply_to=list(msg.reply_to or []),
        return_path=msg.return_path,
        to=list(msg.to or []),
        cc=list(msg.cc or []),
        subject=msg.subject or "",
        sent_at=msg.sent_at,
        received_at=msg.received_at,
        received_source=msg.received_source,
        text="",
        html="",
        attachments=[],
        cloud_links=[],
        msg_class=klass,
        class_reasons=list(msg.class_reasons or []),
        headers={k: list(v) for k, v in (msg.headers or {}).items()},
        in_reply_to=msg.in_reply_to,
        references=list(msg.references or []),
    )


def own_addresses(config: Config) -> set[str]:
    """The intake mailbox's own addresses: mail from them is never answered, nor sent to them."""
    return {a.strip().lower() for a in (config.smtp.from_, config.smtp.username, config.mailbox.username) if a}


def usable_address(addr: str | None) -> str | None:
    if not addr:
        return None
    addr = addr.strip().lower()
    return addr if _ADDRESS.match(addr) and len(addr) <= 254 else None


def same_domain(a: str, b: str) -> bool:
    """Whether two addresses are in one mail domain (equal, or one a subdomain of the other)."""
    da, db = a.rsplit("@", 1)[-1], b.rsplit("@", 1)[-1]
    return da == db or da.endswith("." + db) or db.endswith("." + da)


def foreign_reply_to(msg: Message) -> str | None:
    """A usable Reply-To in another domain than From: not where an acknowledgement goes.

    Anyone can send from a real account of their own with `Reply-To: victim@elsewhere`; answering that
    Reply-To would turn this public mailbox into a relay for text the sender chose (subject, file names,
    form fields) to a third party who never wrote to it. From is at least the account that sent the mail.
    """
    sender = usable_address(msg.from_addr)
    for addr in msg.reply_to or []:
        ok = usable_address(addr)
        if ok and (sender is None or not same_domain(ok, sender)):
            return ok
    return None


def reply_address(msg: Message) -> str | None:
    """Reply-To when it holds a usable address in From's domain (RFC 5322 3.6.2), else From."""
    sender = usable_address(msg.from_addr)
    if sender is None:
        # No sender to vouch for the Reply-To's domain: nobody to answer.
        return None
    for addr in msg.reply_to or []:
        ok = usable_address(addr)
        if ok and same_domain(ok, sender):
            return ok
    return sender


def ours(msg_id: str | None, config: Config) -> bool:
    """Whether a Message-ID is one of ours (<ack-…@[ack] message_id_domain>)."""
    return bool(msg_id) and str(msg_id).strip().lower().rstrip(">").endswith("@" + config.ack.message_id_domain)


def decide(msg: Message, config: Config) -> Decision:
    """Whether and how to answer `msg`; the per-sender limit is applied by the outbox on top of this."""
    own = own_addresses(config)
    reasons = auto_generated_signals(parsed_view(msg), own_addresses=own)
    if ours(msg.message_id, config):
        reasons.append(f"our own acknowledgement came back ({msg.message_id})")
    replying_to_us = [r for r in [msg.in_reply_to, *(msg.references or [])] if ours(r, config)]
    if replying_to_us and msg.msg_class != MessageClass.submission.value:
        # An answer to our acknowledgement with no files in it: answering it again is how loops start. A reply
        # that carries application files is a resubmission and is acknowledged like any other.
        reasons.append(f"a reply to our acknowledgement {replying_to_us[0]} without application files")
    recipient = reply_address(msg)
    if recipient is None:
        shown = ", ".join([*(msg.reply_to or []), msg.from_addr or ""]).strip(", ") or "none"
        reasons.append(f"no usable address to reply to (From / Reply-To: {shown})")
    else:
        local = recipient.rsplit("@", 1)[0]
        if recipient in own:
            reasons.append(f"the reply address is the intake mailbox itself ({recipient})")
        elif local in _SYSTEM_LOCALS or _NOREPLY.match(local):
            reasons.append(f"the reply address is a system or no-reply address ({recipient})")
    automatic = (MessageClass.bounce.value, MessageClass.auto_reply.value, MessageClass.list.value)
    if msg.msg_class in automatic and not reasons:
        reasons.append(f"class {msg.msg_class}")
    foreign = foreign_reply_to(msg)
    note = (
        f"Reply-To {foreign} is not in the sender's domain: acknowledged to the sender (From) instead"
        if foreign and recipient
        else None
    )
    if reasons:
        return Decision("none", recipient, list(dict.fromkeys(reasons)), note)
    if msg.msg_class == MessageClass.submission.value:
        return Decision("receipt", recipient, note=note)
    if not config.ack.questions:
        return Decision("none", recipient, ["a message without attachments, and [ack] questions = false"], note)
    return Decision("question", recipient, note=note)
