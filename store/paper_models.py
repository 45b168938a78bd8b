"""Tables of the paper-submission log and reconciliation (issue 5)."""

from __future__ import annotations
