#!/bin/sh
# A certificate for a campus-only name, signed by a small certificate authority of the site's own:
#
#   deploy/campus-ca.sh deploy/tls attendance.campus.example.edu [more names or IP addresses]
#
# writes into the folder (created if needed):
#   ca.pem            the authority's certificate: install it on lecturers' machines and kiosks (README)
#   ca-key.pem        its private key: keep it off the server, it can sign a certificate for any name
#   fullchain.pem     the server's certificate, then the authority's: what nginx sends
#   privkey.pem       the server's private key (readable by its owner only)
# An existing authority is reused, so a new server certificate (a name added, a renewal) needs
# nothing installed again. The server certificate is valid for 825 days, the most Apple accepts.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 OUTPUT_DIR NAME [NAME...]   (NAME: a DNS name or an IP address)" >&2
    exit 2
fi
out=$1
shift
mkdir -p "$out"
umask 077

if [ ! -f "$out/ca.pem" ] || [ ! -f "$out/ca-key.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj "/CN=Rollcall campus CA $(date -u +%Y-%m-%d)" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$out/ca-key.pem" -out "$out/ca.pem" 2>/dev/null
fi

san=""
for name in "$@"; do
    case "$name" in
        *:*) entry="IP:$name" ;;  # IPv6
        *[!0-9.]*) entry="DNS:$name" ;;
        *) entry="IP:$name" ;;
    esac
    san="${san:+$san,}$entry"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/ext.cnf" <<CNF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
CNF
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
    -keyout "$work/privkey.pem" -out "$work/server.csr" 2>/dev/null
openssl x509 -req -in "$work/server.csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" -CAcreateserial \
    -CAserial "$work/ca.srl" -days 825 -sha256 -extfile "$work/ext.cnf" -out "$work/server.pem" 2>/dev/null
cat "$work/server.pem" "$out/ca.pem" >"$out/fullchain.pem"
mv "$work/privkey.pem" "$out/privkey.pem"
chmod 644 "$out/ca.pem" "$out/fullchain.pem"
echo "wrote $out/fullchain.pem and $out/privkey.pem for: $san"
echo "install $out/ca.pem as a trusted authority on the machines that open the site (see README)"
