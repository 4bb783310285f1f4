"""The QEMU series applies cleanly to the pinned Debian source and stays in sync with
the shared uAPI excerpt. Fast: it applies to a scratch index, no checkout, no build."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.conftest import CACHE, REPO, require
from tests.qemu.series import SERIES_DIR, series

TREE = CACHE / "qemu" / "tree"
BUILD_SCRIPT = REPO / "tools" / "build-qemu.sh"


def pinned_version() -> str:
    m = re.search(r"^QEMU_SRC_VERSION=(\S+)$", BUILD_SCRIPT.read_text(), re.M)
    assert m, "tools/build-qemu.sh does not pin QEMU_SRC_VERSION"
    return m.group(1)


def test_series_lists_every_patch_once() -> None:
    listed = [p.name for p in series()]
    on_disk = sorted(p.name for p in SERIES_DIR.glob("*.patch"))
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)


def test_patches_are_format_patch_with_subsystem_subjects() -> None:
    for p in series():
        text = p.read_text()
        subject = re.search(r"^Subject: \[PATCH\] (.+)$", text, re.M)
        assert subject, f"{p.name}: not a git format-patch file"
        assert re.match(r"[a-z0-9/_-]+(/[a-z0-9_-]+)*: \S", subject.group(1)), (
            f"{p.name}: subject needs a subsystem prefix: {subject.group(1)!r}"
        )
        body = text.split("\n\n", 1)[1].split("\n---\n", 1)[0]
        assert len(body.split()) >= 40, f"{p.name}: the commit message must say why"


def test_series_applies_cleanly_to_pinned_source(tmp_path: Path) -> None:
    require(
        (TREE / ".git").is_dir(), f"pristine QEMU tree missing ({TREE}): run tools/build-qemu.sh"
    )
    version = (CACHE / "qemu" / "tree.version").read_text().strip()
    assert version == pinned_version(), "the cached tree is not the pinned source version"
    env = dict(os.environ, GIT_INDEX_FILE=str(tmp_path / "index"))
    git = ["git", "-C", str(TREE)]
    subprocess.run([*git, "read-tree", "pristine"], env=env, check=True)
    for p in series():
        r = subprocess.run(
            [*git, "apply", "--cached", "--whitespace=error-all", str(p)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, f"{p.name} does not apply cleanly: {r.stderr.strip()}"


def uapi_defines(text: str) -> dict[str, str]:
    return dict(re.findall(r"#define\s+(KVM_(?:CAP|EXIT)_DIRTY_QUOTA_\w+)\s+(\d+)", text))


def test_uapi_in_sync_with_shared_excerpt() -> None:
    shared = uapi_defines((REPO / "patches" / "uapi" / "dirty_quota.h").read_text())
    header_patch = next(p for p in series() if "linux-headers/linux/kvm.h" in p.read_text())
    added = "\n".join(
        ln[1:] for ln in header_patch.read_text().splitlines() if ln.startswith("+#define")
    )
    ours = uapi_defines(added)
    assert ours == {k: v for k, v in shared.items() if k in ours}
    assert set(ours) == {"KVM_CAP_DIRTY_QUOTA_MIGRATION", "KVM_EXIT_DIRTY_QUOTA_FULL"}
    fields = header_patch.read_text()
    for field in ("+\t__u64 dirty_quota;", "+\t__u64 dirty_count;", "+\t\t} dirty_quota_exit;"):
        assert field in fields, f"uAPI field missing from the header patch: {field.strip()}"
