"""Lease ownership: who holds a poll or message lease, and freeing leases of processes that died."""

from __future__ import annotations

import logging
import os
import socket

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from store.models import MailboxCheckpoint, Message

log = logging.getLogger(__name__)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_local(owner: str) -> bool:
    """True when `owner` is a process of this host that no longer exists.

    Leases of other hosts can only expire; on this host a SIGKILLed daemon's lease is freed at once, so a
    restart does not wait out the lease.
    """
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def reap_dead_leases(engine: Engine) -> int:
    """Clear leases held by dead processes of this host; returns how many rows were freed."""
    freed = 0
    with Session(engine) as s:
        for model in (MailboxCheckpoint, Message):
            lease = col(model.lease_owner)
            owners = [o for o in s.exec(select(lease).where(lease.is_not(None)).distinct()) if o]
            for owner in owners:
                if _dead_local(owner):
                    res = s.exec(update(model).where(lease == owner).values(lease_owner=None, lease_until=None))
                    freed += res.rowcount or 0
                    log.warning("freed %s lease(s) of dead process %s", model.__tablename__, owner)
        s.commit()
    return freed
