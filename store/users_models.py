"""Tables of dashboard users and sessions (issue 7)."""

from __future__ import annotations
