"""Charts as inline SVG, drawn on the server.

No chart library and no script: the markup is built here from numbers, with
every text escaped, and styled by classes in static/app.css (the CSP allows
no inline style). Bounded inputs: callers pass at most a few hundred points.
"""
from __future__ import annotations

import time
from html import escape

from markupsafe import Markup

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def human_bytes(value: float) -> str:
    value = float(value or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def volume_chart(points: list[dict], *, width: int = 720, height: int = 180,
                 label: str = "Traffic") -> Markup:
    """Bars per hour: upload (device -> internet) and download side by side."""
    if not points:
        return Markup('<p class="muted">No traffic recorded yet.</p>')
    left, bottom, top = 56, 24, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max(max(p["up"], p["down"]) for p in points) or 1
    slot = plot_w / len(points)
    bar = max(1.0, slot / 2 - 1)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet">']
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(human_bytes(peak * fraction))}</text>')
    for index, point in enumerate(points):
        x = left + index * slot
        for offset, key in ((0, "up"), (bar + 1, "down")):
            h = plot_h * point[key] / peak
            if h > 0:
                hour = time.strftime("%a %H:00", time.localtime(point["hour_ts"]))
                parts.append(
                    f'<rect class="bar-{key}" x="{x + offset:.1f}" y="{top + plot_h - h:.1f}" '
                    f'width="{bar:.1f}" height="{h:.1f}"><title>{escape(hour)}: {key} '
                    f'{escape(human_bytes(point[key]))}</title></rect>')
        if index % max(1, len(points) // 6) == 0:
            stamp = time.strftime("%H:00", time.localtime(point["hour_ts"]))
            parts.append(f'<text class="axis" x="{x:.1f}" y="{height - 6}">{stamp}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def heat_map(hours: list[list[int]], *, cell: int = 22) -> Markup:
    """7 x 24 grid of activity counts, Monday first; darker is busier."""
    left, top = 36, 16
    width, height = left + 24 * cell + 4, top + 7 * cell + 4
    peak = max((max(row) for row in hours), default=0) or 1
    parts = [f'<svg class="heatmap" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Activity by hour of the week">']
    for hour in range(0, 24, 3):
        parts.append(f'<text class="axis" x="{left + hour * cell + 2}" y="{top - 4}">{hour:02d}</text>')
    for day, row in enumerate(hours[:7]):
        y = top + day * cell
        parts.append(f'<text class="axis" x="0" y="{y + cell * 0.7:.1f}">{DAYS[day]}</text>')
        for hour, count in enumerate(row[:24]):
            level = count / peak
            parts.append(
                f'<rect class="heat" x="{left + hour * cell}" y="{y}" width="{cell - 2}" '
                f'height="{cell - 2}" fill-opacity="{0.06 + 0.94 * level:.2f}">'
                f'<title>{DAYS[day]} {hour:02d}:00 - {count} flows</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))
