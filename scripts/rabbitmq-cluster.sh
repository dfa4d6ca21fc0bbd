#!/usr/bin/env bash
# A local three-node RabbitMQ cluster for the fault suite's broker node loss (issue 12), made
# from the machine's own Debian rabbitmq-server beside its main node and never touching it:
# nodes rc1..rc3 with their own names, AMQP ports, distribution ports, management ports,
# config, data and log directories under /tmp/arcserve-rabbitmq-cluster, and an Erlang cookie of
# their own. They form one cluster on first boot (classic config peer discovery).
#
#   scripts/rabbitmq-cluster.sh start [NODE…]   start the nodes (all by default) that are down,
#                                               each waited for until it answers AMQP
#   scripts/rabbitmq-cluster.sh kill NODE       kill -9 the node's Erlang VM
#   scripts/rabbitmq-cluster.sh stop            stop every node (data kept)
#   scripts/rabbitmq-cluster.sh remove          stop them and delete their directories
#   scripts/rabbitmq-cluster.sh urls            the AMQP URL of every node, comma-separated
#   scripts/rabbitmq-cluster.sh management      the management API of the first node
#   scripts/rabbitmq-cluster.sh status          each node: up or down
#   scripts/rabbitmq-cluster.sh ctl NODE ARGS…  rabbitmqctl against NODE
#
# RABBITMQ_CLUSTER_DIR (/tmp/arcserve-rabbitmq-cluster), RABBITMQ_CLUSTER_PORT (5691: rc1's AMQP port;
# rc2 and rc3 take the next ones; distribution ports +20000, management +10000).
set -euo pipefail
cd "$(dirname "$0")/.."

# One per machine, like the main node: whichever checkout started it can stop it.
BASE="$(realpath -m "${RABBITMQ_CLUSTER_DIR:-/tmp/arcserve-rabbitmq-cluster}")"
FIRST_PORT="${RABBITMQ_CLUSTER_PORT:-5691}"
NODES=(rc1 rc2 rc3)
BIN=/usr/lib/rabbitmq/bin
DEADLINE_S="${RABBITMQ_START_DEADLINE_S:-90}"
say() { printf '%s\n' "rabbitmq-cluster: $*"; }

index() {  # index NODE: its position, 0-based
  local i
  for i in "${!NODES[@]}"; do [ "${NODES[$i]}" = "$1" ] && { echo "$i"; return; }; done
  say "no node $1; the nodes are ${NODES[*]}" >&2
  exit 2
}
amqp_port() { echo $((FIRST_PORT + $(index "$1"))); }

prepare() {
  if [ ! -x "$BIN/rabbitmq-server" ]; then
    say "needs the Debian rabbitmq-server package (no $BIN/rabbitmq-server): apt-get install rabbitmq-server" >&2
    exit 1
  fi
  mkdir -p "$BASE"
  if [ ! -f "$BASE/.erlang.cookie" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$BASE/.erlang.cookie")
    chmod 400 "$BASE/.erlang.cookie"
  fi
  echo "[rabbitmq_management]." >"$BASE/enabled_plugins"
  printf '%s\n' "ulimit -S -n \"\$(ulimit -H -n)\"" >"$BASE/rabbitmq-env.conf"
  local node port i
  for node in "${NODES[@]}"; do
    port=$(amqp_port "$node")
    mkdir -p "$BASE/$node/log" "$BASE/$node/data"
    {
      echo "listeners.tcp.local = 127.0.0.1:$port"
      echo "management.tcp.ip = 127.0.0.1"
      echo "management.tcp.port = $((port + 10000))"
      echo "cluster_formation.peer_discovery_backend = classic_config"
      for i in "${!NODES[@]}"; do echo "cluster_formation.classic_config.nodes.$((i + 1)) = ${NODES[$i]}@localhost"; done
      # A node that comes back after kill -9 rejoins; a partition pauses the minority.
      echo "cluster_partition_handling = pause_minority"
    } >"$BASE/$node/rabbitmq.conf"
  done
}

as_node() {  # as_node NODE COMMAND…: a rabbitmq script with that node's environment
  local node=$1 port
  shift
  port=$(amqp_port "$node")
  env HOME="$BASE" \
    RABBITMQ_NODENAME="$node@localhost" RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT=$((port + 20000)) \
    RABBITMQ_CONFIG_FILE="$BASE/$node/rabbitmq.conf" RABBITMQ_CONF_ENV_FILE="$BASE/rabbitmq-env.conf" \
    RABBITMQ_MNESIA_BASE="$BASE/$node/data" RABBITMQ_LOG_BASE="$BASE/$node/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$BASE/enabled_plugins" RABBITMQ_PID_FILE="$BASE/$node/pid" \
    ERL_EPMD_ADDRESS=127.0.0.1 ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    ERL_CRASH_DUMP="$BASE/$node/log/erl_crash.dump" \
    "$@"
}

ctl() { local node=$1; shift; as_node "$node" "$BIN/rabbitmqctl" -n "$node@localhost" "$@"; }
# Registered with epmd: its VM runs (asking the node itself takes seconds when it is down).
registered() { epmd -names 2>/dev/null | grep -q "^name $1 at port "; }
up() { registered "$1" && ctl "$1" -q status >/dev/null 2>&1; }

start_node() {
  local node=$1 started=$SECONDS
  if up "$node"; then return; fi
  as_node "$node" nohup "$BIN/rabbitmq-server" >"$BASE/$node/log/startup.log" 2>&1 &
  until ctl "$node" -q await_startup >/dev/null 2>&1; do
    if ((SECONDS - started > DEADLINE_S)); then
      say "$node did not start within ${DEADLINE_S}s (see $BASE/$node/log)" >&2
      exit 1
    fi
    sleep 1
  done
  AMQP_URL="amqp://guest:guest@127.0.0.1:$(amqp_port "$node")/" \
    python3 scripts/amqp_probe.py --deadline "$DEADLINE_S" >/dev/null
  say "$node is up (AMQP 127.0.0.1:$(amqp_port "$node"))"
}

os_pid() { ctl "$1" -q eval 'list_to_integer(os:getpid()).' 2>/dev/null; }

case "${1:-}" in
  start)
    shift
    prepare
    for node in "${@:-${NODES[@]}}"; do start_node "$node"; done
    ;;
  kill)
    [ $# = 2 ] || { say "usage: $0 kill NODE" >&2; exit 2; }
    pid=$(os_pid "$2") || { say "$2 is not running" >&2; exit 1; }
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    say "$2 killed (pid $pid)"
    ;;
  stop)
    for node in "${NODES[@]}"; do
      if registered "$node"; then ctl "$node" -q stop >/dev/null; fi
    done
    ;;
  remove)
    "$0" stop
    rm -rf "$BASE"
    ;;
  urls)
    urls=()
    for node in "${NODES[@]}"; do urls+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$node")/"); done
    (IFS=,; echo "${urls[*]}")
    ;;
  management)
    echo "http://127.0.0.1:$((FIRST_PORT + 10000))"
    ;;
  status)
    for node in "${NODES[@]}"; do
      if up "$node"; then echo "$node up"; else echo "$node down"; fi
    done
    ;;
  ctl)
    shift
    node=$1
    shift
    ctl "$node" "$@"
    ;;
  *)
    sed -n '2,20p' "$0" >&2
    exit 2
    ;;
esac
