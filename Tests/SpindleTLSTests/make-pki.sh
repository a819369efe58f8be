#!/bin/sh
# The TLS tests' certificates, made at test time (no key is ever committed): a root,
# an intermediate, leaves for localhost (also 127.0.0.1), for second.test and *.wild.test
# (SNI), for other.example (wrong host), an expired and a revoked one (with both CRLs),
# and a self-signed one. EC P-256 throughout. Usage: make-pki.sh DIR
set -e
cd "$1"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
cat > ca.cnf <<'CNF'
[ca]
default_ca = ca_here
[ca_here]
dir = .
database = $dir/$ENV::DB/index.txt
serial = $dir/$ENV::DB/serial
crlnumber = $dir/$ENV::DB/crlnumber
new_certs_dir = $dir/$ENV::DB
default_md = sha256
default_days = 30
default_crl_days = 30
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
for d in rootdb intdb; do mkdir -p $d; : > $d/index.txt; echo 1000 > $d/serial; echo 1000 > $d/crlnumber; done
# The root: self-signed.
key root.key
openssl req -x509 -new -key root.key -subj "/CN=Spindle Test Root" -days 30 -out root.pem \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign"
# The intermediate, signed by the root.
key int.key
openssl req -new -key int.key -subj "/CN=Spindle Test Intermediate" -out int.csr
DB=rootdb openssl ca -batch -config ca.cnf -extensions v3_ca -cert root.pem -keyfile root.key -in int.csr -out int.pem -notext 2>/dev/null
# Leaves, signed by the intermediate: name, SANs, optional dates.
leaf() {
  local name=$1 san=$2; shift 2
  key $name.key
  openssl req -new -key $name.key -subj "/CN=${san%%,*}" -addext "subjectAltName=$(echo "$san" | sed 's/\([^,]*\)/DNS:\1/g; s/DNS:IP=/IP:/g')" -out $name.csr
  DB=intdb openssl ca -batch -config ca.cnf -extensions v3_leaf -cert int.pem -keyfile int.key -in $name.csr -out $name.pem -notext "$@" 2>/dev/null
  cat $name.pem int.pem > $name.chain.pem
}
leaf localhost "localhost,IP=127.0.0.1"
leaf second "second.test,*.wild.test"
leaf other "other.example"
leaf expired "localhost,IP=127.0.0.1" -startdate 20200101000000Z -enddate 20210101000000Z
leaf revoked "localhost,IP=127.0.0.1"
DB=intdb openssl ca -config ca.cnf -cert int.pem -keyfile int.key -revoke revoked.pem 2>/dev/null
DB=intdb openssl ca -config ca.cnf -cert int.pem -keyfile int.key -gencrl -out int.crl 2>/dev/null
DB=rootdb openssl ca -config ca.cnf -cert root.pem -keyfile root.key -gencrl -out root.crl 2>/dev/null
# Self-signed for localhost (trusted by nobody).
key self.key
openssl req -x509 -new -key self.key -subj "/CN=localhost" -days 30 -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out self.pem
echo ok
