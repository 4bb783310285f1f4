"""Helpers for the QEMU series tests: the series, the engine source it adds, the build."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import CACHE, REPO, artifact

SERIES_DIR = REPO / "patches" / "qemu"
ENGINE_FILES = ("migration/dirty-quota-engine.c", "include/migration/dirty-quota-engine.h")


def series() -> list[Path]:
    """The patch files in `series` order."""
    lines = (SERIES_DIR / "series").read_text().splitlines()
    names = [ln.split()[0] for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return [SERIES_DIR / n for n in names]


def extract_engine(dest: Path) -> Path:
    """Write the engine files exactly as the series adds them to QEMU into `dest`.
    They are new files, so `git apply --include` needs no QEMU tree."""
    for patch in series():
        if "migration/dirty-quota-engine.c" in patch.read_text():
            subprocess.run(
                ["git", "apply", *(f"--include={f}" for f in ENGINE_FILES), str(patch)],
                cwd=dest,
                check=True,
                capture_output=True,
            )
            return dest
    raise AssertionError("no patch in the series adds migration/dirty-quota-engine.c")


def build_replay(dest: Path) -> Path:
    """Compile qemu/dq-engine-replay.c against the series' engine source."""
    src = extract_engine(dest)
    exe = dest / "dq-engine-replay"
    cc = shutil.which("cc") or "gcc"
    subprocess.run(
        [
            cc,
            "-std=gnu11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-DDQ_ENGINE_STANDALONE",
            f"-I{src / 'include'}",
            "-o",
            str(exe),
            str(REPO / "qemu" / "dq-engine-replay.c"),
            str(src / "migration" / "dirty-quota-engine.c"),
        ],
        check=True,
    )
    return exe


def qemu_tree() -> Path | None:
    """The unpacked patched QEMU (<key>/opt/dq-qemu), if tools/build-qemu.sh has built it."""
    deb = artifact("qemu")
    if deb is None:
        return None
    out = subprocess.run(
        [str(REPO / "tools" / "build-qemu.sh"), "--print-path"], capture_output=True, text=True
    )
    if out.returncode != 0:
        return None
    tree = subprocess.run(
        [str(REPO / "tools" / "build-qemu.sh"), "--tree"], capture_output=True, text=True
    )
    path = Path(tree.stdout.strip().splitlines()[-1]) if tree.returncode == 0 else None
    return path if path and (path / "bin" / "qemu-system-x86_64").exists() else None


PRISTINE_TREE = CACHE / "qemu" / "tree"
