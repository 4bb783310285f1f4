"""Shared pieces of the real-libvirt agent tests: emulators, guests, migrations, traces."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import CACHE, artifact

HOST_QEMU = Path("/usr/bin/qemu-system-x86_64")
# Debian's firmware locations (seabios, qemu-system-data), for the patched QEMU.
FIRMWARE_DIRS = ("/usr/share/seabios", "/usr/share/qemu")
AGENT_CACHE = CACHE / "agent-tests"


def patched_qemu() -> Path | None:
    """The patched QEMU binary from tools/build-qemu.sh, or None if not built yet.

    DQ_AGENT_TEST_QEMU overrides it (a development build, e.g. the build tree's binary)."""
    override = os.environ.get("DQ_AGENT_TEST_QEMU")
    if override:
        return Path(override)
    try:
        a = artifact("qemu")
    except OSError:  # the build script exists but is not runnable (yet)
        return None
    if a is None:
        return None
    if a.is_dir():
        roots = [a]
    else:
        # dq-qemu_<version>+dq.<key>_amd64.deb sits next to its unpacked tree <key>/.
        key = a.name.rsplit("+dq.", 1)[-1].split("_", 1)[0]
        roots = [a.parent / key]
    for r in roots:
        for rel in ("opt/dq-qemu/bin/qemu-system-x86_64", "bin/qemu-system-x86_64"):
            if (r / rel).is_file() and os.access(r / rel, os.X_OK):
                return r / rel
    return None


@dataclass
class Migration:
    """A libvirt live migration driven from the test (client-managed, not p2p)."""

    dom: Any
    dconn: Any
    uri: str
    flags: int = 0  # added to VIR_MIGRATE_LIVE (e.g. VIR_MIGRATE_AUTO_CONVERGE)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0
    finished: float = 0.0

    def start(self) -> Migration:
        import libvirt

        def run() -> None:
            self.started = time.monotonic()
            try:
                self.dom.migrate3(
                    self.dconn,
                    {libvirt.VIR_MIGRATE_PARAM_URI: self.uri},
                    libvirt.VIR_MIGRATE_LIVE | self.flags,
                )
            except BaseException as e:
                self.error = e
            finally:
                self.finished = time.monotonic()
                self.done.set()

        threading.Thread(target=run, name="migrate", daemon=True).start()
        return self

    def wait(self, timeout_s: float) -> bool:
        if self.done.wait(timeout_s):
            return self.error is None
        # Bounded: cancel a migration that did not converge in time.
        with contextlib.suppress(Exception):  # it may have finished meanwhile
            self.dom.abortJob()
        self.done.wait(30)
        return False

    @property
    def seconds(self) -> float:
        return self.finished - self.started
