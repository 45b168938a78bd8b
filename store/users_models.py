"""Tables of dashboard users and sessions (issue 7)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime, utcnow

# Roles in increasing power: a viewer reads, staff change applications and logs, an admin also manages users.
ROLES = ("viewer", "staff", "admin")


class DashboardUser(SQLModel, table=True):
    """A person who may log in to the dashboard, with an argon2 password hash and a role."""

    __tablename__ = "dashboard_user"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=64)
    role: str = "viewer"
    password_hash: str = Field(sa_type=Text)
    disabled: bool = False
    # Sessions carry the epoch they were issued under: a new password, a role change or disabling the
    # account bumps it, and every cookie issued before is refused (sessions are otherwise stateless).
    session_epoch: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class LoginAttempt(SQLModel, table=True):
    """One try at logging in: recent failures per user name and per address rate-limit further tries.

    In the database rather than in memory: the limit holds across restarts and across several
    processes serving one database.
    """

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_username_at", "username", "at"),
        Index("ix_login_attempt_ip_at", "ip", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # As typed (lower-cased, cut to 64 characters): unknown names are limited like known ones.
    username: str = Field(max_length=64)
    ip: str = Field(max_length=64)
    ok: bool = False
