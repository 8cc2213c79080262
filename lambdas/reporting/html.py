"""The run's report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.

A pure function of a RunPicture (lambdas/reporting/picture.py). Every string that comes from the run (keys,
bucket names, errors, reasons, the run id) is escaped with ``html.escape``. The page's size is bounded by the
picture's bounds, not by the run's objects: lanes are drawn per invocation up to picture.MAX_SEGMENTS, else
per pixel column (each lane at most picture.COLUMNS runs of equal colour), markers and listed failures are
capped with a count of the rest. Element classes the browser test checks: ``g.lane`` (one per worker, with
``data-worker``), ``g.marker-retry`` / ``marker-lost`` / ``marker-failed`` inside their lane, ``tr.failure``
(one per listed failed object).
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from itertools import groupby

from lambdas.reporting.picture import COLUMNS, Lane, Marker, RunPicture
from lambdas.units import format_bytes

LABEL = 96  # px left of the time axis, for the lane labels
LANE = 14  # px per lane
GAP = 4
AXIS = 24  # px under the lanes, for the time labels
CHART = 140  # px of the bytes-over-time chart
TICKS = 6
# A bin's shading: its busy share rounded to one of these levels.
LEVELS = 4
COLOURS = {1: "#4c9a6a", 2: "#e0a030", 3: "#c0392b"}  # done/continued, retried, failed or cut off
OUTCOME_COLOURS = {"done": "#2e7d4f", "continued": "#6fb38a", "running": "#9ab", "failed": "#c0392b",
                   "lost": "#7b241c"}

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.verdict{padding:8px 12px;border-radius:4px;margin:8px 0;font-weight:600}
.ok{background:#e3f4e8;color:#1d5c34}.bad{background:#fbe4e1;color:#7b241c}.dry{background:#eef;color:#334}
table{border-collapse:collapse;margin:4px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;
vertical-align:top}th{background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777}.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#444}code{font-size:12px;word-break:break-all}
.lanes{overflow-x:auto}
"""


def render(p: RunPicture) -> str:
    """The page."""
    status_class = {"succeeded": "ok", "dry-run": "dry"}.get(p.status, "bad")
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>sfncopy run {_e(p.run_id)}</title><style>{CSS}</style></head><body>",
        f"<h1>sfncopy run <code>{_e(p.run_id)}</code></h1>",
        f"<div class=\"verdict {status_class}\" id=\"verdict\">{_e(p.verdict)}</div>",
        f"<p class=\"muted\">started {_e(p.started)} &middot; finished {_e(p.finished)} &middot; "
        f"{p.totals.get('workers', 0):,} workers, {p.totals.get('payloads', 0):,} payloads</p>",
        _totals(p), _targets(p), _timeline(p), _bytes_chart(p), _skips(p), _failures(p), _cost(p),
        "</body></html>\n",
    ]
    return "".join(parts)


# --- sections ----------------------------------------------------------------------------------------
def _totals(p: RunPicture) -> str:
    t = p.totals
    rows = [("copied", f"{t['copied']:,} of {t['planned_copies']:,} planned"),
            ("bytes copied", f"{format_bytes(t['bytes'])} of {format_bytes(t['planned_bytes'])}"),
            ("skipped", f"{t['skipped']:,}"), ("failed", f"{t['failed']:,}"), ("S3 retries", f"{t['retries']:,}")]
    if t.get("planned"):
        rows.append(("planned (dry run)", f"{t['planned']:,}"))
    body = "".join(f"<tr><th>{_e(k)}</th><td class=\"n\">{_e(v)}</td></tr>" for k, v in rows)
    return f"<h2>Totals</h2><table id=\"totals\">{body}</table>"


def _targets(p: RunPicture) -> str:
    rows = "".join(
        f"<tr class=\"target\"><td>{t['index']}</td><td><code>{_e(t['target'])}</code></td><td>{_e(t['rule'])}</td>"
        f"<td class=\"n\">{_count(t.get('planned_objects'))}</td>"
        f"<td class=\"n\">{format_bytes(t['planned_bytes']) if t.get('planned_bytes') is not None else '&ndash;'}"
        "</td></tr>" for t in p.targets)
    return ("<h2>Targets</h2><table id=\"targets\"><tr><th>#</th><th>target</th><th>rule</th>"
            f"<th>planned objects</th><th>planned bytes</th></tr>{rows}</table>")


def _timeline(p: RunPicture) -> str:
    width = LABEL + COLUMNS + 8
    height = len(p.lanes) * (LANE + GAP) + AXIS
    scale = COLUMNS / max(1, p.t1 - p.t0)
    markers = {w: list(ms) for w, ms in groupby(sorted(p.markers, key=lambda m: (m.worker, m.at)),
                                                 key=lambda m: m.worker)}
    lanes = []
    for i, lane in enumerate(p.lanes):
        y = i * (LANE + GAP)
        body = _segments(lane, p.t0, scale) if p.detailed else _bins(lane)
        lanes.append(
            f"<g class=\"lane\" data-worker=\"{lane.worker}\" transform=\"translate(0,{y})\">"
            f"<text x=\"0\" y=\"{LANE - 3}\">worker {lane.worker}</text>"
            f"<rect x=\"{LABEL}\" width=\"{COLUMNS}\" height=\"{LANE}\" fill=\"#f3f3f3\"/>"
            f"<g transform=\"translate({LABEL},0)\">{body}{_markers(markers.get(lane.worker, ()), p.t0, scale)}"
            "</g></g>")
    axis = _axis(p, len(p.lanes) * (LANE + GAP))
    legend = "".join(f"<span><i style=\"background:{c}\"></i>{_e(n)}</span>" for n, c in (
        ("done", OUTCOME_COLOURS["done"]), ("continued", OUTCOME_COLOURS["continued"]),
        ("retry", COLOURS[2]), ("failed / cut off", COLOURS[3]))) + (
        "<span>&#9650; retry</span><span>&#9670; timed out or cut off</span><span>&#10006; payload failed</span>")
    mode = ("one bar per payload invocation (hover for details)" if p.detailed else
            f"too many invocations to draw one by one: each of the {COLUMNS} columns shows how busy the worker "
            "was then, coloured by the worst outcome in it")
    more = (f"<p class=\"muted\">{p.markers_not_shown:,} more markers not drawn.</p>"
            if p.markers_not_shown else "")
    if p.unread:
        more += (f"<p class=\"more\" id=\"unread\">{p.unread:,} payloads are not drawn: the finalizer ran out of "
                 "time reading their checkpoints (sfncopy report ARN --html FILE draws them all).</p>")
    return (f"<h2>Timeline per worker</h2><p class=\"muted\">{_e(mode)}.</p><div class=\"legend\">{legend}</div>"
            f"<div class=\"lanes\"><svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" "
            f"height=\"{height}\" viewBox=\"0 0 {width} {height}\">{''.join(lanes)}{axis}</svg></div>{more}"
            + _lane_table(p.lanes))


def _segments(lane: Lane, t0: int, scale: float) -> str:
    out = []
    for s in lane.segments:
        x = (s.start - t0) * scale
        w = max(1.0, (s.end - s.start) * scale)
        colour = COLOURS[2] if s.retries and s.outcome in ("done", "continued") else OUTCOME_COLOURS.get(s.outcome,
                                                                                                         "#999")
        what = f"{s.count} invocations up to #{s.number}" if s.count > 1 else f"invocation {s.number}"
        title = (f"payload {s.payload}, {what}: {s.outcome}{' (a retry)' if s.retries else ''}, "
                 f"{_clock(s.start)}-{_clock(s.end)} UTC, {s.objects:,} objects, {format_bytes(s.bytes)}")
        out.append(f"<rect class=\"seg seg-{_e(s.outcome)}\" data-payload=\"{s.payload}\" x=\"{x:.1f}\" y=\"1\" "
                   f"width=\"{w:.1f}\" height=\"{LANE - 2}\" fill=\"{colour}\" stroke=\"#fff\" stroke-width=\"0.5\">"
                   f"<title>{_e(title)}</title></rect>")
    return "".join(out)


def _bins(lane: Lane) -> str:
    """Runs of equal (colour, shade) columns, one path per colour and shade."""
    paths: dict[tuple[int, int], list[str]] = {}
    column = 0
    cells = [(lane.worst[c], _level(lane.busy[c])) for c in range(COLUMNS)]
    for key, run in groupby(cells):
        n = len(list(run))
        if key[0] and key[1]:
            paths.setdefault(key, []).append(f"M{column} 1h{n}v{LANE - 2}h-{n}z")
        column += n
    return "".join(f"<path class=\"bin sev-{sev}\" fill=\"{COLOURS[sev]}\" fill-opacity=\"{level / LEVELS:.2f}\" "
                   f"d=\"{''.join(d)}\"/>" for (sev, level), d in sorted(paths.items()))


def _level(busy: float) -> int:
    return 0 if busy <= 0 else max(1, min(LEVELS, round(busy * LEVELS)))


def _markers(markers: Iterable[Marker], t0: int, scale: float) -> str:
    shapes = {"retry": ("M-4 {b}L0 {t}L4 {b}z", COLOURS[2]), "lost": ("M0 {t}L4 {m}L0 {b}L-4 {m}z", "#7b241c"),
              "failed": ("M-4 {t}L4 {b}M4 {t}L-4 {b}", "#c0392b")}
    out = []
    for m in markers:
        shape, colour = shapes[m.kind]
        d = shape.format(t=1, m=LANE // 2, b=LANE - 1)
        x = (m.at - t0) * scale
        stroke = f" stroke=\"{colour}\" stroke-width=\"2\" fill=\"none\"" if m.kind == "failed" else (
            f" fill=\"{colour}\" stroke=\"#fff\" stroke-width=\"0.5\"")
        out.append(f"<g class=\"marker marker-{m.kind}\" data-payload=\"{m.payload}\" "
                   f"transform=\"translate({x:.1f},0)\"><path d=\"{d}\"{stroke}/>"
                   f"<title>{_e(_clock(m.at) + ' UTC: ' + m.text)}</title></g>")
    return "".join(out)


def _axis(p: RunPicture, y: int) -> str:
    ticks = []
    for i in range(TICKS + 1):
        x = LABEL + COLUMNS * i / TICKS
        at = p.t0 + (p.t1 - p.t0) * i // TICKS
        anchor = "start" if i == 0 else "end" if i == TICKS else "middle"
        label = _clock(at, tenths=p.t1 - p.t0 < TICKS * 10_000)  # ticks under 10 s apart show tenths
        ticks.append(f"<line x1=\"{x:.1f}\" x2=\"{x:.1f}\" y1=\"{y}\" y2=\"{y + 4}\" stroke=\"#888\"/>"
                     f"<text x=\"{x:.1f}\" y=\"{y + 16}\" text-anchor=\"{anchor}\">{label}</text>")
    return f"<g class=\"axis\">{''.join(ticks)}</g>"


def _lane_table(lanes: Sequence[Lane]) -> str:
    rows = "".join(
        f"<tr class=\"worker\"><td>{lane.worker}</td><td class=\"n\">{lane.done:,} / {lane.payloads:,}</td>"
        f"<td class=\"n\">{lane.failed:,}</td><td class=\"n\">{lane.invocations:,}</td>"
        f"<td class=\"n\">{lane.retries:,}</td><td class=\"n\">{lane.lost:,}</td>"
        f"<td class=\"n\">{format_bytes(lane.bytes)}</td></tr>" for lane in lanes)
    return ("<table id=\"workers\"><tr><th>worker</th><th>payloads done</th><th>payloads failed</th>"
            "<th>invocations</th><th>retries</th><th>cut off</th><th>bytes</th></tr>" + rows + "</table>")


def _bytes_chart(p: RunPicture) -> str:
    series = p.bytes_per_column
    total = sum(series)
    peak = max(series, default=0)
    width, height = LABEL + COLUMNS + 8, CHART + AXIS
    seconds_per_column = (p.t1 - p.t0) / 1000 / COLUMNS
    bars = []
    cumulative, points = 0, []
    for column, nbytes in enumerate(series):
        if nbytes and peak:
            h = max(1.0, CHART * nbytes / peak)
            bars.append(f"M{LABEL + column} {CHART - h:.1f}h1v{h:.1f}h-1z")
        cumulative += nbytes
        if total:
            points.append(f"{LABEL + column + 1},{CHART - CHART * cumulative / total:.1f}")
    rate = peak / seconds_per_column if seconds_per_column > 0 else 0.0
    svg = (f"<svg id=\"bytes\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" "
           f"viewBox=\"0 0 {width} {height}\"><rect x=\"{LABEL}\" width=\"{COLUMNS}\" height=\"{CHART}\" "
           f"fill=\"#fafafa\"/><path fill=\"#8fb9d8\" d=\"{''.join(bars)}\"/>"
           f"<polyline fill=\"none\" stroke=\"#1f4e79\" stroke-width=\"1.5\" points=\"{' '.join(points)}\"/>"
           f"<text x=\"0\" y=\"12\">{format_bytes(rate)}/s</text><text x=\"0\" y=\"{CHART}\">0</text>"
           f"{_axis(p, CHART)}</svg>")
    return ("<h2>Bytes copied over time</h2><p class=\"muted\">bars: throughput per column (peak "
            f"{format_bytes(rate)}/s); line: share of the {format_bytes(total)} copied so far.</p>"
            f"<div class=\"lanes\">{svg}</div>")


def _skips(p: RunPicture) -> str:
    if not p.skipped_by_reason:
        return "<h2>Skipped</h2><p class=\"muted\">No object was skipped.</p>"
    rows = "".join(f"<tr class=\"skip\"><td>{_e(reason)}</td><td class=\"n\">{count:,}</td></tr>"
                   for reason, count in sorted(p.skipped_by_reason.items(), key=lambda kv: -kv[1]))
    return f"<h2>Skipped</h2><table id=\"skips\"><tr><th>reason</th><th>objects</th></tr>{rows}</table>"


def _failures(p: RunPicture) -> str:
    parts = ["<h2>Failures</h2>"]
    if p.failures:
        rows = "".join(f"<tr class=\"failure\"><td><code>{_e(f['source'])}</code></td><td><code>{_e(f['target'])}"
                       f"</code></td><td>{_e(f['error'])}</td><td>{_e(f['fix'])}</td></tr>" for f in p.failures)
        parts.append("<table id=\"failures\"><tr><th>source</th><th>target</th><th>error</th><th>fix</th></tr>"
                     f"{rows}</table>")
    else:
        parts.append("<p class=\"muted\">No object failed.</p>")
    if p.failures_not_listed:
        parts.append(f"<p class=\"more\">and {p.failures_not_listed:,} more failed objects (see the report's CSV).</p>")
    if p.failed_payloads:
        rows = "".join(f"<tr class=\"failed-payload\"><td>{f['payload']}</td><td>{f['worker']}</td>"
                       f"<td>{_clock(int(f['at']))}</td><td>{_e(f['failure'])}</td><td>{_e(f['fix'])}</td></tr>"
                       for f in p.failed_payloads)
        parts.append("<h3>Failed payloads</h3><table id=\"failed-payloads\"><tr><th>payload</th><th>worker</th>"
                     f"<th>at (UTC)</th><th>error</th><th>fix</th></tr>{rows}</table>")
    if p.failed_payloads_not_listed:
        parts.append(f"<p class=\"more\">and {p.failed_payloads_not_listed:,} more failed payloads.</p>")
    return "".join(parts)


def _cost(p: RunPicture) -> str:
    c, e = p.cost, p.cost.estimate or {}
    asked = e.get("requests")
    requests: dict[str, object] = asked if isinstance(asked, dict) else {}
    rows = [
        ("Lambda invocations (planner, workers, finalizer)", f"{c.lambda_invocations:,}",
         _count(e.get("lambda_invocations"))),
        ("worker GB-seconds", f"{c.gb_seconds:,.1f}", _number(e.get("lambda_gb_seconds"), "{:,.1f}")),
        ("S3 requests (copies, checkpoints)", f"{c.requests:,}", _count(requests.get("total"))),
        ("state transitions", f"{c.state_transitions:,}", _count(e.get("state_transitions"))),
        ("S3 dollars", f"${c.s3_dollars:,.4f}", _number(e.get("s3_dollars"), "${:,.4f}")),
        ("Step Functions dollars", f"${c.step_functions_dollars:,.4f}",
         _number(e.get("step_functions_dollars"), "${:,.4f}")),
        ("Lambda dollars", f"${c.lambda_dollars:,.4f}", _number(e.get("lambda_dollars"), "${:,.4f}")),
        ("total dollars", f"${c.dollars:,.4f}", _number(e.get("dollars"), "${:,.4f}")),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td class=\"n\">{_e(a)}</td><td class=\"n\">{b}</td></tr>"
                   for k, a, b in rows)
    note = f"<p class=\"muted\" id=\"estimate-note\">{_e(c.estimate_note)}</p>" if c.estimate_note else ""
    return ("<h2>Cost</h2><p class=\"muted\">This run, from what its workers recorded (list prices of us-east-1, "
            "as <code>sfncopy plan</code> uses), beside the plan's estimate.</p><table id=\"cost\"><tr><th></th>"
            f"<th>this run</th><th>plan estimate</th></tr>{body}</table>{note}")


# --- formatting --------------------------------------------------------------------------------------
def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "&ndash;"


def _number(value: object, fmt: str) -> str:
    return _e(fmt.format(value)) if isinstance(value, (int, float)) else "&ndash;"


def _clock(ms: int, tenths: bool = False) -> str:
    text = time.strftime("%H:%M:%S", time.gmtime(ms // 1000))
    return f"{text}.{ms % 1000 // 100}" if tenths else text




