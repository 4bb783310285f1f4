#!/usr/bin/env bash
# Install everything a dqlab run needs on a fresh Debian 12 (or 13) machine:
# apt packages (incl. QEMU >= 10 from bookworm-backports), and the pinned
# Python virtualenv. Idempotent; safe to re-run. Prints what it does.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

codename=$(. /etc/os-release; echo "${VERSION_CODENAME:-}")
case "$codename" in
  bookworm|trixie) ;;
  *) die "host OS: need Debian 12 (bookworm) or 13 (trixie), found '${codename:-unknown}'" ;;
esac

if [ "$codename" = bookworm ]; then
  # QEMU 7.2 loses dirty pages under TCG (fixed in 9.0); backports has 10.0.
  src=/etc/apt/sources.list.d/dqlab-backports.sources
  if [ ! -f "$src" ]; then
    say "adding bookworm-backports (mirror from the host's apt config)"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$(host_debian_mirror)" >"$src"
  fi
fi

stamp=$DQ_CACHE/apt-stamp
want=$(cat "$DQ_REPO"/tools/deps/apt-*.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "apt-get update"
  apt-get update -q >/dev/null
  mapfile -t pkgs < <(apt_list "$DQ_REPO"/tools/deps/apt-*.txt)
  say "apt-get install ${#pkgs[@]} packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
  if [ "$codename" = bookworm ] && [ -f "$DQ_REPO/tools/deps/apt-backports.list" ]; then
    mapfile -t bp < <(apt_list "$DQ_REPO"/tools/deps/apt-backports.list)
    say "apt-get install from bookworm-backports: ${bp[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t bookworm-backports "${bp[@]}" >/dev/null
  fi
  mkdir -p "$DQ_CACHE"; echo "$want" >"$stamp"
else
  say "apt packages up to date"
fi

"$DQ_REPO"/tools/setup-venv.sh
