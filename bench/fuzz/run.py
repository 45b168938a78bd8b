"""Run one fuzz target for a time budget under atheris/libFuzzer; restart after crashes; report the figures.

    .venv/bin/python bench/fuzz/run.py --target message --seconds 600

Targets: message, document, archive, paper. Seeds are generated on first use (bench/fuzz/seeds.py) into
corpus/<target>/seed; new coverage-increasing inputs go to corpus/<target>/work; findings go to
crashes/<target>/ (crash-*, timeout-*, oom-* from libFuzzer; hang-*, unexpected-* from the harness).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from seeds import CORPUS, TARGETS, write_seeds  # noqa: E402

# Per input: the harness's own watchdog (Python-level hangs, kept and fuzzing goes on) and libFuzzer's -timeout
# (hangs in native code: libFuzzer stops, the input is kept, this script restarts it).
HANG_S = {"message": 5.0, "document": 10.0, "archive": 10.0, "paper": 10.0}
MAX_LEN = {"message": 64 * 1024, "document": 512 * 1024, "archive": 256 * 1024, "paper": 128 * 1024}
_STATUS = re.compile(
    r"#(\d+)\s+(INITED|NEW|REDUCE|pulse|DONE|RELOAD)\s+cov: (\d+) ft: (\d+)(?: corp: (\d+)/(\S+))?"
    r".*?(?:exec/s: (\d+))?\s+rss: (\d+)Mb"
)


def _count(d: Path) -> int:
    return sum(1 for p in d.iterdir() if p.is_file()) if d.is_dir() else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, choices=TARGETS)
    ap.add_argument("--seconds", type=int, default=300, help="wall-clock budget (default 300)")
    ap.add_argument("--rss-mb", type=int, default=2560, help="libFuzzer -rss_limit_mb (process RSS cap)")
    ap.add_argument("--hang-s", type=float, default=None, help="per-input limit of the harness watchdog")
    ap.add_argument("--reseed", action="store_true", help="regenerate the seed corpus first")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary as JSON here")
    args = ap.parse_args()

    t = args.target
    seed_dir, work_dir, crash_dir = CORPUS / t / "seed", CORPUS / t / "work", HERE / "crashes" / t
    if args.reseed or _count(seed_dir) == 0:
        write_seeds(t)
    work_dir.mkdir(parents=True, exist_ok=True)
    crash_dir.mkdir(parents=True, exist_ok=True)
    hang = args.hang_s or HANG_S[t]
    before = {p.name for p in crash_dir.iterdir()}
    corpus_start = _count(seed_dir) + _count(work_dir)
    log_path = HERE / "out" / f"{t}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)

    start = time.monotonic()
    deadline = start + args.seconds
    runs = execs = 0
    cov_first: int | None = None
    cov_last = ft_last = 0
    peak_rss = 0
    slowest = 0
    coverage: list[tuple[float, int]] = []
    stops: list[str] = []
    env = dict(os.environ, FUZZ_HANG_S=str(hang), PYTHONPATH=str(ROOT))
    with open(log_path, "w", encoding="utf-8") as log:
        while (left := int(deadline - time.monotonic())) > 5:
            runs += 1
            cmd = [
                sys.executable, str(HERE / f"fuzz_{t}.py"),
                f"-max_total_time={left}", f"-timeout={int(hang * 6)}", f"-rss_limit_mb={args.rss_mb}",
                f"-max_len={MAX_LEN[t]}", f"-artifact_prefix={crash_dir}/", "-print_final_stats=1",
                "-reload=0", str(work_dir), str(seed_dir),
            ]  # fmt: skip
            if (HERE / "dicts" / f"{t}.dict").exists():
                cmd.insert(2, f"-dict={HERE / 'dicts' / f'{t}.dict'}")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                                    errors="replace", cwd=ROOT)  # fmt: skip
            assert proc.stdout is not None
            run_execs = 0
            tail: list[str] = []
            for line in proc.stdout:
                log.write(line)
                tail = ([*tail, line])[-40:]
                m = _STATUS.search(line)
                if m:
                    run_execs = int(m.group(1))
                    cov, ft, rss = int(m.group(3)), int(m.group(4)), int(m.group(8))
                    if cov_first is None and m.group(2) == "INITED":
                        cov_first = cov
                    cov_last, ft_last, peak_rss = max(cov_last, cov), max(ft_last, ft), max(peak_rss, rss)
                    coverage.append((round(time.monotonic() - start, 1), cov))
                elif line.startswith("stat::number_of_executed_units:"):
                    run_execs = int(line.split(":")[-1])
                elif line.startswith("stat::slowest_unit_time_sec:"):
                    slowest = max(slowest, int(line.split(":")[-1]))
            code = proc.wait()
            execs += run_execs
            if code != 0:
                why = next((ln.strip() for ln in tail if "ERROR:" in ln or "Uncaught Python exception" in ln),
                           f"exit {code}")  # fmt: skip
                art = next((ln.split("to ")[-1].strip() for ln in tail if "Test unit written to" in ln), "")
                stops.append(f"run {runs}: {why} {art}".strip())
                print(f"[{t}] run {runs} stopped: {why} {art}", file=sys.stderr, flush=True)
                if art:
                    # An input that crashes at corpus load would stop every restart: take it out of the corpus.
                    sha = Path(art).name.split("-", 1)[-1]
                    for d in (work_dir, seed_dir):
                        for p in d.iterdir():
                            if p.name == sha or p.name.startswith(sha[:12]):
                                p.unlink()
    elapsed = time.monotonic() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    found = sorted(p.name for p in crash_dir.iterdir() if p.name not in before and not p.name.endswith(".txt"))
    kinds: dict[str, int] = {}
    for name in found:
        k = name.split("-")[0] if not name.startswith("unexpected-") else "-".join(name.split("-")[:2])
        kinds[k] = kinds.get(k, 0) + 1
    summary = {
        "target": t,
        "seconds": round(elapsed, 1),
        "libfuzzer_runs": runs,
        "execs": execs,
        "execs_per_s": round(execs / elapsed, 1) if elapsed else 0,
        "coverage_start": cov_first,
        "coverage_end": cov_last,
        "features_end": ft_last,
        "coverage_curve": " ".join(f"{s:g}s:{c}" for s, c in coverage[:: max(1, len(coverage) // 12)] + coverage[-1:]),
        "corpus_start": corpus_start,
        "corpus_end": _count(seed_dir) + _count(work_dir),
        "findings": kinds,
        "finding_files": [str(crash_dir / n) for n in found],
        "stops": stops,
        # libFuzzer samples the harness's RSS once a second; ru_maxrss is the exact peak of the harness processes
        # and of the tools they ran (unar / 7z for RAR), whichever was largest.
        "peak_rss_sampled_mb": peak_rss,
        "peak_rss_exact_mb": children,
        "hang_limit_s": hang,
        "slowest_unit_s": slowest,
        "log": str(log_path),
    }
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
