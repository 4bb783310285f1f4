"""Run one entry point on bad input and check the contract every entry point owes:

exit 2, ONE error line on stderr that names the field, no traceback, nothing left behind.
argparse's own usage line is tolerated before its error line (that is argparse's format).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 60


@dataclass(frozen=True)
class Outcome:
    rc: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip() and not _is_usage(ln)]


def _is_usage(line: str) -> bool:
    # argparse prints a usage block (possibly wrapped) before its one error line.
    return line.startswith("usage:") or line.startswith("   ")


def run_module(module: str, *args: str, cwd: Path | None = None) -> Outcome:
    """`python -m module args...` with the venv's interpreter, bounded in time."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=cwd,
        env=env,
    )
    return Outcome(p.returncode, p.stdout, p.stderr)


def run_main(module: str, *args: str, cwd: Path | None = None) -> Outcome:
    """Call `module.main()` in a fresh interpreter (for CLIs without a __main__)."""
    code = f"import sys; from {module} import main; sys.exit(main())"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=cwd,
        env=env,
    )
    return Outcome(p.returncode, p.stdout, p.stderr)


def run_cmd(argv: list[str], cwd: Path | None = None, timeout: float = TIMEOUT_S) -> Outcome:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return Outcome(p.returncode, p.stdout, p.stderr)


def assert_refused(out: Outcome, field: str, rc: int = 2) -> str:
    """The one-line refusal contract; returns the error line."""
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    assert out.rc == rc, f"exit {out.rc}, want {rc}; stderr={out.stderr!r}"
    lines = out.error_lines
    assert len(lines) == 1, f"want one error line, got {lines!r}"
    assert field in lines[0], f"{field!r} not named in {lines[0]!r}"
    return lines[0]


def snapshot(directory: Path) -> set[str]:
    """Everything under a directory, to prove a refused run wrote nothing."""
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}
