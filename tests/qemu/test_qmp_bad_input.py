"""Bad QMP input to the patched QEMU: one clear error that names the argument, nothing
changes, and QEMU keeps running. No guest needed: a paused 2-vCPU machine (-S)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from qemu.qmp import ExecuteError, QMPClient
from tests.conftest import require
from tests.qemu.series import qemu_tree

pytestmark = pytest.mark.slow

CASES: list[tuple[dict[str, Any], str]] = [
    ({"budget-pages": 100, "interval-ms": -5}, "'interval-ms'"),
    ({"budget-pages": 100, "interval-ms": 0}, "'interval-ms'"),
    ({"budget-pages": 100, "interval-ms": 1001}, "'interval-ms'"),
    ({"budget-pages": -1}, "'budget-pages'"),
    ({"budget-pages": (1 << 40) + 1}, "'budget-pages'"),  # overflow
    ({"interval-ms": 10}, "'budget-pages'"),  # required unless auto-budget
    ({"budget-pages": 100, "deadline-ms": 99}, "'deadline-ms'"),
    ({"budget-pages": 100, "deadline-ms": 600001}, "'deadline-ms'"),
    ({"budget-pages": 100, "deadline-ms": 0}, "'deadline-ms'"),  # 0 only with auto-budget
    ({"budget-pages": 100, "weights": [1, 1, 1]}, "'weights'"),  # unknown vCPU 2
    ({"budget-pages": 100, "weights": [1]}, "'weights'"),
    ({"budget-pages": 100, "weights": [1, 0]}, "'weights'"),
    ({"budget-pages": 100, "weights": [1, 1001]}, "'weights'"),
    ({"budget-pages": 100, "burst-pages": -3}, "'burst-pages'"),
    ({"budget-pages": 100, "pool-cap-pages": -3}, "'pool-cap-pages'"),
    ({"budget-pages": "many"}, "budget-pages"),  # QAPI type check
    ({"budget-pages": 100, "cpu-index": 7}, "cpu-index"),  # no such argument
]


async def session(binary: Path) -> list[str]:
    rundir = Path(tempfile.mkdtemp(prefix="dq-qmp-bad-"))
    sock = rundir / "qmp.sock"
    proc = subprocess.Popen(
        [
            str(binary), "-S", "-accel", "tcg", "-machine", "pc", "-smp", "2", "-m", "64",
            "-nodefaults", "-no-user-config", "-display", "none", "-L", "/usr/share/qemu",
            "-qmp", f"unix:{sock},server=on,wait=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    qmp = QMPClient("bad-input")
    logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)  # refused connects while starting
    errors: list[str] = []
    try:
        for _ in range(100):
            try:
                await qmp.connect(str(sock))
                break
            except Exception:
                await asyncio.sleep(0.05)
        before = await qmp.execute("query-dirty-quota")
        assert before["available"] is True and before["accel"] == "tcg"
        for args, needle in CASES:
            with pytest.raises(ExecuteError) as ei:
                await qmp.execute("set-dirty-quota", args)
            desc = ei.value.error.error.desc
            assert needle in desc, f"{args}: error does not name the argument: {desc!r}"
            assert "\n" not in desc
            errors.append(desc)
        # valid arguments, but no migration: refused, nothing enabled
        with pytest.raises(ExecuteError) as ei:
            await qmp.execute("set-dirty-quota", {"budget-pages": 100, "weights": [1, 3]})
        assert "migration" in ei.value.error.error.desc
        errors.append(ei.value.error.error.desc)
        after = await qmp.execute("query-dirty-quota")
        assert after["enabled"] is False and after["intervals"] == before["intervals"]
        await qmp.execute("cancel-dirty-quota")  # harmless when off
        assert (await qmp.execute("query-status"))["status"] == "prelaunch"
        assert proc.poll() is None, "QEMU died on bad input"
        await qmp.execute("quit")
    finally:
        await qmp.disconnect()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sock.unlink(missing_ok=True)
        rundir.rmdir()
    return errors


def test_bad_qmp_input_is_rejected_and_qemu_keeps_running() -> None:
    tree = qemu_tree()
    require(tree is not None, "patched QEMU not built: run tools/build-qemu.sh")
    assert tree is not None
    errors = asyncio.run(session(tree / "bin" / "qemu-system-x86_64"))
    assert len(errors) == len(CASES) + 1
