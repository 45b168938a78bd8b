"""The season rehearsal, short, with every fault: SQLite with one daemon, PostgreSQL with two (issue 8)."""

from __future__ import annotations

import io

import pytest

from bench.rehearsal.harness import FAULTS, Options, Rehearsal
from bench.rehearsal.season import Season, make_season


@pytest.fixture(scope="module")
def season() -> Season:
    return make_season(12, seed=7, scans=1)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("db", "roles"),
    [
        ("sqlite", ("all",)),
        # Scale-out on one PostgreSQL: two pollers (all, poller) share the mailbox, two processors and two
        # acknowledgement senders (all, worker) share the messages and the outbox.
        ("postgresql", ("all", "poller", "worker")),
    ],
)
def test_a_short_season_with_every_fault_passes_its_verdicts(season: Season, db: str, roles: tuple[str, ...]) -> None:
    log = io.StringIO()
    report = Rehearsal(season, Options(db=db, roles=roles, play_seconds=75, settle_seconds=300, faults=FAULTS,
                                       seed=7, log=log)).run()  # fmt: skip
    assert {f for _t, f in report.faults} >= set(FAULTS), report.faults  # every fault was injected
    assert report.ok, log.getvalue() + report.text()
    assert report.figures["applications"] == len(season.applications)
