"""Run ansible-playbook from the repo the way the tools do (ANSIBLE_CONFIG, venv PATH)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("DQ_CACHE", "/var/cache/dqlab"))
VENV_BIN = Path(os.path.realpath(CACHE / "venv")) / "bin"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    e["PATH"] = f"{VENV_BIN}:{e.get('PATH', '')}"
    e["ANSIBLE_NOCOLOR"] = "1"
    (CACHE / "ansible" / "tmp").mkdir(parents=True, exist_ok=True)
    return e


def playbook(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    subprocess.run([str(REPO / "tools" / "fetch-collections.sh")], check=True, capture_output=True)
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), *args],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host: {'dq-src': {'ok': 3, 'changed': 0, ...}}."""
    hosts: dict[str, dict[str, int]] = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", output, re.M):
        hosts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return hosts
