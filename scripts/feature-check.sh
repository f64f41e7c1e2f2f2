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

# Each example builds with exactly the command its header names (`cargo run --example NAME
# --features F`, default features on), and that command enables its required-features.
cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, re, sys
m = json.load(sys.stdin)
p = [p for p in m["packages"] if p["name"] == "certauth"][0]
default = set(p["features"].get("default", []))
for t in p["targets"]:
    if "example" not in t["kind"]:
        continue
    text = open(t["src_path"]).read()
    found = re.search(r"cargo run --example " + re.escape(t["name"]) + r" --features ([\w,-]+)", text)
    if not found:
        sys.exit("examples/%s.rs: no `cargo run --example %s --features ...` line" % (t["name"], t["name"]))
    named = set(found.group(1).split(","))
    missing = set(t.get("required-features", [])) - named - default
    if missing:
        sys.exit("examples/%s.rs: its command lacks %s" % (t["name"], ", ".join(sorted(missing))))
    print(t["name"], found.group(1))
' | while read -r example features; do
  echo "example $example: --features $features"
  cargo check -p certauth --example "$example" --features "$features" --locked -q
done

# Docs are clean with each feature alone too (an intra-doc link to an item another feature
# adds would break there), for the facade and for the adapter whose items are feature-gated.
export RUSTDOCFLAGS="-D warnings"
for f in "" $features; do
  echo "doc certauth: --features '$f'"
  cargo doc -p certauth --no-deps --no-default-features --features "$f" --locked -q
done
for f in "" axum axum-server socketio; do
  echo "doc certauth-hyper: --features '$f'"
  cargo doc -p certauth-hyper --no-deps --no-default-features --features "$f" --locked -q
done
