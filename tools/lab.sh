#!/usr/bin/env bash
# The nspawn local lab: Debian 13 hosts as systemd-nspawn containers on this machine.
#   tools/lab.sh up      build/reuse the base image, boot dq-src, dq-dst, dq-mon, write
#                        inventory/local/hosts.yml (idempotent: running hosts are kept)
#   tools/lab.sh down    stop everything the lab created: containers, netns, veths, bridge,
#                        apt cache daemon, mounts, host copies (idempotent; works after a
#                        failed `up` because it looks for every name, not for state files)
#   tools/lab.sh status  what is up
# Each host gets CAP_NET_ADMIN for its own netns only (tc shaping on its migration NIC).
# Network: bridge dqbr0 198.18.0.1/24 in the root namespace, one netns per host with a
# veth to the bridge and no default route, so lab hosts reach only 198.18.0.0/24.
# apt inside the hosts goes through apt-cacher-ng bound to 198.18.0.1:3142, whose backend
# is the mirror this machine already uses (read from its apt config, never written here).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LAB=${DQ_LAB_DIR:-$DQ_CACHE/lab}
BRIDGE=dqbr0
GATEWAY=198.18.0.1
PREFIX=24
ACNG_PORT=3142
HOSTS=(dq-src:198.18.0.10 dq-dst:198.18.0.20 dq-mon:198.18.0.30)
INVENTORY=$DQ_REPO/inventory/local/hosts.yml
KEY=$LAB/id_ed25519
KNOWN_HOSTS=$LAB/known_hosts
NSPAWN_RUN=/run/systemd/nspawn
BOOT_TIMEOUT_S=90

name_of() { echo "${1%%:*}"; }
addr_of() { echo "${1##*:}"; }
veth_of() { echo "v-$1"; }              # host side of the host's veth (<= 15 chars)
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_in() { cat "$1" 2>/dev/null || true; }
ssh_lab() {
  local addr=$1; shift
  ssh -q -i "$KEY" -o BatchMode=yes -o ConnectTimeout=3 -o UserKnownHostsFile="$KNOWN_HOSTS" \
    -o StrictHostKeyChecking=yes "root@$addr" "$@"
}

# Processes of one lab host: its nspawn supervisor (found by the unique netns path on its
# command line) and anything still running inside its netns.
host_pids() {
  local name=$1
  { grep -l -z -x -F -- "--network-namespace-path=/run/netns/$name" /proc/[0-9]*/cmdline 2>/dev/null || true; } |
    cut -d/ -f3
  ip netns pids "$name" 2>/dev/null || true
}

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    say "lab: bridge $BRIDGE $GATEWAY/$PREFIX"
    ip link add "$BRIDGE" type bridge
  fi
  ip addr show dev "$BRIDGE" | grep -q "inet $GATEWAY/" || ip addr add "$GATEWAY/$PREFIX" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

ensure_acng() {
  local pid mirror conf=$LAB/acng
  pid=$(pid_in "$LAB/acng.pid")
  if alive "$pid"; then return; fi
  mirror=$(host_debian_mirror)
  mkdir -p "$conf" "$DQ_CACHE/lab-apt-cache" "$LAB/acng-log"
  # Without the remap acng uses its built-in backend list, which may not resolve here (503).
  cat >"$conf/acng.conf" <<CONF
CacheDir: $DQ_CACHE/lab-apt-cache
LogDir: $LAB/acng-log
SupportDir: /usr/lib/apt-cacher-ng
Port: $ACNG_PORT
BindAddress: $GATEWAY
SocketPath: $LAB/acng.sock
PidFile: $LAB/acng.pid
Remap-debrep: file:deb_mirror*.gz /debian ; $mirror
ExThreshold: 14
CONF
  chmod 0644 "$conf/acng.conf"
  say "lab: apt-cacher-ng on $GATEWAY:$ACNG_PORT (backend: this host's mirror)"
  setsid /usr/sbin/apt-cacher-ng -c "$conf" ForeGround=1 >"$LAB/acng-log/stdout.log" 2>&1 </dev/null 8>&- &
  echo $! >"$LAB/acng.pid"
  local i
  for i in $(seq 50); do
    (exec 3<>"/dev/tcp/$GATEWAY/$ACNG_PORT") 2>/dev/null && return
    sleep 0.2
  done
  die "lab: apt-cacher-ng did not listen on $GATEWAY:$ACNG_PORT (see $LAB/acng-log)"
}

ensure_netns() {
  local name=$1 addr=$2 veth
  veth=$(veth_of "$name")
  [ -e "/run/netns/$name" ] || ip netns add "$name"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$name"
  fi
  ip link set "$veth" master "$BRIDGE" up
  ip -n "$name" link set lo up
  ip -n "$name" addr show dev eth0 | grep -q "inet $addr/" || ip -n "$name" addr add "$addr/$PREFIX" dev eth0
  ip -n "$name" link set eth0 up
}

# A fresh copy of the base image with its own identity (clones would share it).
make_machine() {
  local name=$1 rootfs=$2 dir=$LAB/machines/$1 h
  rm -rf "$dir"
  mkdir -p "$LAB/machines"
  cp -a "$rootfs" "$dir"
  echo "$name" >"$dir/etc/hostname"
  cat /proc/sys/kernel/random/uuid | tr -d '-' >"$dir/etc/machine-id"
  {
    echo "127.0.0.1 localhost"
    echo "::1 localhost ip6-localhost ip6-loopback"
    echo "$GATEWAY dq-controller"
    for h in "${HOSTS[@]}"; do echo "$(addr_of "$h") $(name_of "$h")"; done
  } >"$dir/etc/hosts"
  install -d -m 0700 "$dir/root/.ssh"
  install -m 0600 "$KEY.pub" "$dir/root/.ssh/authorized_keys"
  ssh-keygen -q -A -f "$dir" >&2
  printf 'PasswordAuthentication no\nPermitRootLogin prohibit-password\nUseDNS no\n' \
    >"$dir/etc/ssh/sshd_config.d/dqlab.conf"
  rm -f "$dir/.complete"
}

boot_machine() {
  local name=$1 dir=$LAB/machines/$1
  say "lab: booting $name (systemd-nspawn, netns $name)"
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn -q -b -D "$dir" -M "$name" \
    --register=no --keep-unit --console=read-only --capability=CAP_NET_ADMIN \
    --network-namespace-path="/run/netns/$name" \
    >"$LAB/$name.console.log" 2>&1 </dev/null 8>&- &
  echo $! >"$LAB/$name.pid"
}

wait_ssh() {
  local name=$1 addr=$2 pid i
  pid=$(pid_in "$LAB/$name.pid")
  for i in $(seq "$BOOT_TIMEOUT_S"); do
    alive "$pid" || { tail -20 "$LAB/$name.console.log" >&2; die "lab: $name exited while booting"; }
    ssh_lab "$addr" true 2>/dev/null && return
    sleep 1
  done
  tail -20 "$LAB/$name.console.log" >&2
  die "lab: $name: no ssh on $addr after ${BOOT_TIMEOUT_S}s"
}

write_known_hosts() {
  local h tmp=$KNOWN_HOSTS.tmp
  : >"$tmp"
  for h in "${HOSTS[@]}"; do
    echo "$(addr_of "$h"),$(name_of "$h") $(cut -d' ' -f1,2 "$LAB/machines/$(name_of "$h")/etc/ssh/ssh_host_ed25519_key.pub")" >>"$tmp"
  done
  mv "$tmp" "$KNOWN_HOSTS"
}

write_inventory() {
  local h
  mkdir -p "$(dirname "$INVENTORY")"
  {
    echo "---"
    echo "# GENERATED by tools/lab.sh up at $(date -u +%FT%TZ); removed by tools/lab.sh down."
    echo "# Settings live in group_vars/ next to this file; only addresses and keys are here."
    echo "all:"
    echo "  vars:"
    echo "    ansible_user: root"
    echo "    ansible_ssh_private_key_file: $KEY"
    echo "    ansible_ssh_common_args: -o UserKnownHostsFile=$KNOWN_HOSTS -o StrictHostKeyChecking=yes"
    echo "    dq_lab_apt_proxy: http://$GATEWAY:$ACNG_PORT"
    echo "    dq_lab_apt_mirror: $(host_debian_mirror)"
    echo "  children:"
    echo "    dq_sources:"
    echo "      hosts:"
    echo "        dq-src: {ansible_host: $(addr_of "${HOSTS[0]}"), dq_migration_address: $(addr_of "${HOSTS[0]}")}"
    echo "    dq_destinations:"
    echo "      hosts:"
    echo "        dq-dst: {ansible_host: $(addr_of "${HOSTS[1]}"), dq_migration_address: $(addr_of "${HOSTS[1]}")}"
    echo "    dq_monitors:"
    echo "      hosts:"
    echo "        dq-mon: {ansible_host: $(addr_of "${HOSTS[2]}")}"
    echo "    dq_builders:"
    echo "      hosts:"
    echo "        dq-controller: {ansible_connection: local, ansible_python_interpreter: \"{{ ansible_playbook_python }}\"}"
  } >"$INVENTORY.tmp"
  mv "$INVENTORY.tmp" "$INVENTORY"
}

# Cached facts of a previous lab describe other machines (machine-id, keys).
forget_facts() {
  local h
  for h in "${HOSTS[@]}"; do rm -f "$DQ_CACHE/ansible/facts/$(name_of "$h")"; done
}

cmd_up() {
  local t0 rootfs h name addr pid
  t0=$(date +%s)
  for tool in systemd-nspawn debootstrap /usr/sbin/apt-cacher-ng ssh-keygen; do
    command -v "$tool" >/dev/null || die "lab: $tool missing (run ./dqlab setup)"
  done
  mkdir -p "$LAB"
  rootfs=$("$DQ_REPO/tools/build-rootfs.sh" | tail -n1)
  [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C dqlab-lab -f "$KEY"
  mountpoint -q "$NSPAWN_RUN" || { mkdir -p "$NSPAWN_RUN"; mount -t tmpfs -o mode=0755 tmpfs "$NSPAWN_RUN"; }
  ensure_bridge
  ensure_acng
  for h in "${HOSTS[@]}"; do
    name=$(name_of "$h"); addr=$(addr_of "$h")
    ensure_netns "$name" "$addr"
    pid=$(pid_in "$LAB/$name.pid")
    if alive "$pid"; then
      say "lab: $name already running ($addr)"
      continue
    fi
    make_machine "$name" "$rootfs"
    forget_facts
    boot_machine "$name"
  done
  write_known_hosts
  for h in "${HOSTS[@]}"; do
    name=$(name_of "$h"); addr=$(addr_of "$h")
    wait_ssh "$name" "$addr"
  done
  write_inventory
  say "lab: up in $(( $(date +%s) - t0 ))s: ${HOSTS[*]}; inventory $INVENTORY"
}

cmd_down() {
  local h name pid pids i m
  for h in "${HOSTS[@]}"; do
    name=$(name_of "$h")
    pids=$(host_pids "$name" | sort -u | tr '\n' ' ')
    if [ -n "${pids// /}" ]; then
      say "lab: stopping $name"
      # SIGTERM asks nspawn to power the container off cleanly.
      pid=$(pid_in "$LAB/$name.pid")
      alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 40); do
        pids=$(host_pids "$name" | sort -u | tr '\n' ' ')
        [ -z "${pids// /}" ] && break
        sleep 0.25
      done
      # shellcheck disable=SC2086
      [ -n "${pids// /}" ] && kill -KILL $pids 2>/dev/null || true
      for i in $(seq 20); do
        pids=$(host_pids "$name" | sort -u | tr '\n' ' ')
        [ -z "${pids// /}" ] && break
        sleep 0.25
      done
      [ -z "${pids// /}" ] || die "lab: $name: processes survive SIGKILL: $pids"
    fi
    ip link del "$(veth_of "$name")" 2>/dev/null || true
    [ -e "/run/netns/$name" ] && ip netns del "$name"
    rm -f "$LAB/$name.pid"
    # nspawn mounts live in its own mount namespace; a crash could still leave some here.
    for m in $(findmnt -rn -o TARGET | grep -F "$LAB/machines/$name" | sort -r); do umount -l "$m" || true; done
    rm -rf "${LAB:?}/machines/$name"
  done
  pid=$(pid_in "$LAB/acng.pid")
  if alive "$pid"; then
    say "lab: stopping apt-cacher-ng"
    kill -TERM "$pid"
    for i in $(seq 40); do alive "$pid" || break; sleep 0.25; done
    alive "$pid" && kill -KILL "$pid"
  fi
  rm -f "$LAB/acng.pid" "$LAB/acng.sock"
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    say "lab: removing bridge $BRIDGE"
    ip link del "$BRIDGE"
  fi
  if mountpoint -q "$NSPAWN_RUN" && ! pgrep -x systemd-nspawn >/dev/null; then
    umount "$NSPAWN_RUN"
  fi
  rm -f "$INVENTORY" "$KNOWN_HOSTS"
  forget_facts
  say "lab: down"
}

cmd_status() {
  local h name pid
  for h in "${HOSTS[@]}"; do
    name=$(name_of "$h"); pid=$(pid_in "$LAB/$name.pid")
    if alive "$pid"; then echo "$name $(addr_of "$h") running (pid $pid)"; else echo "$name down"; fi
  done
}

[ "$(id -u)" = 0 ] || die "lab: must run as root (netns, bridge, nspawn)"
mkdir -p "$LAB"
exec 8>"$LAB.lock"
flock -w 300 8 || die "lab: another lab operation holds $LAB.lock"
case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: tools/lab.sh up|down|status" >&2; exit 2 ;;
esac
