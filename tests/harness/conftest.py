"""Harness test helpers: prerequisites for real QEMU guests, netns and tc."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import artifact, require

HOST_QEMU = "/usr/bin/qemu-system-x86_64"


def need_root_netns() -> None:
    require(os.geteuid() == 0, "harness tests need root (network namespaces, tc)")
    require(shutil.which("ip") is not None and shutil.which("tc") is not None, "iproute2")


def need_qemu10() -> None:
    from dq_agent.harness.qemu import qemu_version

    require(Path(HOST_QEMU).exists(), "host QEMU (tools/setup-host.sh)")
    require(qemu_version(HOST_QEMU) >= (10, 0, 0), "QEMU >= 10 (bookworm-backports)")


@pytest.fixture(scope="session")
def appliance() -> Path:
    need_root_netns()
    need_qemu10()
    app = artifact("appliance")
    require(app is not None, "appliance not built (tools/build-appliance.sh)")
    assert app is not None
    return app


@pytest.fixture(scope="session")
def qemu72() -> str:
    root = artifact("qemu72")
    require(root is not None, "QEMU 7.2 control not fetched (tools/build-qemu72.sh)")
    assert root is not None
    return str(root / "usr" / "bin" / "qemu-system-x86_64")


def leftover_netns(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.startswith(prefix)]
