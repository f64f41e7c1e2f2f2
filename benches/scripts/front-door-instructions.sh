#!/usr/bin/env bash
# Instructions a proxied keep-alive request costs the front door, counted by callgrind
# (repeatable whatever else the machine does, unlike CPU time): certauth against the bare
# hyper proxy of `front_door bare` (the same stack with nothing of certauth in it), in front
# of `front_door upstream`, each driven by one curl connection (HTTP/1.1) making N requests
# after 200 to warm up. BENCHMARKS.md has its numbers.
#
#   cargo build --release -p certauth-cli -p certauth-benches --bin certauth --bin front_door
#   benches/scripts/front-door-instructions.sh [N]
#
# Needs valgrind, curl and openssl; uses ports 18080-18082 on 127.0.0.1. Each proxy is
# stopped (and the upstream) before the script ends. KEEP=DIR keeps callgrind's profiles
# there (bare.out, certauth.out) for `callgrind_annotate --inclusive=yes`.
set -euo pipefail
n=${1:-2000}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release
certauth=${CERTAUTH:-$bin/certauth}
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"

# A CA, the server's certificate for 127.0.0.1 and the client `trusted-client` (P-256).
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key; key server.key; key client.key
openssl req -x509 -key ca.key -out ca.pem -subj "/CN=bench ca" -days 2 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
sign() {
  openssl req -new -key "$1.key" -subj "/CN=$2" 2>/dev/null |
    openssl x509 -req -CA ca.pem -CAkey ca.key -out "$1.pem" -days 2 \
      -extfile <(printf '%s\n' "$3" "basicConstraints=CA:FALSE") 2>/dev/null
}
sign server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1"
sign client trusted-client "extendedKeyUsage=clientAuth"

"$bin/front_door" upstream 18080 &
pids+=($!)
curl_() { curl --http1.1 -s -o /dev/null --cacert ca.pem --cert client.pem --key client.key "$@"; }

# count NAME FILE PORT CMD...: the proxy under callgrind, counting only the measured requests
# (the dump `callgrind_control -d` asks for is FILE.out.1).
count() {
  local name=$1 file=$dir/$2 port=$3
  shift 3
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$file.out" \
    "$@" >"$file.log" 2>&1 &
  local v=$!
  pids+=("$v")
  local up=
  for _ in $(seq 120); do
    if curl_ "https://127.0.0.1:$port/"; then up=1; break; fi
    sleep 0.5
  done
  [ -n "$up" ] || { echo "$name did not start: $(cat "$file.log")" >&2; exit 1; }
  curl_ "https://127.0.0.1:$port/w[1-200]"
  callgrind_control -i on "$v" >/dev/null 2>&1
  curl_ "https://127.0.0.1:$port/x[1-$n]"
  callgrind_control -i off "$v" >/dev/null 2>&1
  callgrind_control -d "$v" >/dev/null 2>&1
  sleep 1
  kill -9 "$v"
  wait "$v" 2>/dev/null || true
  local total
  total=$(callgrind_annotate "$file.out.1" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "$name: $((total / n)) instructions a request ($total for $n)"
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$file.out.1" "$KEEP/$2.out"; fi
}

count "hyper proxy, no certauth" bare 18081 "$bin/front_door" bare 18081 18080 "$dir/"
TOKIO_WORKER_THREADS=1 count "certauth (1 worker)" certauth 18082 "$certauth" serve --ca ca.pem \
  --cert server.pem --key server.key --allow-cn trusted-client --listen 127.0.0.1:18082 \
  --upstream http://127.0.0.1:18080 --idle-timeout 300
