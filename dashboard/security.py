"""Passwords (argon2), the session-signing secret, signed session cookies, CSRF tokens, login rate limits."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func
from sqlmodel import Session, col, select

from intake.config import Config
from store.types import utcnow
from store.users_models import ROLES, DashboardUser, LoginAttempt

log = logging.getLogger(__name__)

COOKIE = "intake_session"
SECRET_FILE = "dashboard-secret"
# argon2id with the library's defaults (RFC 9106 low-memory profile): ~50 ms per hash here, which is
# what a login costs and what slows down guessing.
_hasher = PasswordHasher()
# Verifying against this when the user name is unknown makes a wrong name cost as much as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
MIN_PASSWORD = 8


class PasswordError(ValueError):
    """A password that cannot be used (too short, blank)."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise PasswordError(f"the password needs at least {MIN_PASSWORD} characters")
    if not password.strip():
        raise PasswordError("the password is blank")
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def role_at_least(role: str | None, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


# -- the secret ----------------------------------------------------------------------------------------------


def session_secret(config: Config) -> str:
    """The secret signing session cookies: the environment variable named in [dashboard] secret_env, else
    a random one generated once and kept in the data directory (0600), so that sessions survive restarts
    without anyone having to invent a secret. Deleting the file logs everybody out."""
    value = os.environ.get(config.dashboard.secret_env, "").strip()
    if value:
        if len(value) < 16:
            from intake.config import ConfigError

            raise ConfigError(
                f"{config.dashboard.secret_env} is too short for a session secret (16 characters at least)"
            )
        return value
    path = Path(config.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        st = path.stat()
        if st.st_mode & 0o077:
            # Whoever can read it can sign a cookie for any account: tighten our own file, complain about another's.
            if st.st_uid == os.getuid():
                os.chmod(path, 0o600)
                log.warning("%s was readable by other users (mode %o): now 0600", path, st.st_mode & 0o777)
            else:
                log.warning("%s is readable by other users (mode %o): chmod 600 it", path, st.st_mode & 0o777)
        text = path.read_text(encoding="ascii").strip()
        if len(text) >= 32:
            return text
        raise RuntimeError(f"{path} holds no usable secret: delete it and start again") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_urlsafe(48) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path.read_text(encoding="ascii").strip()


# -- sessions ------------------------------------------------------------------------------------------------


@dataclass
class SessionData:
    """What the signed cookie carries: the user (None before login), the epoch it was issued under, the
    CSRF token of this session."""

    user_id: int | None
    epoch: int
    csrf: str
    # A one-time message for the next page (kind, text), e.g. after a redirect that follows a change.
    flash: tuple[str, str] | None = None

    @classmethod
    def anonymous(cls) -> SessionData:
        return cls(None, 0, secrets.token_urlsafe(32))


class Sessions:
    """Signs and reads session cookies (itsdangerous, HMAC-SHA1 over a timestamped payload)."""

    def __init__(self, secret: str, max_age: timedelta) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="intake-dashboard-session")
        self.max_age = max_age

    def dumps(self, data: SessionData) -> str:
        payload: dict[str, Any] = {"u": data.user_id, "e": data.epoch, "c": data.csrf}
        if data.flash:
            payload["f"] = list(data.flash)
        return self.serializer.dumps(payload)

    def loads(self, cookie: str | None) -> SessionData | None:
        if not cookie or len(cookie) > 4096:
            return None
        try:
            raw: Any = self.serializer.loads(cookie, max_age=int(self.max_age.total_seconds()))
        except BadSignature:
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("c"), str):
            return None
        uid, epoch = raw.get("u"), raw.get("e")
        if uid is not None and not isinstance(uid, int):
            return None
        f = raw.get("f")
        flash = (str(f[0]), str(f[1])) if isinstance(f, list) and len(f) == 2 else None
        return SessionData(uid, epoch if isinstance(epoch, int) else 0, raw["c"], flash)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


# -- who is asking -------------------------------------------------------------------------------------------


def client_ip(scope_client: tuple[str, int] | None, headers: Any, trust_proxy: bool) -> str:
    """The client's address; behind a trusted proxy, the one the proxy appended to X-Forwarded-For."""
    if trust_proxy:
        forwarded = headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            try:
                return str(ipaddress.ip_address(hops[-1]))
            except ValueError:
                pass
    return scope_client[0] if scope_client else "unknown"


def is_https(scheme: str, headers: Any, trust_proxy: bool) -> bool:
    if trust_proxy:
        proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto:
            return proto == "https"
    return scheme == "https"


# -- login rate limit ----------------------------------------------------------------------------------------


def normalize_name(name: str) -> str:
    return name.strip().lower()[:64]


def login_blocked(session: Session, config: Config, name: str, ip: str, now: datetime | None = None) -> bool:
    """Too many recent failures for this user name (since its last success) or from this address."""
    now = now or utcnow()
    since = now - config.dashboard.login_window
    name = normalize_name(name)
    last_ok = session.exec(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.username == name, col(LoginAttempt.ok).is_(True), LoginAttempt.at >= since
        )
    ).one()
    start = max(since, last_ok) if last_ok else since
    by_name = session.exec(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.username == name, col(LoginAttempt.ok).is_(False), LoginAttempt.at > start)
    ).one()
    if by_name >= config.dashboard.login_max_failures:
        return True
    by_ip = session.exec(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.ip == ip[:64], col(LoginAttempt.ok).is_(False), LoginAttempt.at > since)
    ).one()
    return by_ip >= config.dashboard.login_max_failures_ip


def record_attempt(session: Session, name: str, ip: str, ok: bool) -> None:
    session.add(LoginAttempt(username=normalize_name(name), ip=ip[:64], ok=ok))


def authenticate(session: Session, name: str, password: str) -> DashboardUser | None:
    """The user when the name and password are right and the account is enabled."""
    user = session.exec(select(DashboardUser).where(DashboardUser.name == name.strip())).first()
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user
