"""The static HTML report: one self-contained page plus PNGs, links to the raw results."""

from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from dq_agent.nightly.history import HistoryRecord
from dq_agent.nightly.verdict import Verdict
from dq_agent.report import plots

POLICY_ORDER = ("none", "auto-converge", "dirty-limit", "dirty-quota")
TREND_METRICS = ("total_time_s", "downtime_ms", "throughput_retained", "converged")

CSS = """
body{font-family:sans-serif;margin:1.5em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}
th{background:#f3f3f3} td.l{text-align:left}
.regression{background:#f8d0d0;font-weight:bold}.improvement{background:#d4f0d4}
.new-baseline{background:#fff3c4} img{max-width:100%;border:1px solid #eee}
.bad{color:#b00;font-weight:bold}.good{color:#070}
"""


def _policy_key(p: str) -> tuple[int, str]:
    return (POLICY_ORDER.index(p) if p in POLICY_ORDER else len(POLICY_ORDER), p)


def resolve(history_path: Path, result_file: str) -> Path:
    p = Path(result_file)
    return p if p.is_absolute() else history_path.parent / p


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _median(recs: Sequence[HistoryRecord], metric: str) -> float | None:
    vals = [r.metrics[metric] for r in recs if metric in r.metrics]
    if not vals:
        return None
    return statistics.fmean(vals) if metric == "converged" else statistics.median(vals)


def build(
    history: Sequence[HistoryRecord],
    history_path: Path,
    night: str,
    verdicts: Sequence[Verdict],
    out_dir: Path,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    img = out_dir / "img"
    tonight = [r for r in history if r.night == night and r.kind == "real"]
    sims = [r for r in history if r.kind == "simulated"]
    parts: list[str] = []
    regress = [v for v in verdicts if v.status == "regression"]
    env = tonight[0].environment if tonight else {}
    parts.append(f"<h1>dqlab nightly report — {escape(night)}</h1>")
    parts.append(
        "<p>"
        + " · ".join(
            f"<b>{k}</b> {escape(str(env.get(k, '?')))}"
            for k in ("git_commit", "qemu_version", "kernel_version", "accel", "host")
        )
        + f" · <b>runs</b> {len(tonight)}</p>"
    )
    verdict_word = (
        f'<span class="bad">REGRESSION in {len(regress)} metric(s): '
        + escape(", ".join(f"{v.group} {v.metric}" for v in regress))
        + "</span>"
        if regress
        else '<span class="good">no regression</span>'
    )
    fresh = sum(1 for v in verdicts if v.status == "new-baseline")
    if fresh:  # say plainly that these metrics were not judged yet
        verdict_word += f" ({fresh} metric(s) start a new baseline, not judged)"
    parts.append(f"<h2>Verdict: {verdict_word}</h2>")
    parts.append(_verdict_table(verdicts))
    missing = [r for r in history if r.night == night and r.kind == "unavailable"]
    if missing:  # a policy that cannot work on this host/QEMU is reported, never judged
        items = sorted({(r.scenario, r.bandwidth, r.policy, r.note) for r in missing})
        parts.append(
            "<h3>Not run here (policy unavailable)</h3><ul>"
            + "".join(
                f"<li>{escape(sc)} @ {escape(bw)} <b>{escape(pol)}</b>: {escape(note)}</li>"
                for sc, bw, pol, note in items
            )
            + "</ul>"
        )

    groups: dict[tuple[str, str], list[HistoryRecord]] = defaultdict(list)
    for r in tonight:
        groups[(r.scenario, r.bandwidth)].append(r)
    for i, ((scenario, bw), recs) in enumerate(sorted(groups.items())):
        parts.append(f"<h2>Scenario {escape(scenario)} @ {escape(bw)}</h2>")
        by_pol: dict[str, list[HistoryRecord]] = defaultdict(list)
        for r in recs:
            by_pol[r.policy].append(r)
        pols = sorted(by_pol, key=_policy_key)
        side = plots.policies_side_by_side(
            {p: [r.metrics for r in by_pol[p]] for p in pols},
            f"{scenario} @ {bw}: policies side by side (bars = median, dots = reps)",
            img / f"s{i}-policies.png",
        )
        parts.append(f'<img src="{side.relative_to(out_dir)}" alt="policies side by side">')
        parts.append(_scenario_table(by_pol, pols, sims, scenario, bw, history_path, out_dir))

        runs: dict[str, dict[str, Any]] = {}
        for p in pols:
            path = resolve(history_path, by_pol[p][0].result_file)
            try:
                runs[p] = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue  # the table still links it; a missing file is shown as such
        if runs:
            ts = plots.migration_timeseries(
                runs, f"{scenario} @ {bw}: one migration per policy", img / f"s{i}-timeseries.png"
            )
            parts.append(f'<img src="{ts.relative_to(out_dir)}" alt="time series">')

        trend: dict[str, dict[str, list[tuple[str, float]]]] = {m: {} for m in TREND_METRICS}
        for p in pols:
            nights: dict[str, list[HistoryRecord]] = defaultdict(list)
            for r in history:
                if (r.scenario, r.bandwidth, r.policy, r.kind) == (scenario, bw, p, "real"):
                    nights[r.night].append(r)
            for m in TREND_METRICS:
                series = [(n, _median(nights[n], m)) for n in sorted(nights)]
                trend[m][p] = [(n, v) for n, v in series if v is not None]
        tr = plots.nightly_trends(
            trend, f"{scenario} @ {bw}: nightly medians", img / f"s{i}-trends.png"
        )
        parts.append(f'<h3>Nightly trends</h3><img src="{tr.relative_to(out_dir)}" alt=trends>')

    page = out_dir / "index.html"
    page.write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>dqlab nightly "
        f"{escape(night)}</title><style>{CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
    return page


def _verdict_table(verdicts: Sequence[Verdict]) -> str:
    rows = [
        "<table><tr><th>group</th><th>metric</th><th>status</th><th>tonight</th>"
        "<th>baseline</th><th>margin</th><th>nights</th><th>note</th></tr>"
    ]
    for v in verdicts:
        rows.append(
            f'<tr class="{v.status}"><td class=l>{escape(v.group)}</td><td class=l>{v.metric}</td>'
            f"<td class=l>{v.status}</td><td>{_fmt(v.tonight, 4)} {v.unit}</td>"
            f"<td>{_fmt(v.baseline, 4)}</td><td>{_fmt(v.margin, 3)}</td><td>{v.nights}</td>"
            f"<td class=l>{escape(v.reason)}</td></tr>"
        )
    return "".join(rows) + "</table>"


def _scenario_table(
    by_pol: dict[str, list[HistoryRecord]],
    pols: Sequence[str],
    sims: Sequence[HistoryRecord],
    scenario: str,
    bw: str,
    history_path: Path,
    out_dir: Path,
) -> str:
    rows = [
        "<table><tr><th>policy</th><th>reps</th><th>converged</th><th>total time s</th>"
        "<th>downtime ms</th><th>retained (mean / min vCPU)</th>"
        "<th>predicted (dq-sim): total s / downtime ms / converged</th><th>raw results</th></tr>"
    ]
    for p in pols:
        recs = by_pol[p]
        sim = [s for s in sims if (s.scenario, s.bandwidth, s.policy) == (scenario, bw, p)]
        predicted = (
            f"{_fmt(_median(sim, 'total_time_s'))} / {_fmt(_median(sim, 'downtime_ms'))} / "
            f"{_fmt(_median(sim, 'converged'), 2)}"
            if sim
            else "no simulation"
        )
        links = " ".join(
            f'<a href="{escape(os.path.relpath(resolve(history_path, r.result_file), out_dir))}">'
            f"{escape(r.run_id)}</a>"
            for r in recs
        )
        rows.append(
            f"<tr><td class=l>{escape(p)}</td><td>{len(recs)}</td>"
            f"<td>{_fmt(_median(recs, 'converged'), 2)}</td>"
            f"<td>{_fmt(_median(recs, 'total_time_s'))}</td>"
            f"<td>{_fmt(_median(recs, 'downtime_ms'))}</td>"
            f"<td>{_fmt(_median(recs, 'throughput_retained'), 2)} / "
            f"{_fmt(_median(recs, 'throughput_retained_min'), 2)}</td>"
            f"<td>{predicted}</td><td class=l>{links}</td></tr>"
        )
    return "".join(rows) + "</table>"
