#!/usr/bin/env bash
# Runs each libFuzzer harness of tests/fuzz for longer than CI does, one
# after the other, and prints the inputs tried and executions per second of
# each (docs/benchmarks.md, "Fuzzing").
#
#   bench/fuzz/run.sh [SECONDS] [HARNESS ...]
#
# SECONDS per harness (default 120); harnesses default to all of them. Each
# run starts from a copy of the seed corpus (scripts/fuzz.sh run) and fails
# the script on any finding. Builds in build/fuzz (or $CEREBELUM_FUZZ_DIR).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=${CEREBELUM_FUZZ_DIR:-$root/build/fuzz}
seconds=${1:-120}
shift || true
harnesses=("$@")
if ((${#harnesses[@]} == 0)); then
  harnesses=(workflow_loader expression basp http_request worker_request
             http_api admin_service)
fi

"$root/scripts/fuzz.sh" build "$dir" >/dev/null
echo "$(date -u +%Y-%m-%d) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$seconds s per harness"
for h in "${harnesses[@]}"; do
  "$root/scripts/fuzz.sh" run "$dir" "$h" "$seconds"
done
