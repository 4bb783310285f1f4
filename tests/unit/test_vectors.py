"""The committed vector files are the generator's output and replay through the engine."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

from dq_agent.engine.vectors import CASES, FORMAT, VECTOR_DIR, expected_files, replay

from .reference import reference_plan


def test_committed_files_equal_generator_output() -> None:
    wanted = expected_files()
    on_disk = {p.name: p.read_text() for p in VECTOR_DIR.glob("*.json")}
    assert on_disk == wanted


def test_check_cli_passes_on_committed_files() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dq_agent.engine.vectors", "--check"], capture_output=True
    )
    assert out.returncode == 0, out.stderr


def test_at_least_the_required_coverage() -> None:
    names = {c.name for c in CASES}
    assert len(names) >= 6
    for needed in (
        "equal-split",
        "pool-accumulation-cap",
        "burst-limit",
        "fcfs-order",
        "idle-vcpu",
        "zero-budget",
        "weights-remainders",
    ):
        assert needed in names


def test_every_file_replays_through_engine_and_reference() -> None:
    for path in sorted(VECTOR_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc["format"] == FORMAT
        assert replay(doc) == [], path.name
        pool = doc["initial_pool_pages"]
        for iv in doc["intervals"]:
            want = reference_plan(
                iv["budget_pages"],
                iv["weights"],
                iv["demands"],
                iv["order"],
                pool,
                iv.get("pool_cap_pages", doc["params"]["pool_cap_pages"]),
                iv.get("burst_pages", doc["params"]["burst_pages"]),
            )
            assert want == iv["expect"], path.name
            pool = iv["expect"]["pool_after"]


def test_replay_detects_a_tampered_expectation() -> None:
    doc = json.loads((VECTOR_DIR / "skewed-two-vcpu.json").read_text())
    bad = copy.deepcopy(doc)
    bad["intervals"][1]["expect"]["grants"][0] += 1
    problems = replay(bad)
    assert len(problems) == 1 and "grants" in problems[0]


def test_vectors_exercise_draws_throttles_caps_and_overrides() -> None:
    seen = {"draw": False, "throttle": False, "cap": False, "override": False}
    for path in VECTOR_DIR.glob("*.json"):
        doc = json.loads(path.read_text())
        for iv in doc["intervals"]:
            e = iv["expect"]
            seen["draw"] |= any(d > 0 for d in e["draws"])
            seen["throttle"] |= any(e["throttled"])
            cap = iv.get("pool_cap_pages", doc["params"]["pool_cap_pages"])
            seen["cap"] |= e["pool_after"] == cap and cap > 0
            seen["override"] |= "burst_pages" in iv or "pool_cap_pages" in iv
    assert all(seen.values()), seen
