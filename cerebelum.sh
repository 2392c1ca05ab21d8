#!/usr/bin/env bash
# Cerebelum's single entry point. Installs what is missing (apt), builds, and
# runs. Idempotent: quick when everything is installed and built.
#
#   ./cerebelum.sh run              build and run the main job: a node on the
#                                   embedded store runs the demo order workflow
#                                   end to end (scripts/demo.sh)
#   ./cerebelum.sh test [--sanitize] build and run the whole test suite
#                                   against a throwaway PostgreSQL
#   ./cerebelum.sh build [--sanitize] build only
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"
jobs=${CEREBELUM_JOBS:-2}

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

build() {
  local build_dir=$1; shift
  "$root/scripts/install-deps.sh"
  if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
    echo "==> configuring $build_dir"
    cmake -S "$root" -B "$build_dir" -DCEREBELUM_WERROR=ON "$@" >/dev/null
  fi
  echo "==> building ($build_dir, -j$jobs)"
  cmake --build "$build_dir" -j"$jobs"
}

build_dir_for() {
  if [[ "${1:-}" == "--sanitize" ]]; then echo "$root/build-asan"; else echo "$root/build"; fi
}

build_flags_for() {
  if [[ "${1:-}" == "--sanitize" ]]; then
    echo "-DCEREBELUM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCEREBELUM_BUILD_BENCH=OFF"
  fi
}

cmd=${1:-help}
shift || true
case "$cmd" in
  run)
    build "$root/build"
    echo "==> the five-minute tour (scripts/demo.sh)"
    exec "$root/scripts/demo.sh" "$root/build/src/cerebelum"
    ;;
  build)
    dir=$(build_dir_for "${1:-}")
    # shellcheck disable=SC2046
    build "$dir" $(build_flags_for "${1:-}")
    ;;
  test)
    dir=$(build_dir_for "${1:-}")
    # shellcheck disable=SC2046
    build "$dir" $(build_flags_for "${1:-}")
    pg_dir=$(mktemp -d /tmp/cerebelum-pg.XXXXXX)
    trap '"$root/scripts/pg-throwaway.sh" stop "$pg_dir"' EXIT
    echo "==> starting a throwaway PostgreSQL"
    CEREBELUM_TEST_PG=$("$root/scripts/pg-throwaway.sh" start "$pg_dir")
    export CEREBELUM_TEST_PG
    echo "    $CEREBELUM_TEST_PG"
    echo "==> running tests"
    cd "$dir"
    status=0
    ctest --output-on-failure --timeout 900 -j"$jobs" || status=$?
    exit $status
    ;;
  help|-h|--help)
    usage ;;
  *)
    echo "unknown command: $cmd" >&2; usage >&2; exit 2 ;;
esac
