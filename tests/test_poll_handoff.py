"""The poller hands freshly archived bytes to its worker in memory (bounded), and the archive writes a
batch with parallel fsyncs: both must keep what the disk holds and what is processed the same."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from intake.pipeline import FreshRaw
from store.archive import Archive, ArchiveError


def test_fresh_raw_is_bounded_and_hands_each_message_over_once() -> None:
    fresh = FreshRaw(limit=100)
    fresh.put(1, b"a" * 40)
    fresh.put(2, b"b" * 40)
    fresh.put(1, b"x" * 40)  # already there: the first bytes stay
    fresh.put(3, b"c" * 40)  # would pass the limit: left out (read from the archive), the older ones stay
    fresh.put(4, b"d" * 101)  # larger than the whole limit: never kept
    assert fresh.pop(1) == b"a" * 40
    assert fresh.pop(1) is None
    assert fresh.pop(3) is None
    assert fresh.pop(4) is None
    fresh.put(5, b"e" * 60)  # the space of what was popped is free again
    assert fresh.pop(2) == b"b" * 40
    assert fresh.pop(5) == b"e" * 60


def test_fresh_raw_forgets_what_another_process_took_and_can_be_off() -> None:
    now = [0.0]
    fresh = FreshRaw(limit=100, clock=lambda: now[0])
    fresh.put(1, b"a" * 60)
    now[0] = FreshRaw.MAX_AGE + 1  # message 1 was processed by another worker: never popped here
    fresh.put(2, b"b" * 60)  # room again: the stale entry went
    assert fresh.pop(1) is None and fresh.pop(2) == b"b" * 60
    off = FreshRaw(limit=0)
    off.put(3, b"c")
    assert off.pop(3) is None


def test_a_batch_is_written_in_parallel_byte_for_byte_and_read_only(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "raw", ".eml")
    items = [os.urandom(1000 + i) for i in range(60)] + [b"same"] * 3
    shas = archive.put_many(items)
    assert shas == [hashlib.sha256(d).hexdigest() for d in items]
    for sha, data in zip(shas, items, strict=True):
        path = archive.path_for(sha)
        assert path.read_bytes() == data
        assert path.stat().st_mode & 0o222 == 0  # read-only for everyone
        assert archive.get(sha, verify=True) == data
    assert not list((tmp_path / "raw").rglob(".tmp-*"))
    # Writing the batch again is a no-op.
    assert archive.put_many(items) == shas


def test_a_batch_that_cannot_be_written_is_an_archive_error_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    archive = Archive(root, ".eml")
    items = [os.urandom(500 + i) for i in range(10)]
    # One of the batch's folders exists as a file: that file cannot be written, the error names the archive.
    blocked = hashlib.sha256(items[3]).hexdigest()[:2]
    root.mkdir()
    (root / blocked).write_bytes(b"")
    with pytest.raises(ArchiveError, match=str(root)):
        archive.put_many(items)
    assert not list(root.rglob(".tmp-*"))
