"""Fault injectors for the reliability tests: small context managers that undo themselves.

Each one acts only inside a network namespace our own code created (never the host's),
records when the fault started and ended, and restores what it changed on exit, also when
the body raises. The process faults (kill, pause) act only on a pid the caller owns.
"""

from dq_agent.faults.bandwidth import bandwidth_collapse
from dq_agent.faults.link import link_cut
from dq_agent.faults.loss import packet_loss
from dq_agent.faults.netns import FaultError, FaultWindow
from dq_agent.faults.process import kill_process, paused

__all__ = [
    "FaultError",
    "FaultWindow",
    "bandwidth_collapse",
    "kill_process",
    "link_cut",
    "packet_loss",
    "paused",
]
