#!/usr/bin/env bash
# Makes a self-signed certificate for localhost (ECDSA P-256, 1 year) in DIR (default var/tls)
# when none is there, so `make run` serves HTTPS on 127.0.0.1:8443 at once. Never overwrites.
set -euo pipefail
DIR=${1:-var/tls}
[[ -e $DIR/localhost.crt ]] && exit 0
mkdir -p "$DIR"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -keyout "$DIR/localhost.key" -out "$DIR/localhost.crt" 2>/dev/null
echo "made a self-signed certificate for localhost in $DIR (curl -k or --cacert $DIR/localhost.crt)"
