"""`intake users`: dashboard accounts — add, list, disable, enable, passwd, role (issue 7)."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from intake.cli import REJECTED, USAGE, ConfigOpt, DbOpt, Fail, _context, _local, app, err, out

users_app = typer.Typer(
    name="users",
    help="Dashboard accounts: add, list, disable, enable, passwd, role.",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")

RoleOpt = Annotated[str, typer.Option("--role", "-r", help="viewer (reads), staff (decides, logs paper), admin.")]


def _actor() -> str:
    """Who ran the command, for the audit trail (the account that administers the dashboard)."""
    try:
        who = os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return f"cli:{who}"


def _read_password(prompt: str) -> str:
    """Prompted twice on a terminal; one line of standard input otherwise (for scripts)."""
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass(f"{prompt}: ")
        second = getpass.getpass("again: ")
        if first != second:
            raise Fail("the two passwords differ", USAGE)
        return first
    line = sys.stdin.readline() if sys.stdin is not None else ""
    password = line.rstrip("\r\n")
    if not password:
        raise Fail("no password on standard input", USAGE)
    return password


def _run(config: Path, db: str | None, action: str, *args: str) -> None:
    from dashboard import users
    from dashboard.security import PasswordError

    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        try:
            if action == "add":
                name, role = args
                password = _read_password(f"password for {name}")
                users.add_user(s, name, role, password, by=_actor())
                msg = f"user {name} added ({role})"
            elif action == "passwd":
                (name,) = args
                users.get_user(s, name)
                password = _read_password(f"new password for {name}")
                users.set_password(s, name, password, by=_actor())
                msg = f"password of {name} changed; their open sessions are ended"
            elif action in ("disable", "enable"):
                (name,) = args
                users.set_disabled(s, name, action == "disable", by=_actor())
                msg = f"user {name} {action}d"
            elif action == "role":
                name, role = args
                users.set_role(s, name, role, by=_actor())
                msg = f"user {name} is now {role}; their open sessions are ended"
            else:  # pragma: no cover - the commands below pass known actions
                raise Fail(f"unknown action {action}")
            s.commit()
        except users.UserError as e:
            raise Fail(str(e), REJECTED) from None
        except PasswordError as e:
            raise Fail(str(e), USAGE) from None
    err.print(msg, markup=False, highlight=False)


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: RoleOpt = "viewer",
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Add a user; the password is prompted (or read from standard input when it is not a terminal)."""
    _run(config, db, "add", name, role)


@users_app.command("list")
def list_(config: ConfigOpt = Path("config.toml"), db: DbOpt = None) -> None:
    """The users, their role, whether they are disabled, their last login."""
    from dashboard import users

    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        rows = users.list_users(s)
        t = Table("name", "role", "state", "last login", "created")
        for u in rows:
            t.add_row(
                u.name,
                u.role,
                "disabled" if u.disabled else "active",
                (_local(u.last_login_at, services.config) or "never")[:19],
                (_local(u.created_at, services.config) or "")[:19],
            )
    out.print(t)


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument()], config: ConfigOpt = Path("config.toml"), db: DbOpt = None) -> None:
    """Disable a user: they cannot log in, and their open sessions end at once."""
    _run(config, db, "disable", name)


@users_app.command("enable")
def enable(name: Annotated[str, typer.Argument()], config: ConfigOpt = Path("config.toml"), db: DbOpt = None) -> None:
    """Enable a disabled user again."""
    _run(config, db, "enable", name)


@users_app.command("passwd")
def passwd(name: Annotated[str, typer.Argument()], config: ConfigOpt = Path("config.toml"), db: DbOpt = None) -> None:
    """Set a new password (prompted, or from standard input); the user's open sessions end."""
    _run(config, db, "passwd", name)


@users_app.command("role")
def role(
    name: Annotated[str, typer.Argument()],
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help="viewer, staff or admin.")],
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Change a user's role; their open sessions end."""
    _run(config, db, "role", name, new_role)
