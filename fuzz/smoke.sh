#!/usr/bin/env bash
# CI's smoke run: builds every fuzz target with libFuzzer's coverage instrumentation on the
# stable toolchain (no cargo-fuzz, no sanitizer; `run-all.sh` is the real run), then fuzzes
# each from the committed seeds for SECONDS (default 5). Fails on any crash.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-5}
# The coverage flags cargo-fuzz passes, minus the nightly-only sanitizer.
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR=target/smoke
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros, as cargo-fuzz does.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --locked --bins --quiet --target "$host"
bins="$CARGO_TARGET_DIR/$host/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for bin in fuzz_targets/*.rs; do
  target=$(basename "$bin" .rs)
  mkdir -p "$work/$target"
  cp seeds/"$target"/* "$work/$target/"
  printf '== %s (%s s): ' "$target" "$seconds"
  if ! "$bins/$target" "$work/$target" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -artifact_prefix="$work/" > "$work/$target.log" 2>&1; then
    tail -40 "$work/$target.log"
    echo "FAILED: $target"
    exit 1
  fi
  grep -E "^Done [0-9]+ runs" "$work/$target.log" | tail -1
done
