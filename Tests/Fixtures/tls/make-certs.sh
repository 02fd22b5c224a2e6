#!/usr/bin/env bash
# Makes the TLS fixtures of the security tests: a test CA, a server certificate for localhost /
# 127.0.0.1 / ::1 signed by it, a client certificate signed by it, and a rogue CA with a client
# certificate it signed (which the server must refuse). EC P-256, valid for 100 years, so the
# committed files do not expire under the tests. FOR TESTS ONLY: the keys are public.
# Run from anywhere: ./make-certs.sh (needs the openssl CLI).
set -euo pipefail
cd "$(dirname "$0")"
days=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {  # name, subject
    key "$1-key.pem"
    openssl req -x509 -new -key "$1-key.pem" -sha256 -days "$days" -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem"
}
leaf() {  # name, subject, signing CA, extensions
    key "$1-key.pem"
    openssl req -new -key "$1-key.pem" -subj "$2" -out "$1.csr"
    printf '%s\n' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3-key.pem" -CAcreateserial -sha256 -days "$days" \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
ca ca "/CN=Vigil test CA"
ca rogue-ca "/CN=Not the Vigil test CA"
leaf server "/CN=localhost" ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
leaf client "/CN=vigil-worker" ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
leaf rogue-client "/CN=rogue-worker" rogue-ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
rm -f ./*.srl ca-key.pem rogue-ca-key.pem
chmod 600 ./*-key.pem
echo "made: $(ls ./*.pem | tr '\n' ' ')"
