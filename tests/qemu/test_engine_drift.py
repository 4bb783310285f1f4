"""Drift check: QEMU's C planner (as the series adds it) replays every engine vector.

The C file is extracted from patches/qemu/ and compiled unchanged (DQ_ENGINE_STANDALONE)
into qemu/dq-engine-replay.c; the pool is chained through the C results, so any
difference from the Python engine's expectations, in any interval, fails.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import REPO
from tests.qemu.series import build_replay

VECTORS = sorted((REPO / "dq_agent/src/dq_agent/engine/vectors").glob("*.json"))


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_replay(tmp_path_factory.mktemp("engine"))


def run_interval(
    exe: Path, iv: dict[str, Any], pool: int, params: dict[str, int]
) -> dict[str, Any]:
    n = len(iv["weights"])
    cap = iv.get("pool_cap_pages", params["pool_cap_pages"])
    burst = iv.get("burst_pages", params["burst_pages"])
    order = iv.get("order", list(range(n)))
    line = [n, iv["budget_pages"], pool, cap, burst, *iv["weights"], *iv["demands"], *order]
    out = subprocess.run(
        [str(exe)],
        input=" ".join(map(str, line)) + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shares, draws, grants, thr, after = (part.split() for part in out.split("|"))
    return {
        "shares": [int(x) for x in shares],
        "draws": [int(x) for x in draws],
        "grants": [int(x) for x in grants],
        "throttled": [x == "1" for x in thr],
        "pool_after": int(after[0]),
    }


def test_vectors_present() -> None:
    assert len(VECTORS) >= 5, "the engine's shared vectors are missing"


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_c_planner_matches_vectors(replay: Path, path: Path) -> None:
    doc = json.loads(path.read_text())
    assert doc["format"] == "dqlab-quota-vectors/1"
    pool = doc["initial_pool_pages"]
    for i, iv in enumerate(doc["intervals"]):
        got = run_interval(replay, iv, pool, doc["params"])
        assert got == iv["expect"], f"{path.name} interval {i}"
        pool = got["pool_after"]


def test_replay_rejects_bad_input(replay: Path) -> None:
    """A malformed line is one clear error, exit 2: the replay cannot pass vacuously."""
    r = subprocess.run(
        [str(replay)], input="2 10 0 40 10 1 0 5 5 0 1\n", capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "bad weight" in r.stderr
