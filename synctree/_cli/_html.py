"""``synctree report RUNLOG --html out.html``: one run drawn as one self-contained page.

Inline CSS and an inline SVG timeline drawn here (no script, no font, no
network): the page opens the same from a mail attachment, a file share or a
browser with no connection.  It shows the counts per subbranch and outcome, the
failures grouped with their first examples, and a timeline of calls per second
with the throttles (429/Retry-After pauses) and retries across the run.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from typing import Any

from synctree._report import shorten

from ._log_view import run_dict
from ._runlog import Run

__all__ = ["render"]

_OUTCOMES = ("succeeded", "failed", "skipped", "not implemented", "planned")
_WIDTH, _HEIGHT, _PAD = 900, 220, 40
#: Bar widths of the timeline, in seconds.
_WIDTHS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
.meta { color: #555; margin-bottom: 1.5em; }
.cards { display: flex; gap: 1em; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 7em; }
.card .n { font-size: 1.6em; font-weight: 600; display: block; }
.succeeded .n { color: #1a7f37; } .failed .n { color: #cf222e; } .skipped .n { color: #9a6700; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #eee; padding: 0.3em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid #ccc; }
.failure { border-left: 4px solid #cf222e; padding: 0.3em 0.8em; margin: 0.6em 0;
           background: #fff8f8; }
.failure code { white-space: pre-wrap; word-break: break-word; }
.legend span { margin-right: 1.2em; }
.sw { display: inline-block; width: 0.9em; height: 0.9em; vertical-align: middle;
      margin-right: 0.3em; }
svg text { font: 11px system-ui, sans-serif; fill: #555; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render(run: Run) -> str:
    """The page for ``run`` (not yet masked: the caller masks the whole text)."""
    data = run_dict(run)
    totals = run.totals()
    exit_code = data["exit"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>synctree run {_e(run.run_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>synctree run <span id="run-id">{_e(run.run_id)}</span></h1>',
        '<div class="meta">',
        f"config <b>{_e(data['config'])}</b> · started {_e(data['started'])} · "
        f'<span id="duration">{data["duration"]:.2f}</span> s · '
        + (
            f'exit code <b id="exit-code">{_e(exit_code)}</b>'
            if exit_code is not None
            else "<b>did not finish</b> (no end line)"
        )
        + (" · dry run" if data["dry_run"] else "")
        + f" · synctree {_e(data['version'])}</div>",
    ]
    parts.append('<div class="cards">')
    parts.append(
        f'<div class="card total"><span class="n" id="total-actions">'
        f"{sum(totals.values())}</span>actions</div>"
    )
    for outcome in _OUTCOMES:
        if totals[outcome]:
            slug = outcome.replace(" ", "-")
            parts.append(
                f'<div class="card {slug}"><span class="n" id="total-{slug}">{totals[outcome]}'
                f"</span>{_e(outcome)}</div>"
            )
    if data["not_started"]:
        parts.append(
            f'<div class="card"><span class="n" id="not-started">{data["not_started"]}</span>'
            "not started</div>"
        )
    parts.append("</div>")
    if data["stopped"]:
        parts.append(f'<p class="failure"><b>stopped:</b> {_e(shorten(data["stopped"]))}</p>')
    if data["error"]:
        parts.append(f'<p class="failure"><b>error:</b> {_e(shorten(data["error"]))}</p>')
    parts += _counts_table(run)
    for name, notes in (data["notes"] or {}).items():
        for note in notes:
            parts.append(f'<p class="note" data-subbranch="{_e(name)}">note: {_e(note)}</p>')
    parts += _failures(data["failures"])
    parts.append("<h2>Timeline</h2>")
    parts.append(_timeline(run))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _counts_table(run: Run) -> list[str]:
    counts = run.counts()
    totals = run.totals()
    columns = [o for o in _OUTCOMES if totals[o]] + sorted(set(totals) - set(_OUTCOMES))
    out = ["<h2>Actions per subbranch</h2>", '<table id="counts"><tr><th>subbranch</th>']
    out += [f"<th>{_e(o)}</th>" for o in columns] + ["</tr>"]
    for name, counter in counts.items():
        cells = "".join(
            f'<td data-subbranch="{_e(name)}" data-outcome="{_e(o)}">{counter[o]}</td>'
            for o in columns
        )
        out.append(f"<tr><td>{_e(name)}</td>{cells}</tr>")
    cells = "".join(f"<td>{totals[o]}</td>" for o in columns)
    out.append(f'<tr class="total"><td>total</td>{cells}</tr></table>')
    return out


def _failures(groups: list[dict[str, Any]]) -> list[str]:
    if not groups:
        return []
    kinds = "kind" if len(groups) == 1 else "kinds"
    out = [f'<h2>Failures (<span id="failure-groups">{len(groups)}</span> {kinds})</h2>']
    for group in groups[:50]:
        ids = ", ".join(_e(i) for i in group["examples"])
        more = group["count"] - len(group["examples"])
        said = ""
        if group.get("response"):
            said = (
                f"<br>the server said ({_e(group['status'])}): "
                f"<code>{_e(shorten(str(group['response']), 600))}</code>"
            )
        out.append(
            f'<div class="failure"><b>{group["count"]} × {_e(group["message"])}</b> '
            f"(first: {ids}{f', … {more} more' if more > 0 else ''})<br>"
            f"<code>{_e(shorten(str(group['error']), 600))}</code>{said}</div>"
        )
    if len(groups) > 50:
        out.append(f"<p>… {len(groups) - 50} more kinds of failure</p>")
    return out


def _timeline(run: Run) -> str:
    """An SVG: bars of calls per second, throttle pauses as shaded spans, retries as ticks."""
    calls = [float(t) for line in run.actions for t in (line.get("calls") or [])]
    retries = [float(line.get("t") or 0) for line in run.retries]
    throttles = [(float(line.get("t") or 0), float(line.get("delay") or 0)) for line in
                 run.throttles]  # fmt: skip
    end = max([run.duration, *calls, *retries, *(t + d for t, d in throttles), 0.01])
    # the smallest round bar width giving at most 120 bars
    seconds = next((w for w in _WIDTHS if end / w <= 120), math.ceil(end / 120))
    bins = Counter(int(t // seconds) for t in calls)
    count = max(1, math.ceil(end / seconds))
    rate = {b: n / seconds for b, n in bins.items()}
    peak = max(rate.values(), default=0.0) or 1.0
    inner_w, inner_h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD

    def x(t: float) -> float:
        return _PAD + inner_w * t / (count * seconds)

    def y(value: float) -> float:
        return _PAD + inner_h * (1 - value / peak)

    bar = inner_w / count
    out = [
        f'<svg id="timeline" width="{_WIDTH}" '
        f'height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="calls per second across the run">',
        f'<rect x="{_PAD}" y="{_PAD}" width="{inner_w}" height="{inner_h}" fill="#fafafa" '
        'stroke="#ddd"/>',
    ]
    for t, delay in throttles:
        width = max(1.0, x(t + delay) - x(t))
        out.append(
            f'<rect class="throttle" x="{x(t):.1f}" y="{_PAD}" width="{width:.1f}" '
            f'height="{inner_h}" fill="#cf222e" fill-opacity="0.15"><title>throttled '
            f"{delay:.1f}s at {t:.1f}s</title></rect>"
        )
    for b in sorted(rate):
        value = rate[b]
        out.append(
            f'<rect class="calls" x="{x(b * seconds) + 0.5:.1f}" y="{y(value):.1f}" '
            f'width="{max(1.0, bar - 1):.1f}" height="{_PAD + inner_h - y(value):.1f}" '
            f'fill="#0969da"><title>{value:g} calls/s at {b * seconds:g}s</title></rect>'
        )
    for t in retries:
        out.append(
            f'<line class="retry" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{_PAD + inner_h}" '
            f'y2="{_PAD + inner_h + 8}" stroke="#bf8700" stroke-width="2"/>'
        )
    out.append(f'<text x="{_PAD - 4}" y="{_PAD + 4}" text-anchor="end">{peak:g}</text>')
    out.append(f'<text x="{_PAD - 4}" y="{_PAD + inner_h}" text-anchor="end">0</text>')
    out.append(
        f'<text x="{_PAD}" y="{_HEIGHT - 8}">0 s</text>'
        f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT - 8}" text-anchor="end">'
        f"{count * seconds:g} s</text>"
    )
    out.append(
        f'<text x="{_PAD}" y="{_PAD - 10}">calls per second'
        f" (bars of {seconds:g} s); peak {peak:g}</text>"
    )
    out.append("</svg>")
    out.append(
        '<p class="legend"><span><i class="sw" style="background:#0969da"></i>calls '
        f'(<b id="calls">{len(calls)}</b>)</span>'
        '<span><i class="sw" style="background:#f5c6c6"></i>throttle pauses '
        f'(<b id="throttles">{len(throttles)}</b>)</span>'
        '<span><i class="sw" style="background:#bf8700"></i>retries '
        f'(<b id="retries">{len(retries)}</b>)</span></p>'
    )
    return "\n".join(out)
