"""The ctypes KVM_CHECK_EXTENSION probe used by the dq_kernel role and the agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import require

from dq_agent import kvmcap

KVM_CAP_USER_MEMORY = 3


def test_missing_device_is_reported_not_raised() -> None:
    got = kvmcap.probe("/nonexistent/kvm")
    assert not got.device_usable and not got.dirty_quota
    assert "/nonexistent/kvm" in got.reason


def test_a_device_that_is_not_kvm_is_reported() -> None:
    got = kvmcap.probe("/dev/null")
    assert not got.device_usable and not got.dirty_quota
    assert "KVM_GET_API_VERSION" in got.reason


def test_real_kvm_device_answers_check_extension() -> None:
    require(Path("/dev/kvm").exists(), "no /dev/kvm on this host")
    fd = os.open("/dev/kvm", os.O_RDWR)
    try:
        assert kvmcap.check_extension(fd, KVM_CAP_USER_MEMORY) == 1
        present = kvmcap.check_extension(fd, kvmcap.KVM_CAP_DIRTY_QUOTA_MIGRATION) == 1
    finally:
        os.close(fd)
    got = kvmcap.probe()
    assert got.device_usable and got.api_version == 12
    assert got.dirty_quota == present


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dq_agent.kvmcap", *args], capture_output=True, text=True
    )


def test_cli_json_and_exit_status() -> None:
    run = _cli("--device", "/nonexistent/kvm", "--json")
    assert run.returncode == 1
    assert json.loads(run.stdout)["dirty_quota"] is False


@pytest.mark.parametrize("args", [["--bogus"], ["--device"]])
def test_cli_bad_usage_is_one_line_exit_2(args: list[str]) -> None:
    run = _cli(*args)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
