"""The nightly job end to end, through its real entry point (playbooks/nightly.yml --tags run):
real migrations on the local harness (2 policies x 1 bandwidth x 2 reps), history, a real
Pushgateway + Prometheus, the HTML report; then doctored histories around those real runs."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, artifact, require
from monitoring_stack import Stack, free_port, missing_binaries, stack

from dq_agent.nightly.history import append, load

pytestmark = pytest.mark.slow

SCENARIO = {  # the harness's "uniform" guest, made small so 4 runs fit in ~3 minutes
    "name": "nightly-small",
    "description": "two vCPUs dirtying 2 MB/s each over 16 MiB; converges at 100 Mbit/s",
    "memory_mib": 128,
    "link_mbit": 100,
    "baseline_s": 1,
    "timeout_s": 40,
    "vcpus": [
        {"phases": [{"kind": "dirty", "rate_mbps": 2, "ws_mib": 16, "pattern": "seq"}]},
        {"phases": [{"kind": "dirty", "rate_mbps": 2, "ws_mib": 16, "pattern": "rand"}]},
    ],
}
POLICIES = ["none", "auto-converge"]
SIM_TWIN = """name = "nightly-small"
description = "dq-sim twin of SCENARIO (the report's predicted column)"
ram = "128 MiB"
timeout_s = 40
[link]
rate = "100 Mbit/s"
[[vcpus]]
count = 2
rate = "2 MB/s"
write_share = 1.0
working_set = "16 MiB"
pattern = "sequential"
"""


def _nightly(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dq_agent.nightly", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    require(os.geteuid() == 0, "needs root for netns/tc")
    require(shutil.which("ansible-playbook") is not None, "ansible-playbook not on PATH")
    require(not missing_binaries(), f"missing {missing_binaries()}")
    require(artifact("appliance") is not None, "guest appliance not built")
    try:
        import dq_agent.harness.run  # noqa: F401
    except ImportError as exc:
        require(False, f"migration harness not importable: {exc}")
    tmp = tmp_path_factory.mktemp("nightly")
    (tmp / "small.json").write_text(json.dumps(SCENARIO))
    (tmp / "sim").mkdir()
    (tmp / "sim" / "small-100mbit.toml").write_text(SIM_TWIN)
    matrix = {
        "format": "dqlab-matrix/1",
        "workloads": [str(tmp / "small.json")],
        "bandwidths": ["100mbit"],
        "policies": POLICIES,
        "reps": 2,
        "timeout_s": 150,
        "command": [
            "{python}",
            "-m",
            "dq_agent.nightly.harness_cell",
            "{workload}",
            "{policy}",
            "{bandwidth}",
            "{out}",
        ],
        "simulate_command": [
            "{python}",
            "-m",
            "dq_agent.sim",
            "run",
            "{matrix_dir}/sim/{workload_name}-{bandwidth}.toml",
            "--policy",
            "{policy}",
            "--json",
            "{out}",
        ],
    }
    (tmp / "matrix.json").write_text(json.dumps(matrix))
    (tmp / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        "dq_builders": {
                            "hosts": {
                                "dq-controller": {
                                    "ansible_connection": "local",
                                    "ansible_python_interpreter": sys.executable,
                                }
                            }
                        }
                    }
                }
            }
        )
    )
    with stack(tmp / "mon", free_port()) as s:  # no agent here: its target is simply down
        extra = {
            "dq_nightly_python": sys.executable,
            "dq_nightly_matrix": str(tmp / "matrix.json"),
            "dq_nightly_dir": str(tmp / "out"),
            "dq_nightly_gateway": s.pushgateway,
        }
        (tmp / "extra.json").write_text(json.dumps(extra))
        env = dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp / "atmp"), ANSIBLE_NOCOLOR="1")
        out = subprocess.run(
            [
                "ansible-playbook",
                "-i",
                str(tmp / "hosts.yml"),
                str(REPO / "playbooks/nightly.yml"),
                "--tags",
                "run",
                "-e",
                f"@{tmp / 'extra.json'}",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
            cwd=REPO,
        )
        (tmp / "playbook.log").write_text(out.stdout + out.stderr)
        pushed = s.wait_for('dq_runs_total{scenario="nightly-small"}', timeout=15)
        yield {
            "rc": out.returncode,
            "log": out.stdout + out.stderr,
            "dir": tmp / "out",
            "pushed": pushed,
            "stack": s,
        }


def test_matrix_runs_records_history_and_passes(night: dict[str, object]) -> None:
    assert night["rc"] == 0, str(night["log"])[-4000:]
    out = night["dir"]
    assert isinstance(out, Path)
    recs = load(out / "history.jsonl")
    assert sorted((r.policy, r.kind) for r in recs) == sorted(
        [(p, "real") for p in POLICIES] * 2 + [(p, "simulated") for p in POLICIES]
    )
    for r in (r for r in recs if r.kind == "real"):
        env = r.environment
        assert env["git_commit"] and env["qemu_version"] and env["kernel_version"]
        assert env["host_facts"]["cpus"] >= 1 and env["host_facts"]["cpu_model"] is not None
        assert r.bandwidth == "100mbit" and r.scenario == "nightly-small"
        assert r.metrics["converged"] == 1.0 and r.metrics["total_time_s"] > 0
        assert (out / "history.jsonl").parent.joinpath(r.result_file).exists()
    assert "NEW-BASELINE" in str(night["log"])  # first night: nothing to compare against


def test_report_images_exist_and_link_raw_results(night: dict[str, object]) -> None:
    report = night["dir"] / "report"  # type: ignore[operator]
    html = (report / "index.html").read_text()
    imgs = sorted((report / "img").glob("*.png"))
    assert len(imgs) == 3
    for p in imgs:
        assert p.stat().st_size > 5000, p
    for r in load(night["dir"] / "history.jsonl"):  # type: ignore[operator]
        assert r.run_id in html or r.kind == "simulated"
    assert html.count('href="../results/') == 4
    assert "no simulation" not in html  # dq-sim twin filled the predicted column


def test_pushed_real_summaries_show_up_in_prometheus(night: dict[str, object]) -> None:
    pushed = night["pushed"]
    assert isinstance(pushed, list)
    assert {r["metric"]["policy"]: float(r["value"][1]) for r in pushed} == {
        "none": 2.0,
        "auto-converge": 2.0,
    }
    s = night["stack"]
    assert isinstance(s, Stack)
    tt = s.query('dq_run_last_total_time_seconds{scenario="nightly-small",policy="none"}')
    assert tt and float(tt[0]["value"][1]) > 0


def _doctored(hist: Path, factor_of_night: dict[str, float], noise: float, seed: int) -> str:
    """Earlier nights made from tonight's real records (scaled, jittered); returns tonight."""
    real = [r for r in load(hist) if r.kind == "real"]
    tonight = real[0].night
    rnd = random.Random(seed)
    fake = []
    for i, factor in factor_of_night.items():
        for r in real:
            m = {
                k: (v if k == "converged" else v * factor * (1 + rnd.gauss(0, noise)))
                for k, v in r.metrics.items()
            }
            fake.append(dataclasses.replace(r, night=i, metrics=m))
    out = hist.with_name(f"doctored-{seed}.jsonl")
    append(out, [*fake, *real])
    return tonight


def test_doctored_history_regression_fails_and_names_metric(night: dict[str, object]) -> None:
    hist = night["dir"] / "history.jsonl"  # type: ignore[operator]
    # earlier nights migrated twice as fast: tonight's real runs are a regression
    _doctored(hist, {f"2000-01-0{i}T02:00Z": 0.5 for i in range(1, 6)}, 0.03, seed=1)
    rc = _nightly("verdict", "--history", str(hist.with_name("doctored-1.jsonl")))
    assert rc.returncode == 1, rc.stderr
    assert "REGRESSION" in rc.stderr and "total_time_s" in rc.stderr


def test_doctored_noisy_healthy_history_passes(night: dict[str, object]) -> None:
    hist = night["dir"] / "history.jsonl"  # type: ignore[operator]
    _doctored(hist, {f"2000-01-0{i}T02:00Z": 1.0 for i in range(1, 6)}, 0.08, seed=2)
    rc = _nightly("verdict", "--history", str(hist.with_name("doctored-2.jsonl")))
    assert rc.returncode == 0, rc.stderr
