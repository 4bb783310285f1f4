#!/usr/bin/env bash
# Ansible lint gate (tools/test.sh runs it): ansible-lint with the production profile
# over the repo's playbooks and roles, and --syntax-check of every playbook against the
# committed example inventory (no lab needed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
venv=$(readlink -f "$DQ_CACHE/venv")
export PATH="$venv/bin:$PATH"
export ANSIBLE_CONFIG=$DQ_REPO/ansible.cfg
"$DQ_REPO/tools/fetch-collections.sh" >/dev/null
mkdir -p "$DQ_CACHE/ansible/tmp"
cd "$DQ_REPO"

rc=0
for pb in playbooks/*.yml; do
  if ! out=$(ansible-playbook --syntax-check -i inventory/lab.example "$pb" 2>&1); then
    printf '%s\n' "$out" >&2
    say "ansible: syntax-check FAILED: $pb"
    rc=1
  fi
done
[ "$rc" = 0 ] && say "ansible: syntax-check ok ($(ls playbooks/*.yml | wc -l) playbooks)"
# --offline: never try Galaxy (unreachable here); the collections are already installed.
ansible-lint --offline --profile production -q playbooks roles || rc=1
[ "$rc" = 0 ] && say "ansible: ansible-lint (production) clean"
exit "$rc"
