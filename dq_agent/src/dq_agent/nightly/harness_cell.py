"""One matrix cell on the local migration harness (dq_agent.harness), result JSON to a file.

    python -m dq_agent.nightly.harness_cell WORKLOAD POLICY BANDWIDTH OUT

WORKLOAD is a harness scenario (built-in name or JSON file); BANDWIDTH (e.g. 100mbit)
overrides its link rate. Exit 0 with OUT written; 2 bad input (one line naming the field);
3 the policy cannot run here (e.g. dirty-limit under TCG), reported, not a crash; 4 the
environment cannot run the harness.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path


def link_mbit(bandwidth: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(mbit|gbit)", bandwidth)
    if not m:
        raise ValueError(f"bandwidth: expected e.g. 100mbit or 1gbit, got {bandwidth!r}")
    return float(m.group(1)) * (1000 if m.group(2) == "gbit" else 1)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 4:
        print("usage: harness_cell WORKLOAD POLICY BANDWIDTH OUT", file=sys.stderr)
        return 2
    workload, policy, bandwidth, out = args
    from dq_agent.harness.errors import HarnessError, PolicyUnavailable, ScenarioError
    from dq_agent.harness.run import run_migration
    from dq_agent.harness.scenario import load_scenario

    try:
        scenario = load_scenario(workload, link_mbit=link_mbit(bandwidth))
        doc = run_migration(scenario, policy)
    except (ScenarioError, ValueError) as exc:
        print(f"harness_cell: {exc}", file=sys.stderr)
        return 2
    except PolicyUnavailable as exc:
        print(f"harness_cell: policy {policy} unavailable here: {exc}", file=sys.stderr)
        return 3
    except HarnessError as exc:
        print(f"harness_cell: {exc}", file=sys.stderr)
        return 4
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)  # the matrix only ever sees a complete file
    return 0


if __name__ == "__main__":
    sys.exit(main())
