"""roles/dq_qemu on this host (Debian 12, connection local): installs the built .deb with
apt, the verify phase gets an answer to query-dirty-quota from /opt/dq-qemu, a second run
changes nothing, and a missing .deb stops the role at preflight naming dq_qemu_deb."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.conftest import CACHE, REPO, artifact, require

pytestmark = pytest.mark.slow


def play(tmp: Path, deb: str) -> subprocess.CompletedProcess[str]:
    (tmp / "hosts.yml").write_text(
        "all:\n  hosts:\n    probe:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n"
    )
    (tmp / "play.yml").write_text(
        f"- hosts: all\n  gather_facts: true\n  roles:\n    - role: {REPO}/roles/dq_qemu\n"
    )
    venv = (CACHE / "venv").resolve()
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        PATH=f"{venv}/bin:{os.environ['PATH']}",
        ANSIBLE_NOCOLOR="1",
    )
    return subprocess.run(
        ["ansible-playbook", "-i", str(tmp / "hosts.yml"), str(tmp / "play.yml"),
         "-e", f"dq_qemu_deb={deb}"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def test_role_installs_verifies_and_is_idempotent(tmp_path: Path) -> None:
    deb = artifact("qemu")
    require(deb is not None, "patched QEMU not built: run tools/build-qemu.sh")
    first = play(tmp_path, str(deb))
    assert first.returncode == 0, first.stdout[-1500:]
    assert "The dirty-quota QMP commands answer" in first.stdout
    second = play(tmp_path, str(deb))
    assert second.returncode == 0, second.stdout[-1500:]
    assert " changed=0 " in second.stdout, second.stdout[-800:]
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "dq-qemu"], capture_output=True, text=True
    )
    assert out.stdout in str(deb)


def test_role_rejects_missing_deb(tmp_path: Path) -> None:
    r = play(tmp_path, "/nonexistent/dq-qemu_1_amd64.deb")
    assert r.returncode != 0
    assert "dq_qemu_deb: no dq-qemu .deb at '/nonexistent/dq-qemu_1_amd64.deb'" in r.stdout
