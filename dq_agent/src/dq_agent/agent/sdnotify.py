"""sd_notify(3) over $NOTIFY_SOCKET: READY=1, WATCHDOG=1, STATUS=, STOPPING=1.

A no-op outside systemd. An address starting with '@' is in the abstract namespace.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self._addr = "\0" + addr[1:] if addr.startswith("@") else addr
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ours = not pid or pid == str(os.getpid())
        # Ping at half the watchdog period, as sd_watchdog_enabled(3) recommends.
        self.watchdog_interval_s = int(usec) / 2e6 if usec.isdigit() and ours else 0.0
        self._last_ping = float("-inf")

    @property
    def enabled(self) -> bool:
        return bool(self._addr)

    def notify(self, *fields: str) -> bool:
        if not self._addr:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            try:
                # Never block the control loop on a busy service manager: drop instead.
                s.sendto("\n".join(fields).encode(), socket.MSG_DONTWAIT, self._addr)
            except OSError:
                return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def watchdog(self, now: float) -> bool:
        """Ping at most every half watchdog period (callers may call it every loop)."""
        if not self.watchdog_interval_s or now - self._last_ping < self.watchdog_interval_s:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")
