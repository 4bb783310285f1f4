"""A direct QMP client for tests: start a bare QEMU and talk to its monitor socket.

The agent itself always goes through libvirt (qemuMonitorCommand); this exists to record
transcripts and to drive the dirty-limit backend against a real KVM QEMU without libvirt.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from dq_agent.agent.qmp import QmpError, request, unwrap


class DirectQemu:
    def __init__(self, qemu: str, workdir: Path, accel: str, kernel: Path, smp: int = 2) -> None:
        self.sock_path = workdir / f"qmp-{os.getpid()}-{time.monotonic_ns()}.sock"
        self.proc = subprocess.Popen(
            [
                qemu,
                "-accel",
                accel,
                "-cpu",
                "qemu64",
                "-m",
                "128",
                "-smp",
                str(smp),
                "-kernel",
                str(kernel),
                "-display",
                "none",
                "-nodefaults",
                "-qmp",
                f"unix:{self.sock_path},server=on,wait=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while not self.sock_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self.close()
                raise RuntimeError(f"QEMU did not start ({accel}): {err[-500:]}")
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(self.sock_path))
        self.f = self.sock.makefile("rw")
        self.greeting = json.loads(self.f.readline())
        self.execute("qmp_capabilities", None)
        self.log: list[dict[str, Any]] = []

    @property
    def version(self) -> str:
        v = self.greeting["QMP"]["version"]
        return f"{v['qemu']['major']}.{v['qemu']['minor']}.{v['qemu']['micro']} {v['package']}"

    def execute(self, command: str, arguments: dict[str, Any] | None) -> Any:
        self.f.write(request(command, arguments) + "\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise QmpError(command, "Disconnected", "QEMU closed the monitor")
            reply = json.loads(line)
            if "event" in reply:
                continue
            if hasattr(self, "log"):
                entry: dict[str, Any] = {"execute": command}
                if arguments is not None:
                    entry["arguments"] = arguments
                entry["reply"] = reply
                self.log.append(entry)
            return unwrap(command, json.dumps(reply))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.execute("quit", None)
        with contextlib.suppress(Exception):
            self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.sock_path.unlink(missing_ok=True)
