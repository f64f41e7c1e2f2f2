#!/usr/bin/env bash
# Runs every fuzz target (or the TARGETs named) for SECONDS each (default 60), starting
# from the committed seeds, and fails on the first crash. Usage: run-all.sh [SECONDS [TARGET…]] Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); on
# the stable toolchain, RUSTC_BOOTSTRAP=1 lets it use the nightly-only sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
mkdir -p logs
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
  echo "== $target ($seconds s)"
  if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
      > "logs/$target.log" 2>&1; then
    tail -40 "logs/$target.log"
    echo "FAILED: $target (see fuzz/logs/$target.log and fuzz/artifacts/$target)"
    exit 1
  fi
  grep -E "^(#[0-9]+\s+DONE|Done [0-9]+ runs)" "logs/$target.log" | tail -1
done
