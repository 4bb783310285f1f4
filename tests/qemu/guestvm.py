"""A patched-QEMU guest for the QMP tests: the appliance with dq-stress, under TCG, and a
migration to `exec:cat >/dev/null` (no network at all) held active by a low bandwidth cap.

The selectivity test uses the real harness (netns + tc link + destination QEMU); these
tests only need *some* active migration to exercise set/query/cancel and the fail-safes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dq_agent.harness.guest import Console, GuestState, wait_for
from dq_agent.harness.qemu import VM

# vCPU0 dirties 40 MB/s over 32 MiB; vCPU1 only computes (dq-stress phase syntax)
SKEWED = "dq.t0=dirty,rate=40,ws=32 dq.t1=compute dq.report_ms=250"


@contextlib.asynccontextmanager
async def guest(binary: Path, appliance: Path, append: str = SKEWED) -> AsyncIterator[VM]:
    rundir = Path(tempfile.mkdtemp(prefix="dq-qemu-test-", dir=os.environ.get("TMPDIR")))
    vm = VM(
        name="src",
        argv_prefix=[],
        binary=str(binary),
        rundir=rundir,
        accel="tcg",
        memory_mib=192,
        vcpus=2,
        kernel=str(appliance / "vmlinuz"),
        initrd=str(appliance / "initrd.gz"),
        append=f"console=ttyS0 quiet panic=-1 {append}",
        firmware_dir="/usr/share/qemu",
    )
    state = GuestState()
    console = Console("src", vm.serial_path, state)
    try:
        await vm.start()
        await console.connect()
        assert await wait_for(state, state.ready.is_set, 60), f"guest not ready: {list(state.raw)}"
        assert state.error_field is None, f"dq-stress rejected {state.error_field}"
        vm.guest_state = state  # type: ignore[attr-defined]
        yield vm
    finally:
        await console.close()
        await vm.stop()
        for f in rundir.iterdir():
            f.unlink()
        rundir.rmdir()


async def start_slow_migration(vm: VM, bytes_per_s: int = 2 << 20) -> None:
    """A migration that cannot converge (the guest dirties far more than the cap)."""
    await vm.cmd("migrate-set-parameters", **{"max-bandwidth": bytes_per_s})
    await vm.cmd("migrate", uri="exec:cat >/dev/null")
    await wait_status(vm, {"active"}, 10)


async def wait_status(vm: VM, want: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = (await vm.cmd("query-migrate")).get("status", "")
        if status in want:
            return str(status)
        await asyncio.sleep(0.1)
    raise AssertionError(f"migration status {status!r}, wanted {want}")


async def quota(vm: VM) -> dict[str, Any]:
    q: dict[str, Any] = await vm.cmd("query-dirty-quota")
    return q


async def wait_disabled(vm: VM, timeout: float) -> float:
    """Seconds until query-dirty-quota reports enabled=false (fails after timeout)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not (await quota(vm))["enabled"]:
            return time.monotonic() - t0
        await asyncio.sleep(0.05)
    raise AssertionError(f"dirty quota still enabled after {timeout}s")
