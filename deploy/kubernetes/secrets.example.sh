#!/bin/sh
# Makes the Secrets the Deployment mounts (certauth.yaml). The server identity usually
# comes from cert-manager instead (a Certificate whose secretName is certauth-server-tls).
set -eu
kubectl create secret tls certauth-server-tls --cert=server.pem --key=server.key
# 80 random bytes each, nginx's format. Every replica gets the same files, so a client
# resumes its TLS session on whichever replica it reaches.
openssl rand 80 > current.key
openssl rand 80 > previous.key
kubectl create secret generic certauth-session-tickets \
  --from-file=current.key --from-file=previous.key
rm -f current.key previous.key
