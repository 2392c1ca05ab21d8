#!/usr/bin/env bash
# Probes a real node's HTTP front end with hostile load (not part of ctest):
#   slow: 300 connections hold half a request; times 5 GETs beside them.
#   wait: 500 concurrent `?wait=true` starts of a workflow that sleeps 1 s;
#         reports the time until all are answered and the node's peak threads.
#
#   bench/http/front-end-probe.sh BUILD_DIR slow|wait [HTTP_PORT GRPC_PORT]
set -euo pipefail
build=$1; mode=$2; hp=${3:-19841}; gp=${4:-19840}
here=$(cd "$(dirname "$0")" && pwd)
d=$(mktemp -d /tmp/front-end-probe.XXXX)
trap 'rm -rf "$d"' EXIT
mkdir "$d/wf"
cat > "$d/wf/nap.yaml" <<'YAML'
name: nap
version: "1"
steps:
  - name: rest
    sleep: 1s
YAML
"$build/src/cerebelum" --log-level warn node --data-dir "$d/data" \
  --workflows "$d/wf" --http "127.0.0.1:$hp" --listen "127.0.0.1:$gp" \
  > "$d/log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "127.0.0.1:$hp/v1/health" && break
  sleep 0.1
done
timeout 200 /usr/bin/python3 "$here/front_end_probe.py" "$hp" "$pid" "$mode"
kill -TERM "$pid"
wait "$pid" && echo "node exited 0"
