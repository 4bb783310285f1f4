"""The running agent: metrics server, libvirt connection, control loop, signals, systemd."""

from __future__ import annotations

import faulthandler
import signal
import socket
import threading
import time
from types import FrameType

from prometheus_client import CollectorRegistry

from dq_agent.agent import log
from dq_agent.agent.config import Config
from dq_agent.agent.controller import Controller
from dq_agent.agent.exporter import serve
from dq_agent.agent.hypervisor import EventQueue, HypervisorError, LibvirtHypervisor
from dq_agent.agent.metrics import AgentCollector
from dq_agent.agent.sdnotify import Notifier

RECONNECT_MAX_S = 10.0


class Agent:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.events = EventQueue()
        self.hv = LibvirtHypervisor(cfg.libvirt_uri, self.events.put)
        self.controller = Controller(cfg, self.hv)
        self.notifier = Notifier()
        self.stop = threading.Event()
        self.host = cfg.host_label or socket.gethostname()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal received; releasing throttles", signal=signal.Signals(signum).name)
        self.stop.set()

    def _connect(self) -> bool:
        try:
            self.hv.connect()
        except HypervisorError as e:
            self.controller.error("libvirt", detail=e)
            return False
        self.controller.connected = True
        # Pick up migrations already running (agent restart, reconnect): no event replays them.
        try:
            for name in self.hv.migrating_domains():
                self.controller.adopt(name, "found-at-connect")
        except HypervisorError as e:
            self.controller.error("libvirt", detail=e)
        return True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # `kill -USR1` dumps every thread's stack to stderr: a hung libvirt call shows up.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(AgentCollector(self.controller.snapshot, self.host))
        try:
            serve(registry, self.cfg.listen_address, self.cfg.port)
        except OSError as e:
            log.error(
                "cannot bind metrics port",
                address=self.cfg.listen_address,
                port=self.cfg.port,
                detail=e.strerror,
            )
            return 1
        log.info("metrics listening", address=self.cfg.listen_address, port=self.cfg.port)

        backoff = 0.5
        while not self._connect():
            if self.stop.wait(backoff):
                return 0
            backoff = min(backoff * 2, RECONNECT_MAX_S)
        self.notifier.ready(f"connected to {self.cfg.libvirt_uri}; metrics on :{self.cfg.port}")
        log.info("ready", uri=self.cfg.libvirt_uri, backend=self.cfg.backend, host=self.host)

        tick_s = self.cfg.tick_ms / 1000
        idle_s = min(1.0, self.notifier.watchdog_interval_s or 1.0)
        next_tick = time.monotonic()
        try:
            while not self.stop.is_set():
                if not self.hv.connected:
                    self.controller.connected = False
                    self.hv.close()
                    if not self._connect():
                        self.stop.wait(backoff)
                        backoff = min(backoff * 2, RECONNECT_MAX_S)
                        self.notifier.watchdog(time.monotonic())
                        continue
                    backoff = 0.5
                # Idle: sleep until an event arrives. Migrating: wake every tick.
                busy = bool(self.controller.active)
                timeout = max(next_tick - time.monotonic(), 0.0) if busy else idle_s
                for ev in self.events.wait(timeout):
                    log.debug("event", domain=ev.domain, kind=ev.kind, detail=ev.detail)
                    self.controller.handle(ev)
                if self.controller.active and time.monotonic() >= next_tick:
                    self.controller.tick()
                    next_tick = time.monotonic() + tick_s
                elif not self.controller.active:
                    next_tick = time.monotonic()
                self.notifier.watchdog(time.monotonic())
        finally:
            self.notifier.stopping()
            self.controller.release_all("agent-stopping")
            self.hv.close()
            log.info("stopped")
        return 0
