"""The patched QEMU with a real guest under TCG (appliance + dq-stress, vCPU0 dirtying
40 MB/s, vCPU1 compute-only) and a real migration held active by a bandwidth cap.

precision: from the QMP counters, each vCPU dirtied no more than it was granted (own share
  + pool draws) plus SLACK_PAGES per exhausted interval, no interval overshot by more than
  SLACK_PAGES, all vCPUs together no more than budget x intervals, and only the dirtying
  vCPU ran out.
fail-safe: throttling stops by itself when the deadline passes (and not before), and on
  cancel-dirty-quota, migrate_cancel and migration completion.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tests.conftest import artifact, require
from tests.qemu.guestvm import guest, quota, start_slow_migration, wait_disabled, wait_status
from tests.qemu.series import qemu_tree

pytestmark = pytest.mark.slow

# TCG charges a page in notdirty_write() and the vCPU sleeps when it next leaves its TB:
# it may dirty a few more pages in between (documented in docs/qemu.md).
SLACK_PAGES = 8
BUDGET = 50  # pages / 10 ms = 20 MB/s for the VM: vCPU0 wants 40 MB/s


def prerequisites() -> tuple[Path, Path]:
    tree = qemu_tree()
    require(tree is not None, "patched QEMU not built: run tools/build-qemu.sh")
    app = artifact("appliance")
    require(app is not None, "guest appliance not built: run tools/build-appliance.sh")
    assert tree is not None and app is not None
    return tree / "bin" / "qemu-system-x86_64", app


def test_precision_from_qmp_counters() -> None:
    binary, app = prerequisites()

    async def body() -> None:
        async with guest(binary, app) as vm:
            await start_slow_migration(vm)
            q0 = await quota(vm)
            await vm.cmd("set-dirty-quota", **{"budget-pages": BUDGET, "deadline-ms": 20000})
            await asyncio.sleep(4)
            q1 = await quota(vm)
            await vm.cmd("cancel-dirty-quota")
            await vm.cmd("migrate_cancel")

        assert q1["enabled"] and q1["accel"] == "tcg" and q1["budget-pages"] == BUDGET
        intervals = q1["intervals"] - q0["intervals"]
        assert intervals >= 100, f"only {intervals} intervals in 4 s"
        d = [
            {k: v1[k] - v0.get(k, 0) for k in v1 if isinstance(v1[k], int)}
            for v0, v1 in zip(q0["vcpus"], q1["vcpus"], strict=True)
        ]
        for i, (v, raw) in enumerate(zip(d, q1["vcpus"], strict=True)):
            assert v["dirty-pages"] <= v["granted-pages"] + SLACK_PAGES * v["exhausted-count"], (
                f"vCPU{i} {v}"
            )
            assert raw["max-overshoot-pages"] <= SLACK_PAGES, f"vCPU{i} {raw}"
            assert v["pool-drawn-pages"] <= v["granted-pages"]
        assert sum(v["granted-pages"] for v in d) <= BUDGET * (intervals + 1)
        hot, calm = d
        print(
            f"precision: {intervals} intervals, vCPU0 {hot}, vCPU1 {calm}, max overshoot "
            f"{[v['max-overshoot-pages'] for v in q1['vcpus']]}"
        )
        assert hot["exhausted-count"] > intervals // 4, f"vCPU0 was not throttled: {hot}"
        assert hot["sleep-ns"] > 0.2e9, f"vCPU0 barely slept: {hot}"
        assert hot["dirty-pages"] > 10 * BUDGET, "vCPU0 did not dirty: the test would be vacuous"
        assert calm["exhausted-count"] == 0 and calm["sleep-ns"] == 0, f"vCPU1 throttled: {calm}"

    asyncio.run(body())


def test_fail_safe_deadline_cancel_failure_completion() -> None:
    binary, app = prerequisites()

    async def body() -> None:
        async with guest(binary, app) as vm:
            await start_slow_migration(vm)

            # 1. deadline: stops by itself, not before the deadline, and vCPUs stop sleeping
            t0 = time.monotonic()
            await vm.cmd("set-dirty-quota", **{"budget-pages": BUDGET, "deadline-ms": 400})
            q = await quota(vm)
            assert q["enabled"] and 0 < q["deadline-remaining-ms"] <= 400
            await wait_disabled(vm, 3)
            assert time.monotonic() - t0 >= 0.38, "stopped before its deadline"
            s1 = (await quota(vm))["vcpus"][0]["sleep-ns"]
            assert s1 > 0, "vCPU0 was never throttled: the deadline test would be vacuous"
            await asyncio.sleep(0.5)
            assert (await quota(vm))["vcpus"][0]["sleep-ns"] == s1, (
                "still sleeping after the deadline"
            )

            # 2. renewal keeps it on past the first deadline
            for _ in range(8):
                await vm.cmd("set-dirty-quota", **{"budget-pages": BUDGET, "deadline-ms": 300})
                await asyncio.sleep(0.1)
            assert (await quota(vm))["enabled"], "renewed budget switched off"
            await wait_disabled(vm, 3)

            # 3. cancel-dirty-quota: off at once
            await vm.cmd("set-dirty-quota", **{"budget-pages": BUDGET, "deadline-ms": 60000})
            await asyncio.sleep(0.3)
            await vm.cmd("cancel-dirty-quota")
            assert not (await quota(vm))["enabled"]

            # 4. migration failure/cancel: off by itself
            await vm.cmd("set-dirty-quota", **{"budget-pages": BUDGET, "deadline-ms": 60000})
            await asyncio.sleep(0.3)
            await vm.cmd("migrate_cancel")
            await wait_status(vm, {"cancelled"}, 10)
            await wait_disabled(vm, 1)
            assert (await vm.cmd("query-status"))["status"] == "running"

            # 5. completion: auto-budget until the migration ends, then lift the cap
            await start_slow_migration(vm)
            await vm.cmd("set-dirty-quota", **{"auto-budget": True, "deadline-ms": 0})
            q = await quota(vm)
            assert q["enabled"] and q["auto-budget"] and q["deadline-remaining-ms"] == -1
            await asyncio.sleep(0.5)
            await vm.cmd("migrate-set-parameters", **{"max-bandwidth": 4 << 30})
            await wait_status(vm, {"completed"}, 60)
            await wait_disabled(vm, 1)

    asyncio.run(body())
