"""roles/dq_kernel: argument specs, syntax, and a real emulated-mode run on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.conftest import REPO, artifact, require

HERE = Path(__file__).resolve().parent
PLAY = HERE / "role_emulated.yml"
INVENTORY = HERE / "role_inventory.yml"


def _playbook(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ansible-playbook")
    require(exe is not None, "ansible-playbook not installed (tools/setup-venv.sh)")
    assert exe is not None
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": "/tmp/dq-kernel-ansible-local",
        "ANSIBLE_REMOTE_TEMP": "/tmp/dq-kernel-ansible-remote",
    }
    return subprocess.run(
        [exe, "-i", str(INVENTORY), str(PLAY), "-e", f"dq_kernel_repo_dir={REPO}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.mark.parametrize("mode", ["emulated", "install"])
def test_role_syntax(mode: str) -> None:
    run = _playbook("--syntax-check", "-e", f"dq_kernel_mode={mode}")
    assert run.returncode == 0, run.stdout + run.stderr


def test_bad_mode_is_rejected_by_argument_specs() -> None:
    run = _playbook("-e", "dq_kernel_mode=reboot-everything", timeout=120)
    assert run.returncode != 0
    assert "dq_kernel_mode" in run.stdout and "emulated, install" in run.stdout


@pytest.mark.slow
def test_emulated_mode_runs_the_selftest_and_says_so() -> None:
    require(artifact("kernel") is not None, "kernel not built: run tools/build-kernel.sh")
    run = _playbook()
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "dq_kernel verification: EMULATED HOST" in run.stdout
    assert "DQTEST summary pass=" in run.stdout and "fail=0" in run.stdout
    assert "REBOOTED" not in run.stdout
