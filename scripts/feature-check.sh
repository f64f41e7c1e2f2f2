#!/usr/bin/env bash
# The facade's features are additive: it must build with none, each one alone, and all.
# The list is read from Cargo.toml (cargo metadata), never written by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
features=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; m=json.load(sys.stdin); p=[p for p in m["packages"] if p["name"]=="certauth"][0]; print(" ".join(f for f in p["features"] if f!="default"))')
echo "certauth: no features"
cargo check -p certauth --no-default-features --locked -q
for f in $features; do
  echo "certauth: --features $f"
  cargo check -p certauth --no-default-features --features "$f" --locked -q
done
echo "certauth: all features"
cargo check -p certauth --all-features --locked -q
