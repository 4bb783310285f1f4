"""FAKE libvirt + QMP layer, for the overhead benchmark and controller unit tests ONLY.

It stands in for N migrating guests so the agent's own CPU cost can be measured at scale
(8 guests x 8 vCPUs, 100 guests for scrapes), which the 2-core dev machine cannot run as
real TCG guests. Replies have the shapes of docs/contracts.md §5 (query-dirty-quota) and
go through the same JSON encode/decode path as the real libvirt_qemu transport. Real
libvirt and QEMU are exercised by test_full_path.py and test_hard_kill.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dq_agent.agent.hypervisor import DomainGone
from dq_agent.agent.jobstats import JOB_NONE, JOB_UNBOUNDED, OPERATION_MIGRATION_OUT, JobStats
from dq_agent.agent.qmp import Execute, request, unwrap


@dataclass
class FakeGuest:
    name: str
    vcpus: int = 8
    link_bps: float = 12_500_000.0
    memory_bytes: int = 8 << 30
    migrating: bool = True
    t: float = 0.0
    sent: int = 0
    quota_calls: list[dict[str, Any]] = field(default_factory=list)
    quota_times: list[float] = field(default_factory=list)
    cancels: int = 0
    enabled: bool = False
    declared: str | None = None  # already-parsed policy from the domain's metadata

    def advance(self, dt: float) -> None:
        self.t += dt
        self.sent += int(self.link_bps * dt)

    def stats(self) -> JobStats:
        if not self.migrating:
            return JobStats(type=JOB_NONE)
        return JobStats(
            type=JOB_UNBOUNDED,
            operation=OPERATION_MIGRATION_OUT,
            time_elapsed_ms=int(self.t * 1000),
            data_total=self.memory_bytes,
            data_processed=self.sent,
            data_remaining=max(self.memory_bytes - self.sent, 0),
            memory_dirty_rate_pages=2000,
            memory_iteration=1 + int(self.t // 2),
            memory_bps=int(self.link_bps),
            expected_downtime_ms=300,
        )

    def reply(self, command: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
        if command == "query-dirty-quota":
            last = self.quota_calls[-1] if self.quota_calls else {}
            budget = int(last.get("budget-pages", 0))
            return {
                "return": {
                    "enabled": self.enabled,
                    "accel": "kvm",
                    "available": True,
                    "interval-ms": 10,
                    "budget-pages": budget,
                    "auto-budget": False,
                    "pool-pages": budget,
                    "pool-cap-pages": 4 * budget,
                    "burst-pages": budget,
                    "deadline-remaining-ms": 2800,
                    "intervals": int(self.t * 100),
                    "vcpus": [
                        {
                            "cpu-index": i,
                            "weight": 1,
                            "dirty-pages": int(self.t * 5000) + i,
                            "quota-pages": budget // self.vcpus,
                            "granted-pages": int(self.t * 4000),
                            "pool-drawn-pages": int(self.t * 100),
                            "exhausted-count": int(self.t * 50),
                            "sleep-ns": int(self.t * 2e8),
                            "max-overshoot-pages": 1,
                        }
                        for i in range(self.vcpus)
                    ],
                }
            }
        if command == "set-dirty-quota":
            self.quota_calls.append(dict(arguments or {}))
            self.quota_times.append(self.t)
            self.enabled = True
            return {"return": {}}
        if command == "cancel-dirty-quota":
            self.cancels += 1
            self.enabled = False
            return {"return": {}}
        return {
            "error": {
                "class": "CommandNotFound",
                "desc": f"The command {command} has not been found",
            }
        }


class FakeHypervisor:
    def __init__(self, guests: list[FakeGuest]) -> None:
        self.guests = {g.name: g for g in guests}
        self.qmp_calls = 0
        self.jobstats_calls = 0

    def advance(self, dt: float) -> None:
        for g in self.guests.values():
            g.advance(dt)

    def _guest(self, domain: str) -> FakeGuest:
        if domain not in self.guests:
            raise DomainGone(domain)
        return self.guests[domain]

    def migrating_domains(self) -> list[str]:
        return [n for n, g in self.guests.items() if g.migrating]

    def job_stats(self, domain: str) -> JobStats:
        self.jobstats_calls += 1
        return self._guest(domain).stats()

    def vcpu_count(self, domain: str) -> int:
        return self._guest(domain).vcpus

    def declared_policy(self, domain: str) -> str | None:
        return self._guest(domain).declared

    def qmp(self, domain: str) -> Execute:
        def execute(command: str, arguments: dict[str, Any] | None) -> Any:
            self.qmp_calls += 1
            sent = json.loads(request(command, arguments))  # same encoding as the real path
            g = self._guest(domain)
            return unwrap(command, json.dumps(g.reply(sent["execute"], sent.get("arguments"))))

        return execute
