#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs them.
# This is the README's test command, and .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

# Peers the tests talk to: node (Node's X509Certificate and TLS server are the reference
# for the legacy object and the error codes; the ws and socket.io-client packages), openssl
# (RSA test keys, s_client), curl, and nginx and HAProxy as real proxies.
missing=()
need node || missing+=(nodejs npm)
need openssl || missing+=(openssl)
need curl || missing+=(curl)
# Real proxies in front of certauth for the header-mode tests.
[ -x /usr/sbin/nginx ] || need nginx || missing+=(nginx-light)
[ -x /usr/sbin/haproxy ] || need haproxy || missing+=(haproxy)
# A real browser: Debian's Chromium, and NSS's tools (certutil, pk12util) to give it a
# client certificate.
[ -x /usr/bin/chromium ] || missing+=(chromium)
need pk12util || missing+=(libnss3-tools)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Headless Chromium cannot show the certificate prompt: this policy lets it present the one
# client certificate a test's browser holds to https://localhost (crates/certauth-cli/tests/browser.rs).
policy=/etc/chromium/policies/managed/certauth-tests.json
if [ ! -f "$policy" ]; then
  echo "installing the Chromium test policy ($policy)"
  mkdir -p "$(dirname "$policy")"
  printf '%s\n' '{"AutoSelectCertificateForUrls": ["{\"pattern\":\"https://localhost:*\",\"filter\":{}}"]}' >"$policy"
fi

# The Node peers (ws, socket.io-client, socket.io), pinned in tests/node/package.json.
if [ ! -d tests/node/node_modules/ws ] || [ ! -d tests/node/node_modules/socket.io-client ] || [ ! -d tests/node/node_modules/socket.io ]; then
  echo "installing the Node test peers (npm)"
  npm install --prefix tests/node --no-audit --no-fund --silent
fi

cargo test --workspace --all-features --locked "$@"
