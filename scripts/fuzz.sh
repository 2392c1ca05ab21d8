#!/usr/bin/env bash
# Builds and runs the libFuzzer harnesses of tests/fuzz (docs/security.md,
# "Fuzzing").
#
#   scripts/fuzz.sh build DIR                   configure (clang++-14) and
#                                               build the harnesses in DIR
#   scripts/fuzz.sh run DIR NAME SECONDS [SEED] run DIR/NAME_fuzz for SECONDS
#                                               on a copy of its seed corpus
#
# `run` fails on any crash, sanitizer report, leak, input slower than 10 s
# or RSS over 2 GiB; the input that did it is kept in DIR/crashes/. It
# prints one line: NAME, the inputs tried, seconds, executions per second.
# The seed (default 1, or $CEREBELUM_FUZZ_SEED) replays a run's mutations.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cxx=${CEREBELUM_FUZZ_CXX:-clang++-14}

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

build() {
  local dir=$1
  if ! command -v "$cxx" >/dev/null; then
    echo "error: $cxx not found (scripts/install-deps.sh installs clang-14)" >&2
    exit 1
  fi
  if [[ ! -f "$dir/CMakeCache.txt" ]]; then
    local launcher=()
    if command -v ccache >/dev/null; then
      launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    fi
    cmake -S "$root/tests/fuzz" -B "$dir" -DCMAKE_CXX_COMPILER="$cxx" \
      "${launcher[@]}" >/dev/null
  fi
  # Paths relative to the checkout: a fresh clone reuses ccache's objects.
  CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} \
    cmake --build "$dir" -j"${CEREBELUM_JOBS:-2}"
}

run() {
  local dir=$1 name=$2 seconds=$3 seed=${4:-${CEREBELUM_FUZZ_SEED:-1}}
  local exe="$dir/${name}_fuzz"
  [[ -x "$exe" ]] || { echo "error: $exe is not built" >&2; exit 1; }
  local work
  work=$(mktemp -d "/tmp/cerebelum-fuzz-$name.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  mkdir "$work/corpus" "$work/artifacts"
  cp "$root/tests/fuzz/corpus/$name"/* "$work/corpus/"
  local status=0
  "$exe" -max_total_time="$seconds" -seed="$seed" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" >"$work/log" 2>&1 || status=$?
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  if ((status != 0)) || grep -qE 'ERROR: |runtime error:' "$work/log"; then
    grep -v '^#[0-9]' "$work/log" | tail -80
    mkdir -p "$dir/crashes"
    cp "$work/artifacts"/* "$dir/crashes/" 2>/dev/null || true
    echo "FAIL $name (seed $seed, exit $status): inputs kept in $dir/crashes/" >&2
    exit 1
  fi
  local secs
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log")
  echo "$name: ${runs:-?} inputs in ${secs:-?} s," \
    "$(( ${runs:-0} / (${secs:-1} > 0 ? ${secs:-1} : 1) )) execs/s" \
    "(seed $seed, corpus $(ls "$work/corpus" | wc -l) files at the end)"
}

cmd=${1:-help}
shift || true
case "$cmd" in
  build) [[ $# -eq 1 ]] || { usage >&2; exit 2; }; build "$1" ;;
  run) [[ $# -ge 3 ]] || { usage >&2; exit 2; }; run "$@" ;;
  *) usage; [[ "$cmd" == help ]] ;;
esac
