"""The kernel build is cached by input hash and its artifacts are complete."""

from __future__ import annotations

import json
import subprocess
import time

from tests.conftest import artifact, require
from tests.kernel.kernel_paths import BUILD_SCRIPT


def test_cached_build_exists_and_is_complete() -> None:
    out = artifact("kernel")
    require(out is not None, "kernel not built: run tools/build-kernel.sh")
    assert out is not None
    for name in ("bzImage", "initramfs.cpio.gz", "build.json", "headers/include/linux/kvm.h"):
        assert (out / name).is_file(), f"{out}: missing {name}"
    meta = json.loads((out / "build.json").read_text())
    assert meta["kernel"] == "6.12.117" and meta["patches"] == 6
    # The installed uAPI header is the patched one.
    assert "dirty_quota_exit" in (out / "headers/include/linux/kvm.h").read_text()


def test_second_build_is_a_cache_hit() -> None:
    out = artifact("kernel")
    require(out is not None, "kernel not built: run tools/build-kernel.sh")
    t0 = time.monotonic()
    run = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == str(out), "last stdout line is the artifact"
    assert "cached" in run.stderr
    assert elapsed < 30, f"cache hit took {elapsed:.1f}s"


def test_print_path_does_not_build() -> None:
    run = subprocess.run(
        [str(BUILD_SCRIPT), "--print-path"], capture_output=True, text=True, timeout=60
    )
    # Either the artifact exists (exit 0, one path) or it does not (exit 1, nothing printed).
    assert run.returncode in (0, 1)
    assert len(run.stdout.strip().splitlines()) == (1 if run.returncode == 0 else 0)
    assert run.stderr == ""


def test_bad_option_is_one_clear_error() -> None:
    run = subprocess.run([str(BUILD_SCRIPT), "--bogus"], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "usage" in run.stderr
