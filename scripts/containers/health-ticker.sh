#!/usr/bin/env bash
# Runs containers' health checks on a Podman host without systemd. Podman schedules health
# checks with systemd timers; without systemd they never run, every container stays
# "starting", and compose's `condition: service_healthy` waits forever. This loop does the
# timers' work: containers still starting (or unhealthy) are checked every second, healthy
# ones every HEALTHY_INTERVAL_S (10, compose's interval). One ticker per machine (a lock);
# it exits once no container with a health check has run for a minute.
set -uo pipefail

HEALTHY_INTERVAL_S="${HEALTHY_INTERVAL_S:-10}"
LOCK="${PODMAN_HEALTH_TICKER_LOCK:-/run/podman/arcserve-health-ticker.lock}"
mkdir -p "$(dirname "$LOCK")"
exec 9>"$LOCK"
flock -n 9 || exit 0  # another ticker is at work

idle_since=$SECONDS tick=0
while true; do
  checked=0
  while read -r id status; do
    [ -n "$id" ] || continue
    checked=1
    case "$status" in
      *"(healthy)"*) ((tick % HEALTHY_INTERVAL_S == 0)) || continue ;;
      *"(starting)"* | *"(unhealthy)"*) ;;
      *) continue ;;
    esac
    podman healthcheck run "$id" >/dev/null 2>&1 &
  done < <(podman ps --filter status=running --format '{{.ID}} {{.Status}}' 2>/dev/null | grep -E '\((healthy|unhealthy|starting)\)')
  wait
  if ((checked)); then idle_since=$SECONDS; elif ((SECONDS - idle_since > 60)); then exit 0; fi
  tick=$((tick + 1))
  sleep 1
done
