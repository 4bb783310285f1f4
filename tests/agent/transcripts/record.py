"""Record the dirty-limit backend's QMP conversation with a real QEMU, as replayable JSON.

    /var/cache/dqlab/venv/bin/python tests/agent/transcripts/record.py

Three sessions, each driven by the backend code itself (probe, apply, read, release):
- kvm-dirty-ring: `-accel kvm,dirty-ring-size=4096` (this host's /dev/kvm serves QEMU's
  dirty ring even though it cannot boot ordinary guest kernels; FACTS.md);
- kvm-no-ring: `-accel kvm` (the backend must say the ring is off);
- tcg: `-accel tcg` (the backend must say KVM is not in use).
Replies are stored verbatim. The guest is the tiny multiboot dirtier (tests/agent).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from dirtier_guest import write as write_guest  # noqa: E402
from qmp_direct import DirectQemu  # noqa: E402

from dq_agent.agent.backends import QuotaPlan  # noqa: E402
from dq_agent.agent.backends.dirty_limit import DirtyLimitBackend  # noqa: E402
from dq_agent.agent.qmp import QmpError  # noqa: E402

QEMU = "/usr/bin/qemu-system-x86_64"
PLAN = QuotaPlan(
    budget_pages=128,
    interval_ms=10,
    deadline_ms=3000,
    pool_cap_pages=512,
    burst_pages=128,
    vcpu_weights=(3, 1),
)
SESSIONS = {
    "kvm-dirty-ring": "kvm,dirty-ring-size=4096",
    "kvm-no-ring": "kvm",
    "tcg": "tcg",
}


def session(name: str, accel: str, workdir: Path) -> dict[str, Any]:
    kernel = write_guest(workdir / "guest.bin", 8)
    q = DirectQemu(QEMU, workdir, accel, kernel)
    q.log.clear()
    backend = DirtyLimitBackend()
    steps: list[str] = []
    try:
        avail = backend.probe(q.execute)
        steps.append("probe")
        if avail.available:
            backend.apply(q.execute, PLAN)
            steps.append("apply")
            backend.read(q.execute)
            steps.append("read")
            backend.release(q.execute)
            steps.append("release")
            backend.read(q.execute)
            steps.append("read")
        else:
            # What an operator would see trying anyway: QEMU's own refusal.
            with contextlib.suppress(QmpError):
                q.execute("set-vcpu-dirty-limit", {"cpu-index": 0, "dirty-rate": 1})
            steps.append("refused-set")
    finally:
        log = list(q.log)
        version = q.version
        q.close()
    return {
        "format": "dqlab-qmp-transcript/1",
        "name": name,
        "recorded_with": version,
        "accel": accel,
        "plan": {
            "budget_pages": PLAN.budget_pages,
            "interval_ms": PLAN.interval_ms,
            "vcpu_weights": list(PLAN.vcpu_weights),
        },
        "steps": steps,
        "probe": {"available": avail.available, "reason": avail.reason},
        "exchanges": log,
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dq-record-") as tmp:
        for name, accel in SESSIONS.items():
            t = session(name, accel, Path(tmp))
            out = HERE / f"dirty-limit-{name}.json"
            out.write_text(json.dumps(t, indent=1) + "\n")
            print(f"{out}: {len(t['exchanges'])} exchanges, probe={t['probe']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
