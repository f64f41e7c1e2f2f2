#!/usr/bin/env bash
# Makes the small committed seed corpora and the fuzz CA (seeds/root.der) with openssl.
# The private keys are thrown away; nothing here is a secret, and validity runs for a
# century so the seeds never expire.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p seeds seeds/cert_parse seeds/head_parser seeds/proxy_headers seeds/policy_file seeds/decide seeds/first_request seeds/proxy_protocol

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ca.key" \
  -subj "/O=certauth fuzz/CN=fuzz root" -days 36500 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -outform DER -out seeds/root.der 2>/dev/null
openssl x509 -inform DER -in seeds/root.der -out "$tmp/ca.pem"

cat > "$tmp/leaf.cnf" <<'CNF'
[req]
distinguished_name=dn
[dn]
[ext]
subjectAltName=DNS:client.example,email:c@example.com,URI:spiffe://example.org/c,IP:127.0.0.1,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:upn@example
extendedKeyUsage=clientAuth
CNF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/leaf.key" \
  -subj "/C=DE/O=Müller/OU=a/OU=b/CN=trusted-client+UID=u1" -multivalue-rdn -utf8 -out "$tmp/leaf.csr" 2>/dev/null
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -days 36500 \
  -extfile "$tmp/leaf.cnf" -extensions ext -outform DER -out seeds/cert_parse/leaf.der 2>/dev/null
cp seeds/root.der seeds/cert_parse/root.der
openssl x509 -inform DER -in seeds/cert_parse/leaf.der -out "$tmp/leaf.pem"

printf 'GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x80' > seeds/head_parser/upgrade
printf '\x05GET / HTTP/1.1\nHost: x\n\n' > seeds/head_parser/bare-lf
printf '\x03\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' > seeds/head_parser/tls-client-hello
# Where a decided request ends: a chunked body with trailers, a length, an upgrade's frame.
printf '\x05POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\nGET /admin HTTP/1.1\r\n\r\n' > seeds/first_request/chunked
printf '\x03POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /admin HTTP/1.1\r\n\r\n' > seeds/first_request/length
printf '\x01GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x85\x00\x00\x00\x00hello' > seeds/first_request/upgrade

b64=$(base64 -w0 < seeds/cert_parse/leaf.der)
enc=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(open(sys.argv[1]).read(), safe=""))' "$tmp/leaf.pem")
printf '\x00%s' "$enc" > seeds/proxy_headers/url-pem
printf '\x03%s' "$b64" > seeds/proxy_headers/base64-der
printf '\x04:%s:' "$b64" > seeds/proxy_headers/rfc9440
hash=$(sha256sum < seeds/cert_parse/leaf.der | cut -d' ' -f1)
printf '\x02By=spiffe://example.org/edge;Hash=%s;Cert="%s";Subject="CN=a\\,b";URI=spiffe://example.org/c,By=x;URI=y' "$hash" "$enc" > seeds/proxy_headers/xfcc

printf '[allow]\nany_of = [ { cn = ["a"] }, { not = { ou = ["b"] } }, { spiffe_trust_domain = { trust_domain = "example.org", path_prefix = "/ns" } } ]\n' > seeds/policy_file/nested.toml
printf '[allow]\nall_of = [ { forbid = [ { organization = ["Contractors"] }, { signed_fingerprint = ["%s"] } ] }, { forbid_unless = { cn = ["a"] } } ]\n' "$(printf 'ab%.0s' $(seq 32))" > seeds/policy_file/forbid.toml

{ printf '\x00'; cat seeds/cert_parse/leaf.der; printf '\xffGET / HTTP/1.1\r\nHost: a\r\n\r\n'; } > seeds/decide/tls-peer
{ printf '\x01\xffGET / HTTP/1.1\r\nX-Forwarded-Client-Cert: '; cat seeds/proxy_headers/xfcc | tail -c +2; printf '\r\n\r\n'; } > seeds/decide/envoy
{ printf '\x02\xffGET / HTTP/1.1\r\nX-SSL-Client-Cert: %s\r\nX-SSL-Client-Verify: SUCCESS\r\n\r\n' "$enc"; } > seeds/decide/nginx
{ printf '\x03\xffGET / HTTP/1.1\r\nClient-Cert: :%s:\r\nClient-Cert-Chain: :%s:\r\nClient-Cert-Chain: :%s:\r\n\r\n' "$b64" "$(base64 -w0 < seeds/root.der)" "$b64"; } > seeds/decide/rfc9440
# PROXY protocol headers as HAProxy sends them (v2: TCP over IPv4 with an ALPN TLV, IPv6,
# LOCAL), each followed by the start of a ClientHello.
printf 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n\x16\x03\x01' > seeds/proxy_protocol/v1-tcp4
printf 'PROXY TCP6 2001:db8::1 2001:db8::2 65535 443\r\n' > seeds/proxy_protocol/v1-tcp6
printf 'PROXY UNKNOWN\r\n' > seeds/proxy_protocol/v1-unknown
printf '\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x11\xc0\x00\x02\x01\xc6\x33\x64\x02\xdc\x04\x01\xbb\x01\x00\x02h2\x16\x03\x01' > seeds/proxy_protocol/v2-tcp4-alpn
printf '\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x50\x01\xbb' > seeds/proxy_protocol/v2-tcp6
printf '\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00' > seeds/proxy_protocol/v2-local
echo "seeds written"
