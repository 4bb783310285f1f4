# Shared shell helpers for tools/*.sh. Sourced, never executed.
# shellcheck shell=bash
DQ_CACHE=${DQ_CACHE:-/var/cache/dqlab}
DQ_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '[dqlab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf 'dqlab: error: %s\n' "$*" >&2; exit 2; }

# The Debian mirror this host already uses, read from its own apt configuration
# (never hard-coded: the lab may sit behind a local mirror).
host_debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  [ -n "$uri" ] || uri=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$uri" ] || die "cannot find the host's Debian mirror in /etc/apt/sources.list{,.d/debian.sources}"
  printf '%s\n' "$uri"
}

# Private apt configuration for trixie (binary + source) and bookworm-backports
# sources, used only to download pinned packages (apt-get -c CONF download/source);
# it never touches the host's own sources. Run `apt-get -c CONF update` first.
private_apt_config() {
  local root=$DQ_CACHE/apt mirror
  mirror=$(host_debian_mirror)
  mkdir -p "$root"/{lists/partial,archives/partial,etc/sources.list.d,etc/preferences.d}
  cat >"$root/etc/sources.list" <<SRC
deb $mirror trixie main
deb-src $mirror trixie main
deb-src $mirror bookworm-backports main
SRC
  cat >"$root/apt.conf" <<CONF
Dir::State::Lists "$root/lists";
Dir::Cache::Archives "$root/archives";
Dir::Etc::SourceList "$root/etc/sources.list";
Dir::Etc::SourceParts "$root/etc/sources.list.d";
Dir::Etc::Preferences "$root/etc/preferences";
Dir::Etc::PreferencesParts "$root/etc/preferences.d";
APT::Get::AllowUnauthenticated "false";
CONF
  printf '%s\n' "$root/apt.conf"
}

apt_list() { grep -hv '^\s*#' "$@" | awk 'NF {print $1}' | sort -u; }
