#!/usr/bin/env bash
# ./dqlab compare: the main job, end to end on this machine.
#   1. cached builds (guest appliance; patched QEMU when tools/build-qemu.sh exists)
#   2. bring up the nspawn local lab (tools/lab.sh up)
#   3. provision it with playbooks/site.yml
#   4. run the default scenario with playbooks/migrate.yml: skewed guest over 100 Mbit/s,
#      policies none, auto-converge, dirty-quota
#   5. print the comparison table, record the runs (history, Pushgateway), render the HTML
#      report, and print where the results, the report and Prometheus are
# The lab stays up afterwards (./dqlab lab down removes it); DQ_COMPARE_DOWN=1 tears it
# down at the end. Extra arguments go to ansible-playbook migrate.yml (e.g. -e ...).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
t_all=$(date +%s)
declare -a timings=()
step() { say "== step $1"; t_step=$(date +%s); }
done_step() { local d=$(( $(date +%s) - t_step )); timings+=("$(printf '%-34s %5ss' "$1" "$d")"); say "   done: $1 in ${d}s"; }

step "0/5 setup (host packages, pinned venv, collections)"
"$DQ_REPO/tools/setup-host.sh" >/dev/null
"$DQ_REPO/tools/fetch-collections.sh" >/dev/null
venv=$(readlink -f "$DQ_CACHE/venv")
# Unbuffered: progress lines reach the terminal as they happen, not in 4 KiB chunks.
export PATH="$venv/bin:$PATH" ANSIBLE_CONFIG=$DQ_REPO/ansible.cfg ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0} PYTHONUNBUFFERED=1
mkdir -p "$DQ_CACHE/ansible/tmp"
done_step "setup"

step "1/5 cached builds"
say "   guest appliance (tools/build-appliance.sh)"
"$DQ_REPO/tools/build-appliance.sh" | tail -n1 >&2
if [ -x "$DQ_REPO/tools/build-qemu.sh" ] && [ "${DQ_COMPARE_SKIP_QEMU:-0}" != 1 ]; then
  say "   patched QEMU (tools/build-qemu.sh; cached, ~20 min cold on 2 cores)"
  # A failed QEMU build must not hide the other policies: dirty-quota then reports
  # itself unavailable in the table.
  "$DQ_REPO/tools/build-qemu.sh" | tail -n1 >&2 \
    || say "   WARNING: patched QEMU build failed (above): dirty-quota will report 'unavailable'"
else
  say "   patched QEMU: not built here (no tools/build-qemu.sh or DQ_COMPARE_SKIP_QEMU=1): dirty-quota will report 'unavailable'"
fi
done_step "builds"

step "2/5 local lab up (nspawn dq-src, dq-dst, dq-mon)"
"$DQ_REPO/tools/lab.sh" up
done_step "lab bring-up"

cd "$DQ_REPO"
step "3/5 provision: ansible-playbook playbooks/site.yml"
ansible-playbook -i inventory/local playbooks/site.yml | tee "$DQ_CACHE/lab/site.log" | grep -E '^(PLAY|TASK|changed|fatal|failed)|RECAP|ok=' >&2 || true
grep -q 'failed=[1-9]\|unreachable=[1-9]' "$DQ_CACHE/lab/site.log" && die "site.yml failed: see $DQ_CACHE/lab/site.log"
done_step "provisioning (site.yml)"

step "4/5 migrations: ansible-playbook playbooks/migrate.yml (skewed, 100mbit, none/auto-converge/dirty-quota)"
ansible-playbook -i inventory/local playbooks/migrate.yml "$@" | tee "$DQ_CACHE/lab/migrate.log" \
  | grep --line-buffered -E "^TASK \[(Migrate|Shape|Fresh)|dq-migrate:|fatal|FAILED - RETRYING" \
  | sed -u "s/^FAILED - RETRYING: .*(\([0-9]*\) retries left).*/   ... migrating (poll every 5 s, \1 polls left before giving up)/" >&2 || true
grep -q 'failed=[1-9]\|unreachable=[1-9]' "$DQ_CACHE/lab/migrate.log" && die "migrate.yml failed: see $DQ_CACHE/lab/migrate.log"
done_step "migrations (migrate.yml)"

step "5/5 result"
results=$(readlink -f "$DQ_CACHE/results/latest")
cat "$results/table.txt"
echo "results: $results (one dqlab-run-result JSON per run, table.txt)"
echo "logs:    $DQ_CACHE/lab/site.log $DQ_CACHE/lab/migrate.log"

# Fold the runs into the lab's history, push their summaries to the lab's Pushgateway
# (Prometheus on the monitor host scrapes it) and render the static HTML report.
mon=$(ansible-inventory -i inventory/local --list \
  | python3 -c 'import json,sys; inv=json.load(sys.stdin); h=inv["dq_monitors"]["hosts"][0]; print(inv["_meta"]["hostvars"][h]["ansible_host"])') \
  || die "inventory/local: no monitor host (group dq_monitors) with an ansible_host"
history=$DQ_CACHE/lab/history.jsonl
python -m dq_agent.nightly record --history "$history" --gateway "$mon:9091" "$results"/*.json >&2 \
  || say "   WARNING: could not record or push the results (above); they are kept in $results"
# Exit 1 means a regression against earlier comparisons: reported, not fatal here.
python -m dq_agent.nightly verdict --history "$history" --report-dir "$results/report" >&2 || true
echo "report:     $results/report/index.html"
echo "prometheus: http://$mon:9090 (Pushgateway http://$mon:9091; Grafana provisioning rendered on $mon, server not installed in the local lab)"
if [ "${DQ_COMPARE_DOWN:-0}" = 1 ]; then "$DQ_REPO/tools/lab.sh" down; fi
echo "timings:"
printf '  %s\n' "${timings[@]}"
echo "  total                              $(( $(date +%s) - t_all ))s"
