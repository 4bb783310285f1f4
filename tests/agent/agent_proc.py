"""Run the real `dq-agent` as a subprocess the way systemd would, and read its metrics.

A datagram socket stands in for systemd's NOTIFY_SOCKET, so the tests see READY=1 and
WATCHDOG=1 exactly as the service manager would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

VENV_BIN = Path(sys.executable).parent
DQ_AGENT = str(VENV_BIN / "dq-agent")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, uri: str, port: int, backend: str, **control: object) -> Path:
    ctl = {"backend": backend, "tick_ms": 200, "deadline_ms": 1000, **control}
    lines = [
        "[libvirt]",
        f'uri = "{uri}"',
        "[metrics]",
        'listen_address = "127.0.0.1"',
        f"port = {port}",
        'host_label = "testhost"',
        "[control]",
    ]
    for k, v in ctl.items():
        lines.append(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {str(v).lower()}")
    lines += ["[log]", 'level = "debug"']
    path.write_text("\n".join(lines) + "\n")
    return path


class AgentProcess:
    def __init__(self, config: Path, workdir: Path, name: str = "agent") -> None:
        self.config = config
        self.notify_path = workdir / f"{name}.notify"
        self.log_path = workdir / f"{name}.log"
        self.notify_path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.notify_path))
        self.notices: list[str] = []
        self._closing = threading.Event()
        # Drain continuously, as systemd does: a full datagram queue would drop notices.
        self._drain = threading.Thread(target=self._drain_loop, daemon=True)
        self._drain.start()
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify_path), WATCHDOG_USEC="2000000")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [DQ_AGENT, "run", "--config", str(config)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        # WATCHDOG_PID must name the agent itself, as systemd sets it.
        self.port = 0

    def _drain_loop(self) -> None:
        self.sock.settimeout(0.1)
        while not self._closing.is_set():
            try:
                self.notices.extend(self.sock.recv(4096).decode().splitlines())
            except TimeoutError:
                continue
            except OSError:
                return

    def read_notices(self, timeout_s: float) -> list[str]:
        time.sleep(timeout_s)
        return self.notices

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "READY=1" in self.read_notices(0.2):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {self.log()[-2000:]}")
        raise RuntimeError(f"agent not READY after {timeout_s}s: {self.log()[-2000:]}")

    def cpu_seconds(self) -> float:
        """utime + stime of the agent process so far (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        self.kill(sig)
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
        time.sleep(0.05)  # let the drain thread take the last notices
        self._log.close()
        self._closing.set()
        self._drain.join(2)
        self.sock.close()
        self.notify_path.unlink(missing_ok=True)
        return rc


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            yield s.name, dict(s.labels), float(s.value)


def value(text: str, name: str, **labels: str) -> float | None:
    for n, lab, v in samples(text):
        if n == name and all(lab.get(k) == x for k, x in labels.items()):
            return v
    return None
