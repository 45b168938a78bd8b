"""libFuzzer/atheris harness: parse_message returns a ParsedMessage or raises MessageParseError, nothing else."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

T: dict[str, Any] = {}
_BAD_NAME = set("/\\\x00\r\n")


def _load() -> None:
    from parsers import mail, types

    T["mail"], T["types"] = mail, types


def one_input(data: bytes) -> None:
    mail, types = T["mail"], T["types"]
    try:
        msg = mail.parse_message(data)
    except mail.MessageParseError as exc:
        assert exc.reason, "MessageParseError without a reason"
        return
    assert isinstance(msg, types.ParsedMessage)
    assert isinstance(msg.msg_class, types.MessageClass)
    for a in msg.attachments:
        assert a.filename and not (_BAD_NAME & set(a.filename)), f"unsafe attachment name {a.filename!r}"
        assert not a.filename.startswith("."), f"attachment name starts with a dot: {a.filename!r}"
    for d in msg.defects:
        assert isinstance(d, str)


if __name__ == "__main__":
    common.run("message", one_input, limit=5.0, instrumented=_load)
