#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, owned by the `postgres` OS user
# (initdb and postgres refuse to run as root), listening on 127.0.0.1 on a
# free port.
#
#   scripts/pg-throwaway.sh start DIR   # prints a libpq connection string
#   scripts/pg-throwaway.sh stop DIR
#   scripts/pg-throwaway.sh stop-server DIR [fast|immediate]
#   scripts/pg-throwaway.sh start-server DIR
#
# DIR holds the cluster, its unix socket and its log; `stop` removes it.
# `stop-server` stops the server and keeps the cluster (`immediate`: as a
# crash, with recovery at the next start; default `fast`); `start-server`
# starts it again on the same port (an outage, as the chaos suite makes).
set -euo pipefail

usage="usage: pg-throwaway.sh start|stop|stop-server|start-server DIR"
cmd=${1:?$usage}
dir=${2:?$usage}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[[ -x "$bindir/initdb" ]] || { echo "error: PostgreSQL server binaries not found" \
  "under /usr/lib/postgresql (is the postgresql package installed?)" >&2; exit 1; }

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 20000))
    if ! ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
      echo "$port"; return 0
    fi
  done
  echo "error: no free port found" >&2; return 1
}

start_server() {
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $1 -k $dir -c fsync=on \
        -c synchronous_commit=on -c max_connections=200" \
    start >"$dir/pg_ctl.log" 2>&1
}

case "$cmd" in
  start)
    if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2; exit 1; }
    for attempt in 1 2 3 4 5; do
      port=$(free_port)
      if start_server "$port"; then
        echo "$port" >"$dir/port"
        echo "host=127.0.0.1 port=$port user=postgres dbname=postgres"
        exit 0
      fi
      echo "warning: PostgreSQL did not start on port $port (attempt $attempt)" >&2
    done
    cat "$dir/server.log" >&2 || true
    exit 1
    ;;
  stop)
    if [[ -f "$dir/data/postmaster.pid" ]]; then
      as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  stop-server)
    mode=${3:-fast}
    [[ $mode == fast || $mode == immediate ]] || {
      echo "error: stop-server mode must be fast or immediate, got '$mode'" >&2; exit 2; }
    [[ -f "$dir/port" ]] || { echo "error: no throwaway cluster in $dir" >&2; exit 1; }
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >"$dir/pg_ctl.log" 2>&1 || {
      cat "$dir/pg_ctl.log" >&2; exit 1; }
    ;;
  start-server)
    [[ -f "$dir/port" ]] || { echo "error: no throwaway cluster in $dir" >&2; exit 1; }
    start_server "$(cat "$dir/port")" || { cat "$dir/pg_ctl.log" >&2; tail -n 20 "$dir/server.log" >&2; exit 1; }
    ;;
  *)
    echo "$usage" >&2; exit 2 ;;
esac
