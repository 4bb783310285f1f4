"""The lab matrix's plumbing without a lab: matrices/lab.json renders one runner command
per cell that the runner's own parser accepts, {inventory} is validated, and
playbooks/nightly.yml picks lab.json (with --inventory) for an inventory with lab hosts."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, require

from dq_agent.nightly import matrix as mx
from dq_agent.runner.cli import _parser

PY = sys.executable
LAB = REPO / "dq_agent/src/dq_agent/nightly/matrices/lab.json"
LOCAL = REPO / "dq_agent/src/dq_agent/nightly/matrices/local.json"
# the venv's, also when the venv is not on PATH
ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook") or str(Path(PY).parent / "ansible-playbook")


def nightly(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "dq_agent.nightly", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd,
    )  # fmt: skip


def test_lab_matrix_cells_are_runner_commands(tmp_path: Path) -> None:
    m = mx.load(LAB)
    assert m.needs_inventory and not mx.load(LOCAL).needs_inventory
    inv = tmp_path / "hosts.yml"
    inv.write_text("all: {}\n")
    p = nightly("run", "--matrix", str(LAB), "--results-dir", str(tmp_path / "r"),
                "--history", str(tmp_path / "h.jsonl"), "--inventory", str(inv),
                "--night", "2026-12-01T02:00Z", "--dry-run")  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    cells = list(m.cells())
    assert len(lines) == len(cells) == 2 * 1 * 3 * 3
    for line, cell in zip(lines, cells, strict=True):
        argv = shlex.split(line)
        assert argv[:4] == [PY, "-m", "dq_agent.runner", "run"]
        args = _parser().parse_args(argv[3:])  # the runner accepts it as it stands
        assert args.via == "libvirt" and args.inventory == inv.resolve()
        assert args.scenario == cell.workload and args.policies == cell.policy
        assert args.bandwidth == cell.bandwidth and args.qemu == "auto"
        assert args.result == tmp_path / "r" / "2026-12-01T0200Z" / f"{cell.slug}.json"
    assert not (tmp_path / "h.jsonl").exists() and not (tmp_path / "r").exists()  # dry


def test_inventory_placeholder_is_validated(tmp_path: Path) -> None:
    common = ["run", "--matrix", str(LAB), "--results-dir", str(tmp_path / "r"),
              "--history", str(tmp_path / "h.jsonl"), "--dry-run"]  # fmt: skip
    p = nightly(*common)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "command" in p.stderr and "--inventory" in p.stderr
    p = nightly(*common, "--inventory", str(tmp_path / "missing.yml"))
    assert p.returncode == 2 and "--inventory" in p.stderr and "no such file" in p.stderr
    bad = json.loads(LAB.read_text())
    bad["command"] = [*bad["command"], "{inventroy}"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(mx.InputError, match=r"command.*unknown placeholder \{inventroy\}"):
        mx.load(tmp_path / "bad.json")


def _playbook(tmp: Path, groups: dict[str, object], mode: str | None = None) -> str:
    """playbooks/nightly.yml --tags run with `echo` as the interpreter: the rendered
    nightly command line, nothing run."""
    builders = {"dq-controller": {"ansible_connection": "local",
                                  "ansible_python_interpreter": PY}}  # fmt: skip
    inv = {"all": {"children": {"dq_builders": {"hosts": builders}, **groups}}}
    (tmp / "hosts.yml").write_text(json.dumps(inv))
    extra = {"dq_nightly_python": "/bin/echo", "dq_nightly_dir": str(tmp / "out")}
    if mode:
        extra["dq_nightly_mode"] = mode
    (tmp / "extra.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp / "atmp"), ANSIBLE_NOCOLOR="1")
    out = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(tmp / "hosts.yml"), str(REPO / "playbooks/nightly.yml"),
         "--tags", "run", "-e", f"@{tmp / 'extra.json'}"],
        capture_output=True, text=True, timeout=180, env=env, cwd=REPO,
    )  # fmt: skip
    return out.stdout + out.stderr


def test_nightly_playbook_picks_the_lab_matrix_for_lab_inventories(tmp_path: Path) -> None:
    require(os.access(ANSIBLE_PLAYBOOK, os.X_OK), "ansible-playbook (venv)")
    lab_groups = {
        "dq_sources": {"hosts": {"s": {"ansible_host": "198.18.64.2"}}},
        "dq_destinations": {"hosts": {"d": {"ansible_host": "198.18.64.3"}}},
    }
    (tmp_path / "lab").mkdir()
    log = " ".join(_playbook(tmp_path / "lab", lab_groups).split())
    assert "matrices/lab.json" in log and f"--inventory {tmp_path}/lab/hosts.yml" in log, log
    (tmp_path / "local").mkdir()
    log = " ".join(_playbook(tmp_path / "local", {}).split())
    assert "matrices/local.json" in log and "--inventory" not in log, log
    (tmp_path / "bad").mkdir()
    log = _playbook(tmp_path / "bad", lab_groups, mode="lab-ish")
    assert "dq_nightly_mode: expected lab or harness" in log, log
