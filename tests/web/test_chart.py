"""The swarm-health chart, drawn from (time, seeders, leechers) points."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from holdfast.web.chart import MAX_POINTS, swarm_chart_svg

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def parse(svg):
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    return root


def polyline_points(root, name):
    line = root.find(f"{SVG}polyline[@class='chart-{name}']")
    assert line is not None
    return [tuple(float(v) for v in p.split(",")) for p in line.get("points").split()]


def test_no_points_says_so():
    root = parse(swarm_chart_svg([]))
    assert root.findtext(f"{SVG}desc") == "No swarm measurements yet."
    assert root.find(f"{SVG}polyline") is None


def test_lines_follow_the_counts_in_time_order():
    points = [(T0 + timedelta(hours=h), s, lc) for h, s, lc in [(2, 10, 1), (0, 0, 4), (1, 5, 2)]]
    root = parse(swarm_chart_svg(points))
    seeders = polyline_points(root, "seeders")
    leechers = polyline_points(root, "leechers")
    assert len(seeders) == len(leechers) == 3
    xs = [x for x, _ in seeders]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    ys = [y for _, y in seeders]
    # SVG y grows downwards: more seeders, higher on the chart (smaller y).
    assert ys[0] > ys[1] > ys[2]
    desc = root.findtext(f"{SVG}desc")
    assert "3 measurements" in desc
    assert "Latest: 10 seeders, 1 leechers" in desc
    assert "Most seeders: 10" in desc
    labels = [t.text for t in root.findall(f"{SVG}text")]
    assert "10" in labels  # the top of the scale is a round number at or above the peak
    assert "0" in labels


def test_one_point_is_drawn_as_dots():
    root = parse(swarm_chart_svg([(T0, 3, 1)]))
    assert root.find(f"{SVG}polyline") is None
    assert len(root.findall(f"{SVG}circle")) == 2


def test_bad_values_are_clamped_and_naive_times_taken_as_utc():
    root = parse(swarm_chart_svg([(datetime(2025, 1, 1), -5, -1), (datetime(2025, 1, 2), 2, 0)]))
    seeders = polyline_points(root, "seeders")
    assert max(y for _, y in seeders) <= 220


def test_long_histories_are_thinned():
    points = [(T0 + timedelta(minutes=i), i % 7, 1) for i in range(MAX_POINTS * 3)]
    root = parse(swarm_chart_svg(points))
    seeders = polyline_points(root, "seeders")
    assert len(seeders) == MAX_POINTS
    assert "Latest: " + str((MAX_POINTS * 3 - 1) % 7) in root.findtext(f"{SVG}desc")


def test_title_is_escaped():
    root = parse(swarm_chart_svg([], title="<b>&"))
    assert root.findtext(f"{SVG}title") == "<b>&"
