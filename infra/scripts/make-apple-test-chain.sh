#!/usr/bin/env bash
# Makes the TEST certificate chain the Apple webhook tests sign App Store
# Server Notifications with (tests/e2e/fixtures/apple/): a P-384 root (like
# Apple Root CA - G3), a P-384 intermediate carrying Apple's WWDR marker OID
# 1.2.840.113635.100.6.2.1, and a P-256 leaf carrying the App Store receipt
# signing OID 1.2.840.113635.100.6.11.1; plus a leaf WITHOUT the signing OID
# and a whole chain under ANOTHER root (for the refusal tests). Valid from
# 2020 to 2045, so notifications signed days ago still fall inside.
# Nothing here is Apple's: tests point QUPER_APPLE_ROOT_CERT at root.pem.
set -euo pipefail
out="${1:-$(dirname "$0")/../../tests/e2e/fixtures/apple}"
mkdir -p "$out"
cd "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=20200101000000Z
end=20450101000000Z

mkdir -p "$tmp/issued"
touch "$tmp/index.txt"
echo 1000 > "$tmp/serial"
cat > "$tmp/ca.cnf" <<X
[ ca ]
default_ca = test
[ test ]
database = $tmp/index.txt
new_certs_dir = $tmp/issued
serial = $tmp/serial
default_md = sha256
policy = anything
unique_subject = no
[ anything ]
commonName = supplied
organizationName = optional
countryName = optional
X
cat > "$tmp/ca.ext" <<'X'
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
X
cat > "$tmp/intermediate.ext" <<'X'
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
1.2.840.113635.100.6.2.1=ASN1:NULL
X
cat > "$tmp/leaf.ext" <<'X'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
1.2.840.113635.100.6.11.1=ASN1:NULL
X
cat > "$tmp/plain-leaf.ext" <<'X'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
X

csr() { # name cn curve
  openssl ecparam -name "$3" -genkey -noout -out "$tmp/$1.key"
  openssl req -new -key "$tmp/$1.key" -subj "/CN=$2/O=Quper Tests/C=US" -out "$tmp/$1.csr"
}
make_root() { # name cn
  csr "$1" "$2" secp384r1
  openssl ca -batch -notext -config "$tmp/ca.cnf" -selfsign -keyfile "$tmp/$1.key" -in "$tmp/$1.csr" \
    -startdate $start -enddate $end -md sha384 -extfile "$tmp/ca.ext" -out "$1.pem" 2>/dev/null
}
issue() { # name cn curve issuer ext digest
  csr "$1" "$2" "$3"
  openssl ca -batch -notext -config "$tmp/ca.cnf" -cert "$4.pem" -keyfile "$tmp/$4.key" -in "$tmp/$1.csr" \
    -startdate $start -enddate $end -md "$6" -extfile "$tmp/$5.ext" -out "$1.pem" 2>/dev/null
}

make_root root "Test Root CA - G3"
issue intermediate "Test Worldwide Developer Relations CA - G6" secp384r1 root intermediate sha384
issue leaf "Test Prod ECC Mac App Store and iTunes Store Receipt Signing" prime256v1 intermediate leaf sha256
issue plain-leaf "Test leaf without the receipt signing OID" prime256v1 intermediate plain-leaf sha256

make_root other-root "Another Root CA"
issue other-intermediate "Another intermediate" secp384r1 other-root intermediate sha384
issue other-leaf "Another leaf" prime256v1 other-intermediate leaf sha256

# The leaf keys sign notifications in the tests (PKCS#8).
for name in leaf plain-leaf other-leaf; do
  openssl pkcs8 -topk8 -nocrypt -in "$tmp/$name.key" -out "$name.key.pem"
done
echo "test chain written to $out"
