"""The scenario matrix: workloads x bandwidths x policies x repetitions, run one cell at a time.

A matrix file (JSON) names the cells and *how* to run one, as an argv template, so the same
job drives the local harness or the lab runner without a second code path:

    {"format": "dqlab-matrix/1",
     "workloads": ["skewed", "uniform"], "bandwidths": ["100mbit"],
     "policies": ["none", "auto-converge", "dirty-limit", "dirty-quota"], "reps": 3,
     "timeout_s": 600,
     "command": ["{python}", "-m", "dq_agent.nightly.harness_cell",
                 "{workload}", "{policy}", "{bandwidth}", "{out}"],
     "simulate_command": ["dq-sim", "...", "--json", "{out}"]}      (optional)

Placeholders: {workload} {bandwidth} {policy} {rep} {out}; {python} (this interpreter),
{matrix_dir} (the matrix file's directory), {workload_name} (the workload's file stem), e.g.
a dq-sim twin per workload: "{matrix_dir}/sim/{workload_name}-{bandwidth}.toml";
{inventory} (`dq-nightly run --inventory`, required by a matrix that uses it: the lab
matrix's runner cells, see matrices/lab.json). An unknown placeholder is refused on load.
A cell that exits non-zero or writes no result is reported and skipped; it never stops
the matrix (the verdict sees a missing run as missing data, not as a pass).
"""

from __future__ import annotations

import itertools
import json
import string
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dq_agent.nightly.history import InputError

FORMAT = "dqlab-matrix/1"
POLICIES = ("none", "auto-converge", "dirty-limit", "dirty-quota")
PLACEHOLDERS = (
    "python", "matrix_dir", "workload_name", "workload", "bandwidth", "policy", "rep", "out",
    "inventory",
)  # fmt: skip


@dataclass(frozen=True)
class Cell:
    workload: str
    bandwidth: str
    policy: str
    rep: int

    @property
    def slug(self) -> str:
        name = Path(self.workload).stem  # a workload may be a scenario file path
        return f"{name}_{self.bandwidth}_{self.policy}_r{self.rep}"


@dataclass(frozen=True)
class Matrix:
    workloads: tuple[str, ...]
    bandwidths: tuple[str, ...]
    policies: tuple[str, ...]
    reps: int
    command: tuple[str, ...]
    simulate_command: tuple[str, ...] | None
    timeout_s: float
    directory: Path = Path(".")

    @property
    def needs_inventory(self) -> bool:
        parts = (*self.command, *(self.simulate_command or ()))
        return any("inventory" in _fields(p) for p in parts)

    def cells(self) -> Iterator[Cell]:
        # Reps outermost: a night cut short still has every policy at least once.
        for rep, w, b, p in itertools.product(
            range(self.reps), self.workloads, self.bandwidths, self.policies
        ):
            yield Cell(w, b, p, rep)


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(where, key, "expected a non-empty list of strings")
    return tuple(value)


def _fields(part: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(part) if f is not None}


def _templates(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    """An argv template whose placeholders are all known (a typo fails the load, not
    every cell of the night)."""
    parts = _strings(raw, key, where)
    for part in parts:
        try:
            unknown = sorted(_fields(part) - set(PLACEHOLDERS))
        except ValueError as exc:
            raise InputError(where, key, f"bad template {part!r} ({exc})") from None
        if unknown:
            known = " ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            raise InputError(where, key, f"unknown placeholder {{{unknown[0]}}} (known: {known})")
    return parts


def load(path: Path) -> Matrix:
    where = str(path)
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(where, "<file>", exc.strerror or str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InputError(where, "<file>", f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if raw.get("format") != FORMAT:
        raise InputError(where, "format", f"expected {FORMAT!r}")
    policies = _strings(raw, "policies", where)
    for p in policies:
        if p not in POLICIES:
            raise InputError(where, "policies", f"unknown policy {p!r} (known: {POLICIES})")
    reps = raw.get("reps")
    if not isinstance(reps, int) or isinstance(reps, bool) or not 1 <= reps <= 100:
        raise InputError(where, "reps", "expected an integer 1..100")
    timeout = raw.get("timeout_s", 900)
    if not isinstance(timeout, int | float) or not 1 <= timeout <= 7200:
        raise InputError(where, "timeout_s", "expected seconds 1..7200")
    sim = raw.get("simulate_command")
    return Matrix(
        workloads=_strings(raw, "workloads", where),
        bandwidths=_strings(raw, "bandwidths", where),
        policies=policies,
        reps=reps,
        command=_templates(raw, "command", where),
        simulate_command=_templates(raw, "simulate_command", where) if sim is not None else None,
        timeout_s=float(timeout),
        directory=path.resolve().parent,
    )


def argv(
    template: tuple[str, ...],
    cell: Cell,
    out: Path,
    matrix_dir: Path,
    inventory: Path | None = None,
) -> list[str]:
    """One cell's command line (`dq-nightly run --dry-run` prints these)."""
    subst = {
        "inventory": str(inventory) if inventory is not None else "{inventory}",
        "python": sys.executable,
        "matrix_dir": str(matrix_dir),
        "workload_name": Path(cell.workload).stem,
        "workload": cell.workload,
        "bandwidth": cell.bandwidth,
        "policy": cell.policy,
        "rep": str(cell.rep),
        "out": str(out),
    }
    return [part.format(**subst) for part in template]


def run_cell(
    template: tuple[str, ...],
    cell: Cell,
    out: Path,
    timeout_s: float,
    matrix_dir: Path,
    inventory: Path | None = None,
) -> bool:
    """Run one cell; True when it wrote a result file. The cell's own output goes to
    <out>.log next to the result; progress (and a failed cell's last lines) to stderr."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = argv(template, cell, out, matrix_dir, inventory)
    log = out.with_suffix(".log")
    t0 = time.monotonic()
    print(f"nightly: {cell.slug}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    try:
        with log.open("wb") as sink:
            proc = subprocess.run(
                cmd, timeout=timeout_s, check=False, stdout=sink, stderr=subprocess.STDOUT
            )
    except subprocess.TimeoutExpired:
        print(
            f"nightly: {cell.slug}: timed out after {timeout_s:.0f}s (log {log})", file=sys.stderr
        )
        return False
    except OSError as exc:
        print(f"nightly: {cell.slug}: cannot run {cmd[0]}: {exc}", file=sys.stderr)
        return False
    ok = proc.returncode == 0 and out.exists()
    print(
        f"nightly: {cell.slug}: rc={proc.returncode} in {time.monotonic() - t0:.1f}s"
        + ("" if ok else f" (no result; log {log})"),
        file=sys.stderr,
        flush=True,
    )
    if not ok:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        for line in tail:
            print(f"nightly: {cell.slug}:   {line}", file=sys.stderr)
    return ok
