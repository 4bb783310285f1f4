"""Runner test fixtures: two sshd "lab hosts" in their own namespaces, torn down always."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from conftest import require

from runner.lab_hosts import SSHD, LabHosts


@pytest.fixture(scope="module")
def lab() -> Iterator[LabHosts]:
    require(os.geteuid() == 0, "runner tests need root (network namespaces, sshd)")
    require(os.path.exists(SSHD), "openssh-server (tools/deps/apt-runner.txt)")
    require(shutil.which("ssh-keygen") is not None, "ssh-keygen (openssh-client)")
    hosts = LabHosts().up()
    try:
        yield hosts
    finally:
        hosts.close()
