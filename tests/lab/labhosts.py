"""The local lab's hosts, commands and footprint, for tests/lab."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.ansible.ansible_run import CACHE, REPO

LAB = REPO / "tools" / "lab.sh"
HOSTS = ("dq-src", "dq-dst", "dq-mon")
INVENTORY = ("-i", "inventory/local")
# The kernel role is left out: its emulated-host boot is tests/kernel/test_role.py's job,
# and its build (tens of minutes cold) is not this package's to wait for.
SITE = (*INVENTORY, "playbooks/site.yml", "-e", "dq_site_kernel=false")
ADDRESS = {"dq-src": "198.18.0.10", "dq-dst": "198.18.0.20", "dq-mon": "198.18.0.30"}


def lab(cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LAB), cmd], capture_output=True, text=True, timeout=900)


def ssh(host: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A command on a lab host, with the lab's key and pinned host keys."""
    d = CACHE / "lab"
    return subprocess.run(
        [
            "ssh",
            "-q",
            "-i",
            str(d / "id_ed25519"),
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=3",
            "-o",
            f"UserKnownHostsFile={d / 'known_hosts'}",
            "-o",
            "StrictHostKeyChecking=yes",
            f"root@{ADDRESS[host]}",
            *cmd,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def leftovers() -> list[str]:
    """Everything the lab creates, if any of it still exists."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [
        f"netns {h}" for h in HOSTS if any(ln.split()[0] == h for ln in netns.splitlines() if ln)
    ]
    if subprocess.run(["ip", "link", "show", "dqbr0"], capture_output=True).returncode == 0:
        found.append("bridge dqbr0")
    for h in HOSTS:
        if subprocess.run(["ip", "link", "show", f"v-{h}"], capture_output=True).returncode == 0:
            found.append(f"veth v-{h}")
    procs = subprocess.run(["pgrep", "-a", "systemd-nspawn"], capture_output=True, text=True).stdout
    found += [f"nspawn {ln}" for ln in procs.splitlines() if "/run/netns/dq-" in ln]
    mounts = Path("/proc/mounts").read_text()
    found += [
        f"mount {ln.split()[1]}"
        for ln in mounts.splitlines()
        if "/run/systemd/nspawn" in ln or str(CACHE / "lab") in ln
    ]
    found += [f"machine {h}" for h in HOSTS if (CACHE / "lab" / "machines" / h).exists()]
    if (REPO / "inventory" / "local" / "hosts.yml").exists():
        found.append("inventory/local/hosts.yml")
    return found
