#!/usr/bin/env bash
# The compose tool of the container path, on either engine (see env.sh):
#   scripts/containers/compose.sh up -d        scripts/containers/compose.sh down -v
# On Docker, `up` builds the app image. On Podman the compose files include the override
# with the local images (env.sh), and on a host without systemd `up` starts the health-check
# ticker, so that `condition: service_healthy` holds as on Docker.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/containers/env.sh

if [ "$ARCSERVE_CONTAINER_ENGINE" = docker ] && docker compose version >/dev/null 2>&1; then
  tool=(docker compose)
else
  tool=(docker-compose)
fi
args=("$@")
if [ "${1:-}" = up ]; then
  if [ "$ARCSERVE_CONTAINER_ENGINE" = docker ]; then
    args+=(--build)  # on Podman, build-images.sh built them
  elif [ ! -d /run/systemd/system ]; then
    # Detached with every descriptor redirected, or it would hold the caller's stdout open.
    (ticker=$PWD/scripts/containers/health-ticker.sh && cd / && exec setsid "$ticker") >/dev/null 2>&1 </dev/null &
  fi
fi
exec "${tool[@]}" "${args[@]}"
