"""Local migration harness: real QEMU guests migrated over a tc-shaped veth link.

Public API (see docs/harness.md):
    load_scenario(), Scenario          - what the guest runs, link rate, timeouts
    RunOptions                         - QEMU binary, accelerator, controls
    run_migration(scenario, policy)    - one run -> run-result document (contracts §6)
    compare(scenario, policies)        - one fresh guest per policy + table
    Link, measure_link()               - the shaped netns pair on its own
"""

from dq_agent.harness.errors import HarnessError, ScenarioError
from dq_agent.harness.netns import Link, measure_link
from dq_agent.harness.run import RunOptions, compare, comparison_table, run_migration
from dq_agent.harness.scenario import Scenario, load_scenario

__all__ = [
    "HarnessError",
    "Link",
    "RunOptions",
    "Scenario",
    "ScenarioError",
    "compare",
    "comparison_table",
    "load_scenario",
    "measure_link",
    "run_migration",
]
