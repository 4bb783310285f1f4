"""Where the kernel series, the cached source tree and the build live."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import CACHE, REPO

SERIES_DIR = REPO / "patches" / "linux"
UAPI_EXCERPT = REPO / "patches" / "uapi" / "dirty_quota.h"
BUILD_SCRIPT = REPO / "tools" / "build-kernel.sh"
BOOT_SCRIPT = REPO / "kernel" / "boot-selftest.sh"
SRC = CACHE / "kernel" / "src"


def series() -> list[Path]:
    """The patch files in `series` order (comments and blank lines skipped)."""
    names = [
        line.split()[0]
        for line in (SERIES_DIR / "series").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return [SERIES_DIR / n for n in names]


def has_pristine_tree() -> bool:
    """True once tools/build-kernel.sh has unpacked the pinned source (git tag `pristine`)."""
    out = subprocess.run(
        ["git", "-C", str(SRC), "rev-parse", "-q", "--verify", "pristine"],
        capture_output=True,
        text=True,
    )
    return out.returncode == 0


DEFINE = re.compile(r"^\+?#define\s+(KVM_\w+)\s+(\d+)\b", re.MULTILINE)


def defines(text: str) -> dict[str, int]:
    """`#define KVM_X <number>` pairs, also from added lines of a patch."""
    return {name: int(value) for name, value in DEFINE.findall(text)}
