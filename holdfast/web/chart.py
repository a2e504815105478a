"""The swarm-health chart: seeders and leechers over time, drawn as SVG on the server.

The chart needs no JavaScript and no image request: the page embeds it inline, and
its colours come from the stylesheet (so it follows the light or dark theme). It is an
image with a text alternative (`<title>` and `<desc>`) for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

WIDTH = 600
HEIGHT = 220
LEFT = 44
RIGHT = 12
TOP = 12
BOTTOM = 34
# Two points per pixel of the plot at most: more adds bytes to the page, not detail.
MAX_POINTS = 1000

SwarmPoint = tuple[datetime, int, int]


def _nice_ceiling(value: int) -> int:
    """The smallest 'round' number >= value (1, 2, 5 times a power of ten)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _label_time(moment: datetime, span_seconds: float) -> str:
    moment = moment.astimezone(UTC)
    if span_seconds < 2 * 86400:
        return moment.strftime("%m-%d %H:%M")
    return moment.strftime("%Y-%m-%d")


def _thin(points: list[SwarmPoint]) -> list[SwarmPoint]:
    """At most MAX_POINTS points, keeping the first and last, so a page stays small."""
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / (MAX_POINTS - 1)
    kept = [points[int(i * step)] for i in range(MAX_POINTS - 1)]
    return [*kept, points[-1]]


def swarm_chart_svg(points: Sequence[SwarmPoint], *, title: str = "Swarm health") -> str:
    """An SVG line chart of (time, seeders, leechers) points.

    Points may come in any order and negative counts are treated as zero. With no
    points the chart says so instead of drawing empty axes.
    """
    clean = sorted(
        ((t if t.tzinfo else t.replace(tzinfo=UTC), max(0, s), max(0, lc)) for t, s, lc in points),
        key=lambda p: p[0],
    )
    clean = _thin(clean)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="swarm-chart-title swarm-chart-desc">'
        f'<title id="swarm-chart-title">{escape(title)}</title>'
    )
    if not clean:
        return (
            head + '<desc id="swarm-chart-desc">No swarm measurements yet.</desc>'
            f'<rect class="chart-axis" x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
            f'height="{HEIGHT - TOP - BOTTOM}" fill="none"/>'
            f'<text class="chart-label" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            "No swarm measurements yet</text></svg>"
        )

    first, last = clean[0][0], clean[-1][0]
    span = (last - first).total_seconds()
    top_value = _nice_ceiling(max(max(s, lc) for _, s, lc in clean))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        if span <= 0:
            return LEFT + plot_w / 2
        return LEFT + plot_w * (moment - first).total_seconds() / span

    def y(value: int) -> float:
        return TOP + plot_h * (1 - value / top_value)

    latest = clean[-1]
    peak = max(s for _, s, _ in clean)
    desc = (
        f"{len(clean)} measurement{'s' if len(clean) != 1 else ''} from "
        f"{_label_time(first, span)} to {_label_time(last, span)} UTC. "
        f"Latest: {latest[1]} seeders, {latest[2]} leechers. Most seeders: {peak}."
    )
    parts = [head, f'<desc id="swarm-chart-desc">{escape(desc)}</desc>']
    # Axes and gridlines at 0, half and the top.
    for value in sorted({0, top_value // 2, top_value}):
        yy = y(value)
        parts.append(
            f'<line class="chart-axis" x1="{LEFT}" y1="{yy:.1f}" x2="{WIDTH - RIGHT}" '
            f'y2="{yy:.1f}"/>'
            f'<text class="chart-label" x="{LEFT - 6}" y="{yy + 4:.1f}" '
            f'text-anchor="end">{value}</text>'
        )
    parts.append(
        f'<text class="chart-label" x="{LEFT}" y="{HEIGHT - 10}">{_label_time(first, span)}</text>'
    )
    if span > 0:
        parts.append(
            f'<text class="chart-label" x="{WIDTH - RIGHT}" y="{HEIGHT - 10}" '
            f'text-anchor="end">{_label_time(last, span)}</text>'
        )
    series = (("seeders", [p[1] for p in clean]), ("leechers", [p[2] for p in clean]))
    for name, values in series:
        if len(clean) > 1:
            coords = " ".join(
                f"{x(p[0]):.1f},{y(v):.1f}" for p, v in zip(clean, values, strict=True)
            )
            parts.append(f'<polyline class="chart-{name}" points="{coords}"/>')
        else:
            cx, cy = x(first), y(values[0])
            parts.append(f'<circle class="chart-dot-{name}" cx="{cx:.1f}" cy="{cy:.1f}" r="4"/>')
    parts.append("</svg>")
    return "".join(parts)
