"""Run the season rehearsal and print its verdicts and figures.

    .venv/bin/python -m bench.rehearsal.run                            # short season, SQLite, one daemon
    .venv/bin/python -m bench.rehearsal.run --db postgresql --daemons 2
    .venv/bin/python -m bench.rehearsal.run --apps 120 --play 900 --settle 900   # a long season

Needs root (a private Dovecot, a tmpfs for the disk-full fault). Exit status 0 when every verdict holds.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.rehearsal.harness import FAULTS, Options, Rehearsal, main_json
from bench.rehearsal.season import make_season


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apps", type=int, default=12, help="applications in the season (default 12)")
    ap.add_argument("--scans", type=int, default=1, help="of which stamped scans (OCR)")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--daemons", type=int, default=1, help="intake run processes (2+ needs PostgreSQL)")
    ap.add_argument("--roles", default="", help="roles of the daemons instead, e.g. all,poller,worker")
    ap.add_argument("--play", type=float, default=90, help="seconds over which the season is played")
    ap.add_argument("--settle", type=float, default=240, help="seconds allowed to finish afterwards")
    ap.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated subset of {','.join(FAULTS)}")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, data) for inspection")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args()
    roles = tuple(r for r in args.roles.split(",") if r)
    if (args.daemons > 1 or len(roles) > 1) and args.db != "postgresql":
        ap.error("several daemons share one database: use --db postgresql")
    t = time.monotonic()
    print(f"building a season of {args.apps} applications ...", file=sys.stderr)
    season = make_season(args.apps, seed=args.seed, scans=args.scans)
    print(f"  {len(season.messages)} messages in {time.monotonic() - t:.0f} s", file=sys.stderr)
    faults = tuple(f for f in args.faults.split(",") if f)
    opts = Options(
        db=args.db,
        daemons=args.daemons,
        roles=roles,
        play_seconds=args.play,
        settle_seconds=args.settle,
        faults=faults,
        seed=args.seed,
        keep=args.keep,
    )
    report = Rehearsal(season, opts).run()
    print(main_json(report) if args.json else report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
