"""Shared pytest wiring: prerequisite handling and paths to cached artifacts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DQ_CACHE", "/var/cache/dqlab"))

# Test the checkout these tests belong to, never whichever checkout the shared venv's
# editable install last pointed at (several clones share one cached venv); subprocesses
# such as `python -m dq_agent...` inherit it through PYTHONPATH.
_SRC = str(REPO / "dq_agent" / "src")
if sys.path[0] != _SRC:
    sys.path.insert(0, _SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [
        _SRC,
        *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _SRC],
    ]
)


def require(condition: bool, why: str) -> None:
    """Skip locally when a prerequisite is missing; fail under CI (DQ_REQUIRE_ALL=1)."""
    if condition:
        return
    if os.environ.get("DQ_REQUIRE_ALL") == "1":
        pytest.fail(f"prerequisite missing: {why}")
    pytest.skip(why)


def artifact(script: str) -> Path | None:
    """Path of a cached build artifact (tools/build-*.sh --print-path), or None."""
    tool = REPO / "tools" / f"build-{script}.sh"
    if not tool.exists():
        return None
    out = subprocess.run([str(tool), "--print-path"], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return Path(out.stdout.strip().splitlines()[-1])
