"""Tables of the acknowledgement outbox (issue 6)."""

from __future__ import annotations
