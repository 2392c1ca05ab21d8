#!/usr/bin/env bash
# The five-minute tour: starts a node on the embedded store with
# examples/workflows/, starts the demo order workflow, waits until it awaits
# an operator's approval (after a 2 s cool-down), approves it from the CLI,
# shows the finished history, and stops the node with SIGTERM.
#
#   scripts/demo.sh [PATH_TO_CEREBELUM_BINARY]
#
# Environment: CEREBELUM_DATA_DIR (default: a fresh temporary directory),
# CEREBELUM_LISTEN (default 127.0.0.1:9740), CEREBELUM_HTTP (127.0.0.1:9741).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:-$root/build/src/cerebelum}
listen=${CEREBELUM_LISTEN:-127.0.0.1:9740}
http=${CEREBELUM_HTTP:-127.0.0.1:9741}
data_dir=${CEREBELUM_DATA_DIR:-$(mktemp -d /tmp/cerebelum-demo.XXXXXX)}
log=$data_dir/node.log
node_pid=

[[ -x "$bin" ]] || { echo "no cerebelum binary at $bin (build first)" >&2; exit 1; }
mkdir -p "$data_dir"

stop_node() {
  if [[ -n "$node_pid" ]] && kill -0 "$node_pid" 2>/dev/null; then
    echo "==> stopping the node (SIGTERM)"
    kill -TERM "$node_pid"
    wait "$node_pid" && echo "    node exited 0" || echo "    node exited $?"
  fi
}
trap stop_node EXIT

cli() { "$bin" --log-level warn --server "$listen" "$@"; }

# Prints the status of execution $1.
status_of() {
  cli show "$1" --json | sed -n 's/^  "status": "\(.*\)",\{0,1\}$/\1/p'
}

# Waits up to $3 seconds for execution $1 to reach status $2.
wait_status() {
  local deadline=$((SECONDS + $3)) st=
  while ((SECONDS < deadline)); do
    st=$(status_of "$1")
    [[ "$st" == "$2" ]] && return 0
    sleep 0.2
  done
  echo "execution $1 did not reach $2 within $3 s (status: $st)" >&2
  return 1
}

echo "==> starting a node: data in $data_dir, gRPC $listen, HTTP $http"
"$bin" node --data-dir "$data_dir" --workflows "$root/examples/workflows" \
  --listen "$listen" --http "$http" >"$log" 2>&1 &
node_pid=$!
for _ in $(seq 1 100); do
  grep -q "node ready" "$log" && break
  kill -0 "$node_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
grep -q "node ready" "$log" || { echo "the node did not become ready" >&2; cat "$log" >&2; exit 1; }
cli workflows

id=order-$(date +%s)
input='{"order_id": "'$id'", "amount": 1500, "items": [{"sku": "book", "qty": 2}]}'
echo
echo "==> cerebelum start order --id $id --input '$input'"
cli start order --id "$id" --input "$input"

echo
echo "==> waiting for the cool-down (2 s) and the approval request"
wait_status "$id" awaiting_approval 30
cli show "$id"

echo
echo "==> cerebelum approve $id --by demo-operator --data '{\"note\": \"looks fine\"}'"
cli approve "$id" --by demo-operator --data '{"note": "looks fine"}' >/dev/null
wait_status "$id" completed 30

echo
echo "==> cerebelum show $id --history"
cli show "$id" --history
echo
echo "==> the same over HTTP: curl http://$http/v1/executions/$id"
echo "    (try it while a node runs; this one stops now)"
