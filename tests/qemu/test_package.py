"""The dq-qemu .deb: its contents, and that apt can resolve every dependency on an empty
Debian 12 (this host's sources) and an empty Debian 13 (trixie, the lab containers)
system; the unpacked tree runs in place and finds its firmware."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.conftest import REPO, artifact, require
from tests.qemu.series import qemu_tree

pytestmark = pytest.mark.slow


def deb() -> Path:
    path = artifact("qemu")
    require(path is not None, "patched QEMU not built: run tools/build-qemu.sh")
    assert path is not None
    return path


def test_deb_contents_and_control() -> None:
    d = deb()
    files = subprocess.run(["dpkg-deb", "-c", str(d)], capture_output=True, text=True, check=True)
    assert "./opt/dq-qemu/bin/qemu-system-x86_64" in files.stdout
    assert "./opt/dq-qemu/share/qemu/bios-256k.bin -> " in files.stdout
    ctl = subprocess.run(
        ["dpkg-deb", "-f", str(d), "Package", "Depends"], capture_output=True, text=True
    )
    assert "Package: dq-qemu" in ctl.stdout
    for dep in ("libglib2.0-0t64", "libfdt1", "seabios", "ipxe-qemu", "qemu-system-data"):
        assert dep in ctl.stdout


def simulate(apt_args: list[str], d: Path, tmp: Path) -> str:
    status = tmp / "status"
    status.write_text("")  # an empty system: every dependency must come from the archive
    r = subprocess.run(
        [
            "apt-get",
            *apt_args,
            "-o",
            f"Dir::State::status={status}",
            "--simulate",
            "install",
            str(d),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr.strip()[-500:]
    return r.stdout


def test_installable_on_debian_12(tmp_path: Path) -> None:
    out = simulate([], deb(), tmp_path)
    assert "Inst dq-qemu " in out


def test_installable_on_debian_13(tmp_path: Path) -> None:
    conf = subprocess.run(
        ["bash", "-c", f". {REPO}/tools/lib.sh && private_apt_config"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    require(
        any((Path(conf).parent / "lists").glob("*trixie*Packages*")),
        "trixie package lists missing: run tools/build-qemu.sh (it updates them)",
    )
    out = simulate(["-c", conf], deb(), tmp_path)
    assert "Inst dq-qemu " in out and "Inst libglib2.0-0t64 " in out


def test_unpacked_tree_runs_in_place() -> None:
    tree = qemu_tree()
    require(tree is not None, "patched QEMU not built: run tools/build-qemu.sh")
    assert tree is not None
    r = subprocess.run(
        [str(tree / "bin" / "qemu-system-x86_64"), "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0 and "version 10.0.13" in r.stdout
    assert (tree / "share" / "qemu" / "bios-256k.bin").resolve().is_file()
