#!/usr/bin/env bash
# Builds every image the container path needs, from Debian's package registry and PyPI
# only: nothing is pulled from an image registry.
#
#   localhost/arcserve-debian:bookworm     base: debootstrap --variant=minbase, imported
#   localhost/arcserve-rabbitmq:bookworm   Debian's rabbitmq-server   (deploy/images/rabbitmq)
#   localhost/arcserve-postgres:bookworm   Debian's postgresql        (deploy/images/postgres)
#   localhost/arcserve-licensing:local     the services (Dockerfile, BASE_IMAGE = the base above)
#
# An image is rebuilt only when its inputs changed: each carries a label with the hash of
# its inputs (and of the image it is built on), and a matching label means "already built".
# ENGINE=podman|docker picks the engine (default: podman when installed). Needs root for
# debootstrap.
set -euo pipefail
cd "$(dirname "$0")/../.."

ENGINE="${ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE="localhost/arcserve-debian:${SUITE}"
RABBITMQ="localhost/arcserve-rabbitmq:${SUITE}"
POSTGRES="localhost/arcserve-postgres:${SUITE}"
APP="localhost/arcserve-licensing:local"
LABEL="org.arcserve.inputs"
BASE_RECIPE=1

say() { printf '%s\n' "build-images: $*"; }
ROOTFS=""  # the base image's root while it is made; removed on the way out, however that goes
trap 'if [ -n "$ROOTFS" ]; then rm -rf "$ROOTFS" "$ROOTFS.log"; fi' EXIT

hash_of() {  # hash_of TEXT FILE… : a stable hash of some text and the content of files
  local text=$1; shift
  { printf '%s\n' "$text"
    if (($#)); then
      find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
    fi; } | sha256sum | cut -c1-16
}

current() {  # the inputs label of an image, or nothing when it is absent
  "$ENGINE" image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

image_id() { "$ENGINE" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

forget() {  # forget OLD_ID IMAGE: remove the image a rebuild replaced, unless still in use
  local old=$1 image=$2
  if [ -n "$old" ] && [ "$old" != "$(image_id "$image")" ]; then "$ENGINE" rmi "$old" >/dev/null 2>&1 || true; fi
}

# Certificates the building machine trusts beyond Debian's own (a TLS-inspecting proxy's
# CA, say): the images must trust them too, or pip cannot reach PyPI from inside a build.
extra_certificates() {  # extra_certificates ROOTFS
  python3 - "$1" <<'EOF'
import re, sys
from pathlib import Path

def certs(path):
    text = Path(path).read_text() if Path(path).exists() else ""
    return re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)

rootfs = Path(sys.argv[1])
known = set(certs(rootfs / "etc/ssl/certs/ca-certificates.crt"))
extra = [c for c in certs("/etc/ssl/certs/ca-certificates.crt") if c not in known]
target = rootfs / "usr/local/share/ca-certificates"
for n, cert in enumerate(extra):
    (target / f"build-host-{n}.crt").write_text(cert + "\n")
print(len(extra))
EOF
}

build_base() {
  local inputs
  # Bump BASE_RECIPE when the steps below change what goes into the base.
  inputs=$(hash_of "recipe $BASE_RECIPE $SUITE $MIRROR $(sha256sum /etc/ssl/certs/ca-certificates.crt 2>/dev/null)")
  if [ "$(current "$BASE")" = "$inputs" ]; then say "$BASE is up to date"; return; fi
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
  local started=$SECONDS old rootfs
  old=$(image_id "$BASE")
  ROOTFS=$(mktemp -d /tmp/arcserve-rootfs.XXXXXX)
  rootfs=$ROOTFS
  say "debootstrap $SUITE ($MIRROR) into $rootfs"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; exit 1; }
  rm -f "$rootfs.log"
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} $SUITE-security main
EOF
  local extra
  extra=$(extra_certificates "$rootfs")
  if [ "$extra" != 0 ]; then
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    say "the image trusts $extra extra CA certificate(s) of this machine"
  fi
  # Keep images small, as Debian's official images do: no apt lists, caches or docs.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | "$ENGINE" import --quiet \
    --change "LABEL $LABEL=$inputs" --change 'CMD ["bash"]' - "$BASE" >/dev/null
  forget "$old" "$BASE"
  say "$BASE built in $((SECONDS - started)) s"
}

build() {  # build IMAGE CONTEXT DOCKERFILE INPUT…  (inputs: every file it is built from)
  local image=$1 context=$2 dockerfile=$3; shift 3
  local inputs started=$SECONDS old
  inputs=$(hash_of "$(image_id "$BASE")" "$@")
  old=$(image_id "$image")
  if [ "$(current "$image")" = "$inputs" ]; then say "$image is up to date"; return; fi
  say "building $image"
  local engine_args=()
  # Podman: its build network cannot reach out here; Docker's image format keeps what OCI
  # drops (HEALTHCHECK, SHELL).
  if [ "$ENGINE" = podman ]; then engine_args=(--network host --format docker); fi
  "$ENGINE" build "${engine_args[@]}" --quiet --build-arg "BASE_IMAGE=$BASE" --label "$LABEL=$inputs" \
    -f "$dockerfile" -t "$image" "$context" >/dev/null
  forget "$old" "$image"
  say "$image built in $((SECONDS - started)) s"
}

started=$SECONDS
build_base
build "$RABBITMQ" deploy/images/rabbitmq deploy/images/rabbitmq/Dockerfile deploy/images/rabbitmq
build "$POSTGRES" deploy/images/postgres deploy/images/postgres/Dockerfile deploy/images/postgres
build "$APP" . Dockerfile Dockerfile .dockerignore requirements.txt shared services
say "images ready in $((SECONDS - started)) s"
