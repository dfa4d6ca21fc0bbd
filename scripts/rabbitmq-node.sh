#!/usr/bin/env bash
# Starts or restarts the machine's own RabbitMQ node (Debian's rabbitmq-server), always with a
# sane open-files limit, and waits for an AMQP handshake, not an open port:
#
#   scripts/rabbitmq-node.sh start     start it if it is down; restart it if it runs with too
#                                      low a limit; enable the management plugin (the
#                                      provisioning step talks to its API)
#   scripts/rabbitmq-node.sh restart   stop and start the whole node (the fault suite's fault 2)
#   scripts/rabbitmq-node.sh limit     print the node's open-files limit
#
# Why: Debian's start script switches to the rabbitmq user with su, which resets the soft
# open-files limit to 1,024. RabbitMQ 3.10 then allows itself about 927 file handles, a few
# hundred quorum queues use them up, and from then on every new connection is accepted at
# TCP level and never answered. The fix is one line in rabbitmq-env.conf (sourced by the
# server's own scripts after su): raise the soft limit to the hard one.
#
# RABBITMQ_MIN_OPEN_FILES (4096): fail loudly when the node runs with less.
# AMQP_URL: what the handshake logs in with (default guest on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

ENV_CONF="${RABBITMQ_CONF_ENV_FILE:-/etc/rabbitmq/rabbitmq-env.conf}"
MIN_OPEN_FILES="${RABBITMQ_MIN_OPEN_FILES:-4096}"
DEADLINE_S="${RABBITMQ_START_DEADLINE_S:-90}"
MARK="# arcserve-licensing: keep the open-files limit that su resets (scripts/rabbitmq-node.sh)"
say() { printf '%s\n' "rabbitmq-node: $*"; }

keep_open_files_limit() {
  grep -qxF "$MARK" "$ENV_CONF" 2>/dev/null && return
  mkdir -p "$(dirname "$ENV_CONF")"
  # shellcheck disable=SC2016  # written for the server's shell to expand, not ours
  printf '\n%s\nulimit -S -n "$(ulimit -H -n)"\n' "$MARK" >>"$ENV_CONF"
  say "$ENV_CONF now raises the node's open-files limit to its hard limit"
}

running() { rabbitmqctl -q status >/dev/null 2>&1; }

limit() {  # the running node's soft open-files limit, from the OS; nothing when it is down
  local pid
  pid=$(rabbitmqctl -q eval 'list_to_integer(os:getpid()).' 2>/dev/null) || return 0
  awk '/^Max open files/ { print $4 }' "/proc/$pid/limits" 2>/dev/null || true
}

await_node() {
  local started=$SECONDS
  until rabbitmqctl -q await_startup >/dev/null 2>&1; do
    if ((SECONDS - started > DEADLINE_S)); then say "the node did not start within ${DEADLINE_S}s" >&2; exit 1; fi
    sleep 1
  done
  python3 scripts/amqp_probe.py --deadline "$DEADLINE_S" >/dev/null || {
    python3 scripts/amqp_probe.py --deadline 1 || true
    say "the node runs but does not complete an AMQP handshake; see README, Troubleshooting" >&2
    exit 1
  }
}

check_limit() {  # check_limit [BEFORE]
  local now
  now=$(limit)
  if [ -z "$now" ]; then say "cannot read the node's open-files limit" >&2; exit 1; fi
  if ((now < MIN_OPEN_FILES)); then
    say "the node runs with an open-files limit of $now, below $MIN_OPEN_FILES; raise the hard limit (ulimit -Hn) of the shell that starts it" >&2
    exit 1
  fi
  if [ -n "${1:-}" ] && ((now < $1)); then
    say "the open-files limit dropped from $1 to $now across the restart" >&2
    exit 1
  fi
  say "running; open-files limit $now; AMQP handshake completed"
}

start_node() {
  rabbitmq-server -detached
  await_node
}

case "${1:-}" in
  start)
    keep_open_files_limit
    if running; then
      current=$(limit)
      if [ -n "$current" ] && ((current < MIN_OPEN_FILES)); then
        say "running with an open-files limit of $current: restarting it with the setting above"
        rabbitmqctl -q shutdown  # returns once the node's process has exited
        start_node
      else
        await_node
      fi
    else
      say "starting RabbitMQ"
      start_node
    fi
    check_limit
    if ! rabbitmq-plugins -q list -e -m 2>/dev/null | grep -qx rabbitmq_management; then
      rabbitmq-plugins -q enable rabbitmq_management >/dev/null
      say "enabled the management plugin"
    fi
    ;;
  restart)
    keep_open_files_limit
    before=$(limit)
    rabbitmqctl -q shutdown  # returns once the node's process has exited
    start_node
    check_limit "$before"
    ;;
  limit)
    limit
    ;;
  *)
    echo "usage: $0 start|restart|limit" >&2
    exit 2
    ;;
esac
