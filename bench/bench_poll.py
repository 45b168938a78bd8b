"""Benchmark `intake poll` against a bare imapclient + mail-parser loop on the same Dovecot mailbox.

    .venv/bin/python bench/bench_poll.py                # 1,000 messages of ~170 KB, 3 rounds
    .venv/bin/python bench/bench_poll.py --messages 200 --rounds 1

Both sides run as child processes on the same messages; wall time and peak RSS (wait4) are measured
per run. `intake poll` is timed up to every message archived (fsync'd), parsed (issue 2, section 5:
headers, bodies, attachments, class) and recorded, i.e. with the pipeline stages parse_message and
store_attachments; its messages are parsed in its parser processes, whose memory is counted with it
(peak PSS of the process tree). Target: intake at >= 50 % of the bare loop's messages/s, peak memory
< 300 MB at any mailbox size (the run at a quarter of the size shows whether memory grows with the
mailbox).
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

USER, PASSWORD = "bench@example.test", "bench-secret"


def build_messages(n: int, target_kb: int) -> list[bytes]:
    """n distinct application emails, each a filled .docx and its PDF, padded to about target_kb."""
    from parsers.types import Kind
    from tests.formgen import make_form

    form = make_form(Kind.form_scenario, seed=1)
    raw_budget = int(target_kb * 1024 * 3 / 4) - 3000  # base64 grows by 4/3; headers and text part
    pdf = scan_pdf(max(20_000, raw_budget - len(form.data)))
    pad = max(0, raw_budget - len(form.data) - len(pdf))
    rng = random.Random(7)
    out = []
    for i in range(n):
        m = EmailMessage()
        m["From"] = f"申报单位{i} <applicant{i}@example.com>"
        m["To"] = "whaicj@126.com"
        m["Subject"] = f"附件1 典型应用场景案例申报书 — {form.project_name} 第{i}份"
        m["Message-ID"] = f"<bench-{i}-{rng.getrandbits(64):x}@example.com>"
        m["Date"] = "Mon, 06 Jul 2026 10:00:00 +0800"
        m.set_content(f"您好！附件为我单位申报材料（Word 和盖章扫描件），请查收。编号 {i}。")
        m.add_attachment(form.data, maintype="application",
                         subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                         filename=f"附件1 典型应用场景案例申报书{i}.docx")
        # Scans are incompressible; bytes after %%EOF are ignored by PDF readers.
        m.add_attachment(pdf + b"\n%" + rng.randbytes(pad), maintype="application", subtype="pdf",
                         filename=f"附件1 申报书{i}（盖章扫描件）.pdf")
        out.append(bytes(m))
    return out


def scan_pdf(target_bytes: int) -> bytes:
    """An image-only PDF (what a stamped scan is) of about target_bytes: a noisy A4 page as JPEG."""
    import io

    from PIL import Image, ImageDraw

    rng = random.Random(3)
    img = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(img)
    for _ in range(1200):  # text-like strokes, enough entropy for a realistic JPEG size
        x, y = rng.randrange(80, 1160), rng.randrange(80, 1680)
        draw.line((x, y, x + rng.randrange(5, 40), y + rng.randrange(-2, 3)), fill=rng.randrange(0, 120), width=2)
    best = b""
    for quality in range(95, 10, -5):
        buf = io.BytesIO()
        img.save(buf, "PDF", quality=quality, resolution=150)
        best = buf.getvalue()
        if len(best) <= target_bytes:
            break
    return best


def fill_mailbox(dovecot: object, messages: list[bytes]) -> None:
    from datetime import UTC, datetime

    c = dovecot.client(USER)  # type: ignore[attr-defined]
    try:
        for raw in messages:
            c.append("INBOX", raw, msg_time=datetime(2026, 7, 6, 2, 0, tzinfo=UTC))
    finally:
        c.logout()


def _tree(root: int) -> list[int]:
    """root and every process below it (the parser processes and their forkserver)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _pss(pid: int) -> int:
    """Proportional set size: pages shared with the forkserver count once across the tree."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, int, int, str]:
    """Wall seconds, peak RSS of the process, peak memory of its whole tree, and its stderr.

    Peak RSS is the kernel's high-water mark (VmHWM) read from /proc while the child runs: wait4's
    ru_maxrss would include the memory this parent held when it forked. The tree's figure is the largest
    sum of PSS seen (sampled every 0.1 s), so that memory moved into parser processes is not hidden.
    """
    peak = tree_peak = 0
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        status_file = Path(f"/proc/{proc.pid}/status")
        last_tree = 0.0
        while proc.poll() is None:
            try:
                for line in status_file.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
            except (OSError, ValueError):
                pass
            if time.perf_counter() - last_tree >= 0.1:
                last_tree = time.perf_counter()
                tree_peak = max(tree_peak, sum(_pss(p) for p in _tree(proc.pid)))
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{text}")
    return wall, peak, max(tree_peak, peak), text


def bare_loop(port: int) -> None:
    """The baseline: imapclient FETCH BODY.PEEK[] in batches of 50, mail-parser + base64 decode, nothing else."""
    import mailparser
    from imapclient import IMAPClient

    c = IMAPClient("127.0.0.1", port, ssl=False, timeout=60)
    c.login(USER, PASSWORD)
    c.select_folder("INBOX", readonly=True)
    uids = c.search("ALL")
    n = 0
    for i in range(0, len(uids), 50):
        data = c.fetch(uids[i : i + 50], ["BODY.PEEK[]", "INTERNALDATE", "RFC822.SIZE"])
        for item in data.values():
            mail = mailparser.parse_from_bytes(item[b"BODY[]"])
            for a in mail.attachments:
                base64.b64decode(a["payload"])
            n += 1
    c.logout()
    print(n, file=sys.stderr)


def intake_run(port: int, workdir: Path) -> list[str]:
    (workdir / "config.toml").write_text(
        f"""
[mailbox]
host = "127.0.0.1"
port = {port}
tls = "none"
username = "{USER}"
password_env = "BENCH_IMAP_PASSWORD"
batch_size = 50
[store]
url = "sqlite:///data/intake.db"
data_dir = "data"
[pipeline]
stages = ["parse_message", "store_attachments"]
[ack]
enabled = false
""",
        encoding="utf-8",
    )
    return [sys.executable, "-m", "intake.cli", "poll", "--config", str(workdir / "config.toml")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--size-kb", type=int, default=170)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare:
        bare_loop(args.bare)
        return 0

    from devservices.dovecot import Dovecot

    work = Path(tempfile.mkdtemp(prefix="bench-poll-"))
    os.chmod(work, 0o755)
    dovecot = Dovecot(work / "dovecot", tls=False, rawlog=False).start()
    try:
        dovecot.add_user(USER, PASSWORD)
        print(f"building {args.messages} messages of ~{args.size_kb} KB ...", file=sys.stderr)
        msgs = build_messages(args.messages, args.size_kb)
        total_mb = sum(len(m) for m in msgs) / 1e6
        print(f"  mean size {total_mb * 1e6 / len(msgs) / 1024:.0f} KB; appending ...", file=sys.stderr)
        fill_mailbox(dovecot, msgs)
        env = dict(os.environ, BENCH_IMAP_PASSWORD=PASSWORD, PYTHONDONTWRITEBYTECODE="1")

        results: dict[str, list[tuple[float, int, int]]] = {"bare": [], "intake": []}
        for r in range(args.rounds):
            # Alternate the order so neither side always gets the warmer cache.
            order = ["bare", "intake"] if r % 2 == 0 else ["intake", "bare"]
            for side in order:
                if side == "bare":
                    cmd = [sys.executable, __file__, "--bare", str(dovecot.port)]
                else:
                    cmd = intake_run(dovecot.port, Path(tempfile.mkdtemp(prefix="intake-", dir=work)))
                wall, rss, tree, err = run_measured(cmd, env)
                if side == "intake" and f"{len(msgs)} fetched ({len(msgs)} new" not in err:
                    raise SystemExit(f"intake poll did not record every message:\n{err}")
                results[side].append((wall, rss, tree))
                print(
                    f"  round {r + 1} {side:6s}: {wall:6.2f} s, peak RSS {rss / 2**20:6.1f} MB, "
                    f"with its parser processes {tree / 2**20:6.1f} MB",
                    file=sys.stderr,
                )
        # Memory must not grow with the mailbox: the same poll on a quarter of the messages, in its own
        # account, for the peak RSS at two sizes.
        quarter = max(1, len(msgs) // 4)
        dovecot.add_user("small@example.test", PASSWORD)
        c = dovecot.client("small@example.test")
        try:
            from datetime import UTC, datetime

            for raw in msgs[:quarter]:
                c.append("INBOX", raw, msg_time=datetime(2026, 7, 6, 2, 0, tzinfo=UTC))
        finally:
            c.logout()
        small_dir = Path(tempfile.mkdtemp(prefix="intake-small-", dir=work))
        cmd = intake_run(dovecot.port, small_dir)
        (small_dir / "config.toml").write_text(
            (small_dir / "config.toml").read_text().replace(USER, "small@example.test"), encoding="utf-8"
        )
        _wall, small_rss, small_tree, _err = run_measured(cmd, env)
    finally:
        dovecot.stop()

    def rate(side: str) -> tuple[float, float, float, float]:
        wall = statistics.median(w for w, _, _ in results[side])
        rss = max(m for _, m, _ in results[side])
        tree = max(t for _, _, t in results[side])
        return len(msgs) / wall, total_mb / wall, rss / 2**20, tree / 2**20

    b, i = rate("bare"), rate("intake")
    print()
    print(f"{len(msgs)} messages, {total_mb:.0f} MB, median of {args.rounds} round(s)")
    print(f"{'':28s}{'msg/s':>10s}{'MB/s':>10s}{'peak RSS MB':>14s}{'tree PSS MB':>14s}")
    print(f"{'bare imapclient+mail-parser':28s}{b[0]:10.1f}{b[1]:10.1f}{b[2]:14.1f}{b[3]:14.1f}")
    print(f"{'intake poll':28s}{i[0]:10.1f}{i[1]:10.1f}{i[2]:14.1f}{i[3]:14.1f}")
    ratio = i[0] / b[0]
    print(
        f"intake / bare throughput: {ratio:.2f}  (target >= 0.50)   peak memory {i[3]:.0f} MB with the parser "
        f"processes, {i[2]:.0f} MB the poll process alone (target < 300)"
    )
    print(
        f"intake peak at {quarter} messages: {small_tree / 2**20:.0f} MB ({small_rss / 2**20:.0f} MB alone); "
        f"at {len(msgs)}: {i[3]:.0f} MB ({i[2]:.0f} MB alone)"
    )
    return 0 if ratio >= 0.5 and i[3] < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
