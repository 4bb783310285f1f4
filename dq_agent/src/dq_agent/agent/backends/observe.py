"""`observe`: no enforcement; the agent only exports what libvirt reports."""

from __future__ import annotations

from dq_agent.agent.backends.base import Availability, QuotaPlan, Reading
from dq_agent.agent.qmp import Execute


class ObserveBackend:
    name = "observe"

    def probe(self, qmp: Execute) -> Availability:
        return Availability(True)

    def apply(self, qmp: Execute, plan: QuotaPlan) -> None:
        return None

    def release(self, qmp: Execute) -> None:
        return None

    def read(self, qmp: Execute) -> Reading | None:
        return None
