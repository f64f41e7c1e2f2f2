#!/usr/bin/env bash
# Adapters stay thin (docs/DESIGN.md, "The boundary"): each runtime adapter stays within 450
# non-blank, non-comment lines of src/; anything more is a decision that belongs in the core.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for dir in crates/certauth-tokio crates/certauth-smol crates/certauth-hyper; do
  [ -d "$dir/src" ] || continue
  n=$(cat "$dir"/src/*.rs | grep -cvE '^\s*(//|$)')
  echo "$dir: $n lines (budget 450)"
  [ "$n" -le 450 ] || status=1
done
exit $status
