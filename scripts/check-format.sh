#!/usr/bin/env bash
# Checks (or with --fix, applies) .clang-format on every C++ source of the
# project. Exits non-zero and names the files that differ.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
fix=0
[[ "${1:-}" == "--fix" ]] && fix=1
mapfile -t files < <(git ls-files -co --exclude-standard -- \
  'actors/*.[ch]pp' 'supervision/*.[ch]pp' 'eventstore/*.[ch]pp' \
  'src/*.[ch]pp' 'tests/*.[ch]pp' 'examples/*.[ch]pp' 'bench/*.[ch]pp' \
  | sort -u)
bad=()
for f in "${files[@]}"; do
  [[ -f "$f" ]] || continue
  if ((fix)); then
    clang-format -i "$f"
  elif ! clang-format "$f" | cmp -s - "$f"; then
    bad+=("$f")
  fi
done
if ((${#bad[@]})); then
  echo "these files are not clang-formatted (run scripts/check-format.sh --fix):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "clang-format: ${#files[@]} files checked, all formatted"
