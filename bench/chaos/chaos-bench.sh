#!/usr/bin/env bash
# A long chaos run (tests/chaos/README.md): the chaos suite's workload and
# nemesis for N minutes, then its checker; prints the figures and keeps the
# run directory (node log, side-effect logs, run.json, report.json).
#
#   bench/chaos/chaos-bench.sh --minutes 30 [--store sqlite|pg] [--seed S]
#       [--faults node-kill,node-stop,worker-kill,pg-restart,def-edit] [--build DIR]
#
# The binaries come from the build directory (default build/): build the
# `cerebelum` and `chaos_cpp_worker` targets first. --store pg uses
# CEREBELUM_TEST_PG when set, else a throwaway PostgreSQL of its own.
# Exit code: the chaos suite's (0 clean, 1 findings, 2 harness error).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
minutes=30
store=sqlite
seed=$RANDOM
faults=node-kill,node-stop,worker-kill,pg-restart,def-edit
build=$root/build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) minutes=${2:?--minutes needs a number}; shift 2 ;;
    --store) store=${2:?--store needs sqlite or pg}; shift 2 ;;
    --seed) seed=${2:?--seed needs a number}; shift 2 ;;
    --faults) faults=${2:?--faults needs a list}; shift 2 ;;
    --build) build=${2:?--build needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "error: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $minutes =~ ^[0-9]+$ && $minutes -gt 0 ]] || {
  echo "error: --minutes must be a positive integer, got '$minutes'" >&2; exit 2; }

run_dir=$(mktemp -d /tmp/cerebelum-chaos-bench.XXXXXX)
echo "chaos bench: $minutes min, store $store, seed $seed, faults $faults"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "run dir: $run_dir"
export PYTHONPATH=$root/sdk/python${PYTHONPATH:+:$PYTHONPATH}
set +e
/usr/bin/python3 "$root/tests/chaos/chaos.py" --store "$store" --seed "$seed" \
  --seconds $((minutes * 60)) --faults "$faults" --run-dir "$run_dir" \
  --node-bin "$build/src/cerebelum" \
  --cpp-worker-bin "$build/tests/chaos/chaos_cpp_worker" \
  --quiesce-timeout 600 2>&1 | tee "$run_dir/output.txt"
code=${PIPESTATUS[0]}
echo "exit code $code; output in $run_dir/output.txt"
exit "$code"
