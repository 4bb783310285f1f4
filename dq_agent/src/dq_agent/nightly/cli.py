"""`python -m dq_agent.nightly`: run the matrix, record history, push, report, judge.

Exit codes: 0 healthy, 1 a real regression (each one named on stderr), 2 bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dq_agent.nightly import history as hist
from dq_agent.nightly import matrix as mx
from dq_agent.nightly import verdict as vd


def _now_night() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def _rel(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:
        return str(path.resolve())


def _load_result(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise hist.InputError(str(path), "<file>", exc.strerror or str(exc)) from None
    except json.JSONDecodeError as exc:
        raise hist.InputError(str(path), "<file>", f"not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise hist.InputError(str(path), "<file>", "expected a JSON object")
    return data


def record_results(
    paths: Sequence[Path], history_path: Path, night: str
) -> list[hist.HistoryRecord]:
    """Validate every file first, then append: bad input leaves no partial history."""
    facts = hist.host_facts()
    base = history_path.parent
    recs = [hist.record_from_result(_load_result(p), _rel(p, base), night, facts) for p in paths]
    hist.append(history_path, recs)
    return recs


def _vcpu_retained(history_path: Path, rec: hist.HistoryRecord) -> list[float]:
    from dq_agent.report.html import resolve

    try:
        data = json.loads(resolve(history_path, rec.result_file).read_text())
        return [float(v["throughput_retained"]) for v in data["summary"]["vcpus"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def push(gateway: str, history_path: Path, recs: Sequence[hist.HistoryRecord]) -> int:
    from dq_agent.nightly.push import push_run

    all_recs = hist.load(history_path)
    failures = 0
    for rec in recs:
        if rec.kind != "real":
            continue
        try:
            push_run(gateway, rec, _vcpu_retained(history_path, rec), all_recs, time.time())
        except OSError as exc:  # a down Pushgateway must not lose the night's results
            failures += 1
            print(f"nightly: push to {gateway} failed: {exc}", file=sys.stderr)
    return failures


def judge_and_report(args: argparse.Namespace, night: str) -> int:
    records = hist.load(args.history)
    verdicts = vd.judge(records, night, window=args.window, min_nights=args.min_nights, k=args.k)
    if args.report_dir:
        from dq_agent.report.html import build

        page = build(records, args.history, night, verdicts, args.report_dir)
        print(f"report: {page}")
    bad = vd.regressions(verdicts)
    for v in verdicts:
        if v.status in ("regression", "new-baseline"):
            print(v.line(), file=sys.stderr)
    if bad:
        names = ", ".join(f"{v.group} {v.metric}" for v in bad)
        print(f"nightly: REGRESSION: {names}", file=sys.stderr)
        return 1
    print(f"nightly: no regression ({len(verdicts)} verdicts)", file=sys.stderr)
    return 0


def _inventory(args: argparse.Namespace, m: mx.Matrix) -> Path | None:
    """--inventory, checked before the first cell: a lab matrix's cells need it."""
    inv: Path | None = args.inventory
    if inv is None:
        if m.needs_inventory:
            raise hist.InputError(str(args.matrix), "command", "uses {inventory}: give --inventory")
        return None
    if not inv.is_file():
        raise hist.InputError(str(inv), "--inventory", "no such file")
    return inv.resolve()


def cmd_run(args: argparse.Namespace) -> int:
    m = mx.load(args.matrix)
    inventory = _inventory(args, m)
    night = args.night or _now_night()
    night_dir = args.results_dir / night.replace(":", "")
    if args.dry_run:  # the cells' command lines, nothing run or recorded
        for cell in m.cells():
            out = night_dir / f"{cell.slug}.json"
            print(shlex.join(mx.argv(m.command, cell, out, m.directory, inventory)))
        return 0
    done: list[Path] = []
    for cell in m.cells():
        out = night_dir / f"{cell.slug}.json"
        if mx.run_cell(m.command, cell, out, m.timeout_s, m.directory, inventory):
            recs = record_results([out], args.history, night)
            done.append(out)
            if args.gateway:
                push(args.gateway, args.history, recs)
    if m.simulate_command:
        seen = {(c.workload, c.bandwidth, c.policy) for c in m.cells()}
        for w, b, p in sorted(seen):
            cell = mx.Cell(w, b, p, 0)
            out = night_dir / "sim" / f"{cell.slug}.json"
            if mx.run_cell(m.simulate_command, cell, out, m.timeout_s, m.directory, inventory):
                record_results([out], args.history, night)
    total = sum(1 for _ in m.cells())
    print(f"nightly: {len(done)}/{total} runs recorded in {args.history}", file=sys.stderr)
    rc = judge_and_report(args, night)
    if not done:
        print("nightly: no run produced a result", file=sys.stderr)
        return max(rc, 1)
    return rc


def cmd_record(args: argparse.Namespace) -> int:
    recs = record_results(args.results, args.history, args.night or _now_night())
    print(f"recorded {len(recs)} runs in {args.history}", file=sys.stderr)
    if args.gateway:
        push(args.gateway, args.history, recs)
    return 0


def cmd_verdict(args: argparse.Namespace) -> int:
    night = args.night or _latest_night(args.history)
    return judge_and_report(args, night)


def cmd_push(args: argparse.Namespace) -> int:
    night = args.night or _latest_night(args.history)
    recs = [r for r in hist.load(args.history) if r.night == night]
    return 1 if push(args.gateway, args.history, recs) else 0


def _latest_night(history_path: Path) -> str:
    nights = sorted({r.night for r in hist.load(history_path)})
    if not nights:
        raise hist.InputError(str(history_path), "night", "history is empty")
    return nights[-1]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dq-nightly", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--history", type=Path, required=True, help="JSONL history file")
        p.add_argument("--night", help="night id (default: now, UTC, or the latest recorded)")

    def judging(p: argparse.ArgumentParser) -> None:
        p.add_argument("--report-dir", type=Path, help="write the HTML report here")
        p.add_argument("--window", type=int, default=7, help="K nights in the baseline")
        p.add_argument("--min-nights", type=int, default=3, help="nights before judging")
        p.add_argument("--k", type=float, default=3.0, help="noise margin in robust sigmas")

    p = sub.add_parser("run", help="run the matrix, then record, push, report, judge")
    common(p)
    judging(p)
    p.add_argument("--matrix", type=Path, required=True)
    p.add_argument("--results-dir", type=Path, required=True)
    p.add_argument("--gateway", help="Pushgateway host:port")
    p.add_argument("--inventory", type=Path, help="Ansible inventory file for {inventory}")
    p.add_argument("--dry-run", action="store_true", help="print each cell's command; run none")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("record", help="append run-result files to the history")
    common(p)
    p.add_argument("results", type=Path, nargs="+")
    p.add_argument("--gateway", help="Pushgateway host:port")
    p.set_defaults(fn=cmd_record)

    p = sub.add_parser("verdict", help="judge a night (and optionally write the report)")
    common(p)
    judging(p)
    p.set_defaults(fn=cmd_verdict)

    p = sub.add_parser("push", help="push a night's summaries to the Pushgateway")
    common(p)
    p.add_argument("--gateway", required=True, help="Pushgateway host:port")
    p.set_defaults(fn=cmd_push)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for name in ("window", "min_nights"):
        if getattr(args, name, 1) < 1:
            print(f"dq-nightly: --{name.replace('_', '-')}: must be >= 1", file=sys.stderr)
            return 2
    try:
        rc: int = args.fn(args)
    except hist.InputError as exc:
        print(f"dq-nightly: {exc}", file=sys.stderr)
        return 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
