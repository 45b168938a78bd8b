"""Server-side SVG charts of arrivals (per day, and per day and hour) against the deadline."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, tzinfo

from markupsafe import Markup, escape


def _nice_max(n: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if n <= step * 4:
            return step * 4
    return n


def daily(arrivals: list[datetime], deadline: datetime, tz: tzinfo, *, width: int = 900, height: int = 220) -> Markup:
    """Submissions received per day (local), with the deadline drawn as a red line at its hour."""
    local = [a.astimezone(tz) for a in arrivals]
    dl = deadline.astimezone(tz)
    counts = Counter(d.date() for d in local)
    first = min(counts, default=dl.date() - timedelta(days=13))
    last = max(max(counts, default=dl.date()), dl.date() + timedelta(days=1))
    first = min(first, dl.date() - timedelta(days=13))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    days = days[-60:]  # at most two months: the season's end is what staff watch
    top = _nice_max(max((counts[d] for d in days), default=0))
    left, bottom, right, top_pad = 44, 34, 10, 12
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    bw = plot_w / len(days)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="每日收到申报邮件数，截止时间以红线标出" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i in range(5):
        v = top * i // 4
        y = top_pad + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v}</text>')
    label_every = max(1, len(days) // 12)
    for i, d in enumerate(days):
        n = counts[d]
        h = plot_h * n / top if top else 0
        x = left + i * bw
        cls = "bar late" if d > dl.date() else "bar"
        parts.append(
            f'<rect class="{cls}" x="{x + 1:.1f}" y="{top_pad + plot_h - h:.1f}" width="{max(bw - 2, 1):.1f}" '
            f'height="{h:.1f}"><title>{escape(d.isoformat())}：{n} 封</title></rect>'
        )
        if i % label_every == 0 or d == dl.date():
            parts.append(
                f'<text class="axis" x="{x + bw / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                f"{d.month}/{d.day}</text>"
            )
    if days[0] <= dl.date() <= days[-1]:
        frac = (dl.hour + dl.minute / 60) / 24
        x = left + ((dl.date() - days[0]).days + frac) * bw
        parts.append(f'<line class="deadline" x1="{x:.1f}" x2="{x:.1f}" y1="{top_pad}" y2="{top_pad + plot_h}"/>')
        parts.append(
            f'<text class="deadline-label" x="{x - 4:.1f}" y="{top_pad + 10}" text-anchor="end">'
            f"截止 {dl:%m-%d %H:%M}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def hourly(arrivals: list[datetime], deadline: datetime, tz: tzinfo, *, days: int = 7) -> Markup:
    """A day × hour grid of the last `days` days up to the day after the deadline; darker is more."""
    dl = deadline.astimezone(tz)
    counts = Counter((d.date(), d.hour) for d in (a.astimezone(tz) for a in arrivals))
    last: date = dl.date() + timedelta(days=1)
    rows = [last - timedelta(days=i) for i in range(days - 1, -1, -1)]
    top = max((counts[(d, h)] for d in rows for h in range(24)), default=0) or 1
    cw, ch, left, top_pad = 32, 22, 64, 20
    width, height = left + 24 * cw + 10, top_pad + len(rows) * ch + 8
    parts = [
        f'<svg class="chart heat" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="截止前后每天每小时收到的申报邮件数" xmlns="http://www.w3.org/2000/svg">'
    ]
    for h in range(0, 24, 2):
        parts.append(
            f'<text class="axis" x="{left + h * cw + cw / 2}" y="{top_pad - 6}" text-anchor="middle">{h}时</text>'
        )
    for r, d in enumerate(rows):
        y = top_pad + r * ch
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + ch / 2 + 4}" text-anchor="end">{d.month}/{d.day}</text>'
        )
        for h in range(24):
            n = counts[(d, h)]
            x = left + h * cw
            start = datetime(d.year, d.month, d.day, h, tzinfo=dl.tzinfo)
            after = start >= dl.replace(minute=0, second=0, microsecond=0) and (start + timedelta(hours=1)) > dl
            cls = "cell late" if after else "cell"
            opacity = 0.08 + 0.92 * n / top if n else 0.04
            parts.append(
                f'<rect class="{cls}" x="{x + 1}" y="{y + 1}" width="{cw - 2}" height="{ch - 2}" '
                f'fill-opacity="{opacity:.2f}"><title>{escape(d.isoformat())} {h}:00–{h}:59：{n} 封</title></rect>'
            )
            if n:
                parts.append(
                    f'<text class="count" x="{x + cw / 2}" y="{y + ch / 2 + 4}" text-anchor="middle">{n}</text>'
                )
            if d == dl.date() and h == dl.hour:
                frac = dl.minute / 60
                lx = x + frac * cw
                parts.append(f'<line class="deadline" x1="{lx:.1f}" x2="{lx:.1f}" y1="{y}" y2="{y + ch}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
