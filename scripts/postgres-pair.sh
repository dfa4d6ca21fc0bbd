#!/usr/bin/env bash
# A local PostgreSQL primary and its streaming standby, for the fault suite's database
# failover (issue 12), made from the machine's own Debian PostgreSQL beside its main cluster
# and never touching it: nodes pg1 and pg2 with their own ports, data directories and
# sockets under /tmp/arcserve-postgres-pair. Replication is synchronous (a commit returns
# once the standby has it, `synchronous_standby_names = 'ANY 1 (pg1, pg2)'` on both, so
# whichever is primary waits for the other): what a client was told is committed survives
# the loss of the primary.
#
#   scripts/postgres-pair.sh start            make (first time) and start both: pg1 primary,
#                                             pg2 its standby made with pg_basebackup
#   scripts/postgres-pair.sh kill NODE        kill -9 the node's postmaster
#   scripts/postgres-pair.sh promote NODE     promote the standby NODE to primary
#   scripts/postgres-pair.sh rejoin NODE      make NODE (an old primary) a standby of the other
#                                             node again: a fresh pg_basebackup, then started
#   scripts/postgres-pair.sh primary          which node is the primary now
#   scripts/postgres-pair.sh url [DATABASE]   the multi-host URL a client uses (read-write)
#   scripts/postgres-pair.sh status           each node: primary, standby or down
#   scripts/postgres-pair.sh remove           stop both and delete their directories
#
# POSTGRES_PAIR_DIR (/tmp/arcserve-postgres-pair), POSTGRES_PAIR_PORT (5441: pg1's; pg2 the next).
set -euo pipefail

BASE="$(realpath -m "${POSTGRES_PAIR_DIR:-/tmp/arcserve-postgres-pair}")"
FIRST_PORT="${POSTGRES_PAIR_PORT:-5441}"
NODES=(pg1 pg2)
VERSION="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n1)"
BIN="/usr/lib/postgresql/$VERSION/bin"
say() { printf '%s\n' "postgres-pair: $*"; }

port() {
  case "$1" in
    pg1) echo "$FIRST_PORT" ;;
    pg2) echo $((FIRST_PORT + 1)) ;;
    *) say "no node $1; the nodes are ${NODES[*]}" >&2; exit 2 ;;
  esac
}
other() { if [ "$1" = pg1 ]; then echo pg2; else echo pg1; fi; }
as_postgres() { runuser -u postgres -- "$@"; }
pg() { as_postgres "$BIN/$1" "${@:2}"; }
running() { [ -f "$BASE/$1/postmaster.pid" ] && kill -0 "$(head -n1 "$BASE/$1/postmaster.pid")" 2>/dev/null; }
query() { as_postgres psql -h "$BASE" -p "$(port "$1")" -U postgres -d postgres -XAtqc "$2" 2>/dev/null; }
role() {  # primary, standby or down
  if ! running "$1"; then echo down; return; fi
  case "$(query "$1" 'SELECT pg_is_in_recovery()')" in
    f) echo primary ;;
    t) echo standby ;;
    *) echo down ;;
  esac
}

settings() {  # settings NODE: what makes the node itself, whichever role it has
  cat >>"$BASE/$1/postgresql.auto.conf" <<EOF
port = $(port "$1")
listen_addresses = '127.0.0.1'
unix_socket_directories = '$BASE'
cluster_name = '$1'
wal_level = replica
hot_standby = on
max_connections = 200
synchronous_commit = on
synchronous_standby_names = 'ANY 1 (pg1, pg2)'
EOF
}

start_node() {
  running "$1" && return
  pg pg_ctl -D "$BASE/$1" -l "$BASE/$1.log" -w -t 60 start >/dev/null
  say "$1 is up ($(role "$1"), 127.0.0.1:$(port "$1"))"
}

standby_of() {  # standby_of NODE PRIMARY: NODE's directory made afresh from PRIMARY
  rm -rf "${BASE:?}/$1"
  pg pg_basebackup -h "$BASE" -p "$(port "$2")" -U postgres -D "$BASE/$1" -X stream -R -c fast
  settings "$1"
}

case "${1:-}" in
  start)
    if [ ! -x "$BIN/initdb" ]; then say "needs Debian's postgresql package (no $BIN/initdb)" >&2; exit 1; fi
    mkdir -p "$BASE"
    chown postgres: "$BASE"
    if [ ! -d "$BASE/pg1" ]; then
      pg initdb -D "$BASE/pg1" -U postgres --auth=trust >/dev/null
      settings pg1
    fi
    start_node pg1
    [ -d "$BASE/pg2" ] || standby_of pg2 pg1
    start_node pg2
    ;;
  kill)
    [ $# = 2 ] || { say "usage: $0 kill NODE" >&2; exit 2; }
    port "$2" >/dev/null
    running "$2" || { say "$2 is not running" >&2; exit 1; }
    pid=$(head -n1 "$BASE/$2/postmaster.pid")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    say "$2 killed (postmaster $pid)"
    ;;
  promote)
    [ $# = 2 ] || { say "usage: $0 promote NODE" >&2; exit 2; }
    pg pg_ctl -D "$BASE/$2" -w -t 60 promote >/dev/null
    say "$2 is $(role "$2")"
    ;;
  rejoin)
    [ $# = 2 ] || { say "usage: $0 rejoin NODE" >&2; exit 2; }
    primary=$(other "$2")
    [ "$(role "$primary")" = primary ] || { say "$primary is not a primary: nothing to rejoin" >&2; exit 1; }
    if running "$2"; then pg pg_ctl -D "$BASE/$2" -m immediate stop >/dev/null; fi
    standby_of "$2" "$primary"
    start_node "$2"
    ;;
  primary)
    for node in "${NODES[@]}"; do
      if [ "$(role "$node")" = primary ]; then echo "$node"; fi
    done
    ;;
  url)
    echo "postgresql://postgres@127.0.0.1:$(port pg1),127.0.0.1:$(port pg2)/${2:-postgres}?target_session_attrs=read-write"
    ;;
  status)
    for node in "${NODES[@]}"; do echo "$node $(role "$node")"; done
    ;;
  remove)
    for node in "${NODES[@]}"; do
      if running "$node"; then pg pg_ctl -D "$BASE/$node" -m immediate stop >/dev/null; fi
    done
    rm -rf "$BASE"
    ;;
  *)
    sed -n '2,22p' "$0" >&2
    exit 2
    ;;
esac
