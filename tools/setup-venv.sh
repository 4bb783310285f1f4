#!/usr/bin/env bash
# Create (or reuse) the pinned virtualenv, keyed by the hash of the pins.
# Prints the venv path on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# This machine's pip config lists local indexes that may not exist; their warnings are noise.
pip_quiet() { "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }
key=$(cat "$DQ_REPO"/dq_agent/requirements*.txt "$DQ_REPO"/dq_agent/constraints.txt | sha256sum | cut -c1-12)
venv=$DQ_CACHE/venv-$key
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  say "creating virtualenv $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  pip_quiet "$venv/bin/pip" install -q --upgrade pip==25.3
  pip_quiet "$venv/bin/pip" install -q -c "$DQ_REPO/dq_agent/constraints.txt" -r "$DQ_REPO/dq_agent/requirements-dev.txt"
  touch "$venv/.complete"
fi
# Editable install of the package itself (cheap; tracks the checkout in use).
"$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$DQ_REPO/dq_agent" >/dev/null 2>&1 || \
  "$venv/bin/pip" install -q --no-deps -e "$DQ_REPO/dq_agent"
ln -sfn "$venv" "$DQ_CACHE/venv"
# Pinned collections, from the PyPI bundle (Galaxy is not reachable from lab machines).
"$DQ_REPO/tools/fetch-collections.sh" >/dev/null
echo "$venv"
