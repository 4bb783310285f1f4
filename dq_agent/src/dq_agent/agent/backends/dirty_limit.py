"""`dirty-limit`: stock QEMU >= 7.1 with the KVM dirty ring (set-vcpu-dirty-limit).

Verified on KVM hosts only: the dirty ring cannot serve guests on the dev machine, so the
tests replay QMP transcripts with real QEMU's reply shapes (tests/agent/transcripts/).

Each vCPU's share of the budget (the engine's `split_shares`) becomes a rate in MiB/s.
Stock QEMU has no deadline: a SIGKILLed agent leaves the limits in place. A restarted agent
adopts a still-running migration and takes the limits over (and cancels them at its end);
after a migration that failed while no agent ran, an operator must run
cancel-vcpu-dirty-limit. docs/agent.md says so.
"""

from __future__ import annotations

from dq_agent.agent.backends.base import Availability, QuotaPlan, Reading, VcpuReading
from dq_agent.agent.qmp import Execute, QmpError, as_bool, as_dict, as_int, as_list
from dq_agent.engine import PAGE_SIZE, split_shares

MIB = 1 << 20
# A cpu-index no machine has: cancel-vcpu-dirty-limit rejects it only when the dirty ring
# is in service, and returns silently otherwise: a probe without side effects.
_PROBE_CPU_INDEX = -1


def pages_per_interval_to_mib_s(pages: int, interval_ms: int) -> int:
    """Rate QEMU understands; at least 1, because 0 would mean "cancel the limit"."""
    return max(1, pages * PAGE_SIZE * 1000 // interval_ms // MIB)


def mib_s_to_pages_per_interval(mib_s: int, interval_ms: int) -> int:
    return mib_s * MIB * interval_ms // 1000 // PAGE_SIZE


class DirtyLimitBackend:
    name = "dirty-limit"

    def __init__(self, interval_ms: int = 10) -> None:
        self.interval_ms = interval_ms

    def probe(self, qmp: Execute) -> Availability:
        try:
            kvm_on = as_bool("query-kvm", as_dict("query-kvm", qmp("query-kvm", None)), "enabled")
        except QmpError as e:
            return Availability(False, f"query-kvm failed: {e.desc}")
        if not kvm_on:
            return Availability(
                False, "guest does not run under KVM (dirty-limit needs the KVM dirty ring)"
            )
        try:
            qmp("cancel-vcpu-dirty-limit", {"cpu-index": _PROBE_CPU_INDEX})
        except QmpError as e:
            if "incorrect cpu index" in e.desc:
                return Availability(True)
            if e.klass == "CommandNotFound":
                return Availability(False, "QEMU older than 7.1: no dirty-limit commands")
            return Availability(False, f"cancel-vcpu-dirty-limit probe failed: {e.desc}")
        return Availability(
            False, "KVM dirty ring is off (QEMU accel property dirty-ring-size unset)"
        )

    def apply(self, qmp: Execute, plan: QuotaPlan) -> None:
        self.interval_ms = plan.interval_ms
        shares = split_shares(plan.budget_pages, plan.vcpu_weights)
        for cpu, share in enumerate(shares):
            rate = pages_per_interval_to_mib_s(share, plan.interval_ms)
            qmp("set-vcpu-dirty-limit", {"cpu-index": cpu, "dirty-rate": rate})

    def release(self, qmp: Execute) -> None:
        qmp("cancel-vcpu-dirty-limit", None)

    def read(self, qmp: Execute) -> Reading | None:
        q = "query-vcpu-dirty-limit"
        vcpus = []
        for raw in as_list(q, qmp(q, None), "return"):
            r = as_dict(q, raw)
            vcpus.append(
                VcpuReading(
                    cpu_index=as_int(q, r, "cpu-index"),
                    quota_pages=mib_s_to_pages_per_interval(
                        as_int(q, r, "limit-rate"), self.interval_ms
                    ),
                    dirty_rate_bps=as_int(q, r, "current-rate") * MIB,
                )
            )
        return Reading(bool(vcpus), None, tuple(vcpus))
