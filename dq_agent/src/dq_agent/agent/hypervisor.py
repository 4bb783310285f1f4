"""The agent's view of libvirt: migrating domains, job stats, QMP, and events.

`Hypervisor` is the small interface the controller uses; `LibvirtHypervisor` implements it
with libvirt-python the way examples/event-test.py does: the default event loop is
registered BEFORE the connection opens and runs in its own thread; keepalive detects a
dead daemon; the close callback marks the connection lost so the daemon reconnects.
Event callbacks only enqueue (they run on the event-loop thread and must not block).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from dq_agent.agent import log
from dq_agent.agent.declared import NAMESPACE, parse_declared_policy
from dq_agent.agent.jobstats import OPERATION_MIGRATION_OUT, JobStats
from dq_agent.agent.qmp import Execute, QmpError, request, unwrap


class DomainGone(RuntimeError):
    """The domain no longer exists or no longer runs here (e.g. it migrated away)."""


class HypervisorError(RuntimeError):
    """libvirt failed for another reason (connection lost, job busy, ...)."""


@dataclass(frozen=True, slots=True)
class Event:
    """`migrating`: a migration may have started; `ended`: it completed, failed or stopped."""

    domain: str
    kind: str
    detail: str = ""


class Hypervisor(Protocol):
    def migrating_domains(self) -> list[str]: ...

    def job_stats(self, domain: str) -> JobStats: ...

    def vcpu_count(self, domain: str) -> int: ...

    def qmp(self, domain: str) -> Execute: ...

    def declared_policy(self, domain: str) -> str | None: ...


EventSink = Callable[[Event], None]

# libvirt constants used below (libvirt-python names in comments).
_LIFECYCLE_SUSPENDED = 3  # VIR_DOMAIN_EVENT_SUSPENDED
_LIFECYCLE_RESUMED = 4  # VIR_DOMAIN_EVENT_RESUMED
_LIFECYCLE_STOPPED = 5  # VIR_DOMAIN_EVENT_STOPPED
_SUSPENDED_MIGRATED = 1  # VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED: paused for switch-over
_STOPPED_MIGRATED = 3  # VIR_DOMAIN_EVENT_STOPPED_MIGRATED

_loop_started = threading.Lock()
_loop_running = False


def start_event_loop() -> None:
    """Register libvirt's default event loop (before any open) and run it in a thread."""
    global _loop_running
    import libvirt

    with _loop_started:
        if _loop_running:
            return
        libvirt.virEventRegisterDefaultImpl()
        # libvirt prints every error to stderr by default; we log the ones that matter.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_running = True


class LibvirtHypervisor:
    def __init__(self, uri: str, sink: EventSink) -> None:
        self.uri = uri
        self._sink = sink
        self._conn: Any = None
        self._lost = threading.Event()
        self._lost.set()

    # -- connection -------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._lost.is_set()

    def connect(self) -> None:
        import libvirt

        start_event_loop()
        try:
            conn = libvirt.open(self.uri)
            # Ping every 5 s, give up after 3 unanswered: a hung daemon closes the link.
            conn.setKeepAlive(5, 3)
            conn.registerCloseCallback(self._on_close, None)
            conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None
            )
            conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION, self._on_iteration, None
            )
            conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._on_job_completed, None
            )
        except libvirt.libvirtError as e:
            raise HypervisorError(
                f"cannot connect to {self.uri}: {e.get_error_message()}"
            ) from None
        self._conn = conn
        self._lost.clear()
        log.info("libvirt connected", uri=self.uri)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._lost.set()
        if conn is not None:
            with contextlib.suppress(Exception):  # a dead connection may fail to close
                conn.close()

    def _on_close(self, conn: Any, reason: int, opaque: Any) -> None:
        log.warning("libvirt connection closed", reason=reason)
        self._lost.set()

    # -- events (event-loop thread: only enqueue) -------------------------------------
    def _on_lifecycle(self, conn: Any, dom: Any, event: int, detail: int, opaque: Any) -> None:
        name = dom.name()
        if event == _LIFECYCLE_STOPPED:
            self._sink(
                Event(
                    name, "ended", "stopped-migrated" if detail == _STOPPED_MIGRATED else "stopped"
                )
            )
        elif event == _LIFECYCLE_SUSPENDED and detail == _SUSPENDED_MIGRATED:
            self._sink(Event(name, "migrating", "paused-for-switchover"))
        elif event == _LIFECYCLE_RESUMED:
            # On the source, resumed after a migration means it failed or was cancelled.
            self._sink(Event(name, "check", "resumed"))

    def _on_iteration(self, conn: Any, dom: Any, iteration: int, opaque: Any) -> None:
        self._sink(Event(dom.name(), "migrating", f"iteration={iteration}"))

    def _on_job_completed(self, conn: Any, dom: Any, params: Any, opaque: Any) -> None:
        self._sink(Event(dom.name(), "ended", "job-completed"))

    # -- Hypervisor interface ---------------------------------------------------------
    def _dom(self, name: str) -> Any:
        import libvirt

        if self._conn is None:
            raise HypervisorError("not connected")
        try:
            return self._conn.lookupByName(name)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise DomainGone(name) from None
            raise HypervisorError(e.get_error_message()) from None

    def migrating_domains(self) -> list[str]:
        """Running domains with an outgoing migration job (start-up and reconnect scan)."""
        import libvirt

        if self._conn is None:
            raise HypervisorError("not connected")
        found = []
        for dom in self._conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            try:
                stats = JobStats.from_libvirt(dom.jobStats())
            except libvirt.libvirtError:
                continue
            if stats.active and stats.operation == OPERATION_MIGRATION_OUT:
                found.append(dom.name())
        return found

    def job_stats(self, domain: str) -> JobStats:
        import libvirt

        dom = self._dom(domain)
        try:
            return JobStats.from_libvirt(dom.jobStats())
        except libvirt.libvirtError as e:
            if e.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID):
                raise DomainGone(domain) from None
            raise HypervisorError(e.get_error_message()) from None

    def vcpu_count(self, domain: str) -> int:
        import libvirt

        try:
            return int(self._dom(domain).vcpusFlags(libvirt.VIR_DOMAIN_VCPU_LIVE))
        except libvirt.libvirtError as e:
            raise HypervisorError(e.get_error_message()) from None

    def declared_policy(self, domain: str) -> str | None:
        """The policy the domain declares in its metadata (docs/contracts.md §5), or None."""
        import libvirt

        dom = self._dom(domain)
        try:
            text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NAMESPACE, 0)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                return None
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise DomainGone(domain) from None
            raise HypervisorError(e.get_error_message()) from None
        return parse_declared_policy(text)

    def qmp(self, domain: str) -> Execute:
        import libvirt
        import libvirt_qemu

        def execute(command: str, arguments: dict[str, Any] | None) -> Any:
            dom = self._dom(domain)
            try:
                text = libvirt_qemu.qemuMonitorCommand(dom, request(command, arguments), 0)
            except libvirt.libvirtError as e:
                if e.get_error_code() in (
                    libvirt.VIR_ERR_NO_DOMAIN,
                    libvirt.VIR_ERR_OPERATION_INVALID,
                ):
                    raise DomainGone(domain) from None
                raise QmpError(command, "libvirt", e.get_error_message()) from None
            return unwrap(command, text)

        return execute


class EventQueue:
    """Thread-safe hand-off from libvirt callbacks to the control loop."""

    def __init__(self) -> None:
        self._q: queue.Queue[Event] = queue.Queue()

    def put(self, ev: Event) -> None:
        self._q.put(ev)

    def wait(self, timeout: float) -> list[Event]:
        """Block up to `timeout` for the first event, then drain what else is queued."""
        out: list[Event] = []
        try:
            out.append(self._q.get(timeout=max(timeout, 0.0)))
        except queue.Empty:
            return out
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return out
