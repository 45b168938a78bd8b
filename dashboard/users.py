"""Dashboard accounts: add, list, disable, change password or role — each change an AuditEvent."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from dashboard.security import hash_password
from store.models import AuditEvent
from store.types import utcnow
from store.users_models import ROLES, DashboardUser

_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$|^[\u4e00-\u9fffA-Za-z0-9._@-]{1,32}$")


class UserError(ValueError):
    """A user operation that cannot be done; the message says why."""


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise UserError(f"{name!r} is not a usable user name: letters, digits, Chinese characters, . _ @ - only")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def get_user(session: Session, name: str) -> DashboardUser:
    user = session.exec(select(DashboardUser).where(DashboardUser.name == name.strip())).first()
    if user is None:
        raise UserError(f"no user {name!r}")
    return user


def add_user(session: Session, name: str, role: str, password: str, *, by: str) -> DashboardUser:
    name, role = check_name(name), check_role(role)
    if session.exec(select(DashboardUser).where(DashboardUser.name == name)).first() is not None:
        raise UserError(f"user {name!r} exists already (use `intake users passwd` to change the password)")
    user = DashboardUser(name=name, role=role, password_hash=hash_password(password))
    session.add(user)
    session.add(AuditEvent(user=by, action="user.add", target=f"user:{name}", detail={"role": role}))
    session.flush()
    return user


def list_users(session: Session) -> list[DashboardUser]:
    return list(session.exec(select(DashboardUser).order_by(col(DashboardUser.name))))


def set_disabled(session: Session, name: str, disabled: bool, *, by: str) -> DashboardUser:
    user = get_user(session, name)
    if user.disabled == disabled:
        raise UserError(f"user {name!r} is {'already disabled' if disabled else 'not disabled'}")
    user.disabled = disabled
    # Sessions of a disabled account end at their next request.
    user.session_epoch += 1
    user.updated_at = utcnow()
    session.add(user)
    action = "user.disable" if disabled else "user.enable"
    session.add(AuditEvent(user=by, action=action, target=f"user:{user.name}", detail={}))
    session.flush()
    return user


def set_password(session: Session, name: str, password: str, *, by: str) -> DashboardUser:
    user = get_user(session, name)
    user.password_hash = hash_password(password)
    # Whoever had the old password is logged out everywhere.
    user.session_epoch += 1
    user.updated_at = utcnow()
    session.add(user)
    session.add(AuditEvent(user=by, action="user.passwd", target=f"user:{user.name}", detail={}))
    session.flush()
    return user


def set_role(session: Session, name: str, role: str, *, by: str) -> DashboardUser:
    user = get_user(session, name)
    role = check_role(role)
    before = user.role
    if before == role:
        raise UserError(f"user {name!r} has role {role} already")
    user.role = role
    user.session_epoch += 1
    user.updated_at = utcnow()
    session.add(user)
    session.add(
        AuditEvent(user=by, action="user.role", target=f"user:{user.name}", detail={"from": before, "to": role})
    )
    session.flush()
    return user
