#!/usr/bin/env bash
# Makes a test CA and certificates for a ballot cluster with the openssl
# command (docs/security.md, "TLS").
#
#   scripts/tls-certs.sh [--days N] [--san LIST] DIR NAME...
#
# DIR/ca.crt and DIR/ca.key are the CA (made if DIR has none, reused if it
# has). Each NAME that is a member id N gets DIR/node-N.crt and
# DIR/node-N.key: common name "member-N" (the peer port binds a member's
# connections to the id its certificate names), valid for the client and
# server roles, for 127.0.0.1, ::1 and localhost. Any other NAME gets a
# client certificate DIR/NAME.crt and DIR/NAME.key with that common name.
# --days N (default 365) sets how long they are valid; a negative N makes
# certificates that have already expired (for tests). Keys are P-256, mode
# 600. --san adds to the node certificates' subjectAltName (e.g.
# "IP:10.0.0.5,DNS:node1.example").
#
# For production, use your own CA and put the node's real addresses in
# subjectAltName; ballot needs only the common name "member-N".
set -euo pipefail
days=365
san=""
while [ $# -gt 1 ]; do
    case $1 in
    --days) days=$2; shift 2 ;;
    --san) san=",$2"; shift 2 ;;
    *) break ;;
    esac
done
if [ $# -lt 2 ]; then
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
dir=$1
shift
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.key" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 \
        -subj "/CN=ballot test CA $(basename "$dir") $$" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
ext=$(mktemp)
trap 'rm -f "$ext" "$dir"/*.csr' EXIT
for name in "$@"; do
    if [[ $name =~ ^[1-9][0-9]*$ ]]; then
        base=node-$name
        cn=member-$name
        printf '%s\n' "basicConstraints=CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth,clientAuth" \
            "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost$san" >"$ext"
    else
        base=$name
        cn=$name
        printf '%s\n' "basicConstraints=CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=clientAuth" >"$ext"
    fi
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/$base.key" -out "$dir/$base.csr" -subj "/CN=$cn" \
        2>/dev/null
    openssl x509 -req -in "$dir/$base.csr" -CA "$dir/ca.crt" \
        -CAkey "$dir/ca.key" -CAcreateserial -days "$days" -sha256 \
        -extfile "$ext" -out "$dir/$base.crt" 2>/dev/null
    rm -f "$dir/$base.csr"
done
