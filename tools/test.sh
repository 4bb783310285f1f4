#!/usr/bin/env bash
# The whole test run: install, build (cached), lint, pytest. `.ci/run` calls this.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
start=$(date +%s)
stage() { say "== $* (t+$(( $(date +%s) - start ))s)"; }

stage "setup"
"$DQ_REPO/tools/setup-host.sh" >/dev/null
venv=$(readlink -f "$DQ_CACHE/venv")
export PATH="$venv/bin:$PATH"
# This checkout's package wins over the shared venv's editable install.
export PYTHONPATH="$DQ_REPO/dq_agent/src${PYTHONPATH:+:$PYTHONPATH}"

# Cached builds (each prints its artifact path last).
for b in "$DQ_REPO"/tools/build-*.sh; do
  [ -x "$b" ] || continue
  stage "build $(basename "$b" .sh | sed 's/^build-//')"
  "$b" >/dev/null
done

stage "lint: ruff, mypy"
(cd "$DQ_REPO/dq_agent" && ruff check src ../tests && ruff format --check src ../tests && mypy src)
if [ -x "$DQ_REPO/tools/lint-ansible.sh" ]; then
  stage "lint: ansible"
  "$DQ_REPO/tools/lint-ansible.sh"
fi

stage "pytest"
set +e
(cd "$DQ_REPO" && python -m pytest -p no:cacheprovider "$@" tests)
rc=$?
set -e
stage "done (pytest rc=$rc)"
# 5 = no tests collected: that is a failure for us, not a pass.
exit "$rc"
