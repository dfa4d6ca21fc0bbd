#!/usr/bin/env bash
# Makes Podman ready for the container path on a machine without a Docker engine, and
# does nothing that is already done:
#   - installs podman, debootstrap and docker-compose (and runc on cgroup v1 hosts) from
#     Debian's packages;
#   - a containers.conf drop-in (/etc/containers/containers.conf.d/50-arcserve-licensing.conf):
#       default_ulimits = []  containers inherit the open-files limit instead of asking for
#                             one the host may refuse to grant;
#       runtime = "runc"      on cgroup v1 (and hybrid) hosts, where crun cannot run;
#   - Podman's Docker-compatible API on $PODMAN_SOCKET (default /run/podman/podman.sock),
#     which docker-compose and testcontainers talk to.
set -euo pipefail

SOCKET="${PODMAN_SOCKET:-/run/podman/podman.sock}"
DROP_IN=/etc/containers/containers.conf.d/50-arcserve-licensing.conf
say() { printf '%s\n' "podman-setup: $*"; }

cgroup_v1() { [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ]; }

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v docker-compose >/dev/null || missing+=(docker-compose)
cgroup_v1 && ! command -v runc >/dev/null && missing+=(runc)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "install ${missing[*]} first (Debian: apt-get install ${missing[*]}), then run this again" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

wanted=$'# Written by arcserve-licensing (scripts/containers/podman-setup.sh); safe to delete.\n[containers]\ndefault_ulimits = []\n'
cgroup_v1 && wanted+=$'\n[engine]\nruntime = "runc"\n'
if [ "$(cat "$DROP_IN" 2>/dev/null)"$'\n' != "$wanted" ]; then
  mkdir -p "$(dirname "$DROP_IN")"
  printf '%s' "$wanted" >"$DROP_IN"
  say "wrote $DROP_IN"
fi

if ! podman --url "unix://$SOCKET" version >/dev/null 2>&1; then
  mkdir -p "$(dirname "$SOCKET")"
  # Detached from this shell and its process group, and from this directory (the containers
  # it starts inherit its working directory, which a clean clone may delete): the API
  # outlives the command that started it, as a socket-activated service would.
  # Every descriptor is redirected before anything runs in the background: a service that
  # kept this script's stdout open would hold whoever reads it (a CI log pipe) forever.
  (cd / && exec setsid podman system service --time=0 "unix://$SOCKET") >"$(dirname "$SOCKET")/service.log" 2>&1 </dev/null &
  for _ in $(seq 1 50); do
    podman --url "unix://$SOCKET" version >/dev/null 2>&1 && break
    sleep 0.2
  done
  podman --url "unix://$SOCKET" version >/dev/null || { say "the Podman API did not start on $SOCKET" >&2; exit 1; }
  say "Podman API listening on $SOCKET"
fi
