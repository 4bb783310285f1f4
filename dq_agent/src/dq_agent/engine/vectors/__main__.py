"""`python -m dq_agent.engine.vectors --write | --check`: generate or verify the vector files."""

from __future__ import annotations

import argparse
import sys

from dq_agent.engine.vectors import VECTOR_DIR, expected_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dq_agent.engine.vectors")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="(re)write the JSON files")
    mode.add_argument("--check", action="store_true", help="exit 1 if any file differs")
    args = parser.parse_args(argv)
    wanted = expected_files()
    if args.write:
        for name, text in wanted.items():
            (VECTOR_DIR / name).write_text(text)
        print(f"wrote {len(wanted)} vector files to {VECTOR_DIR}")
        return 0
    stale = sorted(
        name
        for name, text in wanted.items()
        if not (VECTOR_DIR / name).exists() or (VECTOR_DIR / name).read_text() != text
    )
    extra = sorted(p.name for p in VECTOR_DIR.glob("*.json") if p.name not in wanted)
    for name in stale:
        print(f"stale or missing: {name}", file=sys.stderr)
    for name in extra:
        print(f"not produced by the generator: {name}", file=sys.stderr)
    return 1 if stale or extra else 0


if __name__ == "__main__":
    sys.exit(main())
