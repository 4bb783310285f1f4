"""One local lab for every test in this package: brought up and provisioned once
(tools/lab.sh up + playbooks/site.yml), torn down after the package's last test with a
check that nothing it created is left behind.

The tests here run in file order (test_10 -> test_30): the idempotent re-run of site.yml
first, then a real dirty-quota migration and the dashboard queries over it, then the
agent's unit checks. Keeping them in one package keeps the lab's life to these minutes,
so no other test in the suite runs next to three idle containers.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.ansible.ansible_run import playbook
from tests.conftest import artifact, require
from tests.lab.labhosts import SITE, lab, leftovers


@pytest.fixture(scope="package")
def provisioned_lab() -> Iterator[subprocess.CompletedProcess[str]]:
    """The lab, up and provisioned by a first site.yml run (whose output is yielded)."""
    for tool in ("systemd-nspawn", "debootstrap", "apt-cacher-ng"):
        require(
            shutil.which(tool) is not None or Path(f"/usr/sbin/{tool}").exists(),
            f"{tool} not installed (tools/deps/apt-ansible.txt; run ./dqlab setup)",
        )
    require(
        artifact("appliance") is not None, "guest appliance not built (tools/build-appliance.sh)"
    )
    require(artifact("rootfs") is not None, "lab base image not built (tools/build-rootfs.sh)")
    require(artifact("qemu") is not None, "patched QEMU not built (tools/build-qemu.sh)")
    assert lab("down").returncode == 0
    up = lab("up")
    try:
        assert up.returncode == 0, up.stderr
        first = playbook(*SITE)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
        yield first
    finally:
        down = lab("down")
        assert down.returncode == 0, down.stderr
        assert leftovers() == []
