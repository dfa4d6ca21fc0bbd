# shellcheck shell=bash
# Sourced (`. scripts/containers/env.sh`): which engine the container path uses, and what
# the compose tool and testcontainers need to know about it.
#   docker  a Docker engine answers: official images, `docker compose`.
#   podman  otherwise: Podman's Docker-compatible API, images built here from Debian's
#           packages (scripts/containers/build-images.sh), docker-compose 1.29.
# ARCSERVE_CONTAINER_ENGINE=docker|podman overrides the choice.
if [ -z "${ARCSERVE_CONTAINER_ENGINE:-}" ]; then
  # The Docker client also answers for Podman behind DOCKER_HOST: ask who serves.
  if docker version --format '{{range .Server.Components}}{{.Name}};{{end}}' 2>/dev/null | grep -q '^Engine;'; then
    ARCSERVE_CONTAINER_ENGINE=docker
  else
    ARCSERVE_CONTAINER_ENGINE=podman
  fi
fi
export ARCSERVE_CONTAINER_ENGINE

if [ "$ARCSERVE_CONTAINER_ENGINE" = podman ]; then
  export PODMAN_SOCKET="${PODMAN_SOCKET:-/run/podman/podman.sock}"
  export DOCKER_HOST="unix://$PODMAN_SOCKET"
  # The compose files, for docker-compose run by hand too.
  export COMPOSE_FILE="docker-compose.yml:docker-compose.local-images.yml"
  # Ryuk (testcontainers' reaper) needs a privileged sidecar from a registry; the fixtures
  # remove their own containers. This host has /.dockerenv, which would make testcontainers
  # look for a gateway as if it ran inside a container.
  export TESTCONTAINERS_RYUK_DISABLED=true
  export TESTCONTAINERS_CONNECTION_MODE=docker_host
  export ARCSERVE_TEST_RABBITMQ_IMAGE="${ARCSERVE_TEST_RABBITMQ_IMAGE:-localhost/arcserve-rabbitmq:bookworm}"
  export ARCSERVE_TEST_POSTGRES_IMAGE="${ARCSERVE_TEST_POSTGRES_IMAGE:-localhost/arcserve-postgres:bookworm}"
fi
