"""`python -m dq_agent.schema FILE...`: validate run-result files.

Prints `FILE: ok` or `FILE: field: reason` per file; exit 0 if all valid, 1 if any is
invalid, 2 if a file cannot be read or is not JSON.
"""

from __future__ import annotations

import json
import sys

from dq_agent.schema import problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m dq_agent.schema FILE...", file=sys.stderr)
        return 2 if not args else 0
    worst = 0
    for name in args:
        try:
            with open(name, encoding="utf-8") as fh:
                doc = json.load(fh)
        except OSError as e:
            print(f"{name}: cannot read: {e.strerror}", file=sys.stderr)
            worst = 2
            continue
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            print(f"{name}: not JSON: {e}", file=sys.stderr)
            worst = 2
            continue
        found = problems(doc)
        if found:
            for p in found:
                print(f"{name}: {p}")
            worst = max(worst, 1)
        else:
            print(f"{name}: ok")
    return worst


if __name__ == "__main__":
    sys.exit(main())
