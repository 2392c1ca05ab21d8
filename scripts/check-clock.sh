#!/usr/bin/env bash
# Checks that the actor tier reads time and arms delays only through its
# clock (actors/clock.hpp; docs/engine.md, "Time"): no wall-clock read and
# no `delayed_send` in actors/ outside the clock itself and the uses that are
# real time on purpose. Prints every other use and exits 1.
#
#   scripts/check-clock.sh [ROOT]
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# Real time on purpose (docs/engine.md, "Time"):
#   local_engine.cpp   the deadline of the blocking `wait` (a caller's thread)
#   resurrector.cpp    the measured resurrection_time
#   node.cpp           the restart-intensity clock built from the node's clock
#   metrics.cpp        durations measured for metrics (a native step's run)
allowed='^actors/(clock\.(hpp|cpp)|local_engine\.cpp|resurrector\.cpp|node\.cpp|metrics\.cpp):[0-9]+:.*steady_clock'

hits=$(grep -rnE 'system_clock|steady_clock|high_resolution_clock|delayed_send|delayed_anon_send|std::time\(|gettimeofday|clock_gettime' \
         --include='*.cpp' --include='*.hpp' actors/ \
       | grep -vE '^actors/clock\.(hpp|cpp):' | grep -vE "$allowed" || true)
if [[ -n $hits ]]; then
  echo "the actor tier reads the wall clock or arms a delay outside its clock"
  echo "(use ctx.now_ms() / ctx.clock().send_after; see docs/engine.md, Time):"
  echo "$hits"
  exit 1
fi
echo "clock: every read of time and delayed message in actors/ goes through the clock"
