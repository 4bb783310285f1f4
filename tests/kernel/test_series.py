"""The KVM dirty-quota series: shape, uAPI agreement, applies to the pin, checkpatch."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

import pytest
from tests.conftest import require
from tests.kernel.kernel_paths import (
    SERIES_DIR,
    SRC,
    UAPI_EXCERPT,
    defines,
    has_pristine_tree,
    series,
)

SUBJECT = re.compile(r"^Subject: \[PATCH (\d+)/(\d+)\] (KVM: .+)$", re.MULTILINE)


def test_series_lists_every_patch_once_in_order() -> None:
    listed = [p.name for p in series()]
    on_disk = sorted(p.name for p in SERIES_DIR.glob("*.patch"))
    assert listed == on_disk, "series file and patches/linux/*.patch disagree"
    assert len(listed) == 6


def test_patches_have_kvm_subjects_bodies_and_signoffs() -> None:
    for i, patch in enumerate(series(), start=1):
        text = patch.read_text()
        m = SUBJECT.search(text)
        assert m, f"{patch.name}: no 'Subject: [PATCH n/6] KVM: ...' line"
        assert (int(m.group(1)), int(m.group(2))) == (i, 6), patch.name
        body = text.split("\n\n", 1)[1].split("\n---\n", 1)[0]
        assert len(body.split()) >= 40, f"{patch.name}: commit message body should say why"
        assert "Signed-off-by: " in body, f"{patch.name}: no Signed-off-by"


def test_series_documents_the_uapi_in_api_rst() -> None:
    docs = "".join(
        p.read_text() for p in series() if "Documentation/virt/kvm/api.rst" in p.read_text()
    )
    for term in (
        "KVM_CAP_DIRTY_QUOTA_MIGRATION",
        "KVM_EXIT_DIRTY_QUOTA_FULL",
        "dirty_quota_exit",
        "dirty_count",
        "best effort",
        "511 pages",
    ):
        assert term in docs, f"api.rst changes do not mention {term!r}"


def test_uapi_excerpt_matches_the_series_numbers() -> None:
    in_series = defines("".join(p.read_text() for p in series()))
    excerpt = defines(UAPI_EXCERPT.read_text())
    for name in ("KVM_CAP_DIRTY_QUOTA_MIGRATION", "KVM_EXIT_DIRTY_QUOTA_FULL"):
        assert in_series[name] == excerpt[name] == 1000, name


def _pristine_required() -> None:
    require(has_pristine_tree(), "pinned kernel source not unpacked: run tools/build-kernel.sh")


def test_series_applies_to_pinned_source() -> None:
    """Apply every patch, in order, to the pristine 6.12.117 tree in a scratch index."""
    _pristine_required()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": os.path.join(tmp, "index")}
        subprocess.run(["git", "-C", str(SRC), "read-tree", "pristine"], env=env, check=True)
        for patch in series():
            out = subprocess.run(
                ["git", "-C", str(SRC), "apply", "--cached", str(patch)],
                env=env,
                capture_output=True,
                text=True,
            )
            assert out.returncode == 0, f"{patch.name} does not apply: {out.stderr.strip()}"


@pytest.mark.parametrize("patch", series(), ids=lambda p: p.name[:4])
def test_checkpatch_strict_clean(patch: os.PathLike[str]) -> None:
    _pristine_required()
    out = subprocess.run(
        [str(SRC / "scripts" / "checkpatch.pl"), "--strict", "--no-tree", str(patch)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout
    assert "total: 0 errors, 0 warnings, 0 checks" in out.stdout, out.stdout
