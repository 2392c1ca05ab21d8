#!/usr/bin/env bash
# Checks that dependencies flow one way (docs/architecture.md): a file may
# include only from its own folder and the folders its layer names, and the
# actor tier has no transport. Prints every offending include and exits 1.
#
#   scripts/check-layers.sh [ROOT]
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# folder -> the project folders its files may include from (besides its own).
# proto/events.pb.h is the event model: the store and the decider speak it in
# their interfaces, so the tiers above them read it too.
declare -A allowed=(
  [supervision]=""
  [eventstore]="proto"
  [workflow]="proto"
  [wire]="proto"
  [actors]="supervision eventstore workflow proto"
  [src]="supervision eventstore workflow proto wire actors src"
  [sdk]="wire proto sdk"
)
project_dirs="supervision eventstore workflow wire actors src sdk proto tests bench examples"

status=0
for layer in "${!allowed[@]}"; do
  [[ -d $layer ]] || continue
  while IFS=: read -r file line text; do
    dir=$(sed -E 's/^#include "([^/"]+)\/.*/\1/' <<<"$text")
    [[ " $project_dirs " == *" $dir "* ]] || continue
    [[ $dir == "$layer" ]] && continue
    [[ " ${allowed[$layer]} " == *" $dir "* ]] && continue
    echo "$file:$line: $layer/ may not include from $dir/: $text"
    status=1
  done < <(grep -rnE '^#include "[^/"]+/' "$layer" \
             --include='*.cpp' --include='*.hpp' --include='*.h' || true)
done

# The actor tier has no transport: no caf::io in its sources or its target.
if grep -rnE '#include <caf/io/' actors --include='*.cpp' --include='*.hpp'; then
  echo "actors/ may not use caf::io (transports live in src/bridges)"
  status=1
fi
if grep -nE 'caf::io' actors/CMakeLists.txt; then
  echo "actors/CMakeLists.txt: the actors target may not link caf::io"
  status=1
fi

if [[ $status -eq 0 ]]; then
  echo "layers: every include follows docs/architecture.md"
fi
exit $status
