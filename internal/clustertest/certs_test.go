package clustertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is a certificate authority made for one test, and the PEM files
// of the certificates it issued: one for the etcd members' client
// listeners (127.0.0.1 and localhost) and one for their clients.
type testPKI struct {
	CAFile     string // the CA certificate
	ServerCert string // the members' server certificate
	ServerKey  string // its private key
	ClientCert string // a client certificate
	ClientKey  string // its private key
}

// certValidity is how long the test certificates are valid, from an hour
// before they are made (clock skew) on.
const certValidity = 24 * time.Hour

// newTestPKI makes a CA, a server and a client certificate, all ECDSA
// P-256, and writes them as PEM files in tb.TempDir().
func newTestPKI(tb testing.TB) *testPKI {
	tb.Helper()
	dir := tb.TempDir()
	p := &testPKI{
		CAFile:     filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
	}
	caKey := newECKey(tb)
	caTmpl := certTemplate(tb, "clustertest CA")
	caTmpl.IsCA = true
	caTmpl.BasicConstraintsValid = true
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	caDER := createCert(tb, caTmpl, caTmpl, caKey, caKey)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		tb.Fatalf("parsing the test CA: %v", err)
	}
	writePEM(tb, p.CAFile, "CERTIFICATE", caDER)

	srvTmpl := certTemplate(tb, "clustertest etcd member")
	srvTmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	srvTmpl.DNSNames = []string{"localhost"}
	srvTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	// A member's gRPC gateway connects to its own client port presenting
	// this certificate, which client certificate authentication then
	// checks for client use.
	srvTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	issue(tb, srvTmpl, ca, caKey, p.ServerCert, p.ServerKey)

	cliTmpl := certTemplate(tb, "clustertest verifyd")
	cliTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	cliTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	issue(tb, cliTmpl, ca, caKey, p.ClientCert, p.ClientKey)
	return p
}

// ClientTLS is a client configuration that trusts the CA and presents the
// client certificate.
func (p *testPKI) ClientTLS(tb testing.TB) *tls.Config {
	tb.Helper()
	cert, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		tb.Fatalf("loading the test client certificate: %v", err)
	}
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		tb.Fatalf("%s holds no PEM certificate", p.CAFile)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// newECKey returns a new ECDSA P-256 key.
func newECKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generating a key: %v", err)
	}
	return k
}

// certTemplate is a certificate template with a random serial number, the
// common name cn and the test validity.
func certTemplate(tb testing.TB, cn string) *x509.Certificate {
	tb.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"verifyd clustertest"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
	}
}

// createCert signs tmpl, for the public key of key, with parent and
// parentKey, and returns the certificate's DER encoding.
func createCert(tb testing.TB, tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) []byte {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatalf("creating certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	return der
}

// issue makes a key, has the CA sign tmpl for it, and writes the
// certificate to certFile and the key to keyFile.
func issue(tb testing.TB, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certFile, keyFile string) {
	tb.Helper()
	key := newECKey(tb)
	writePEM(tb, certFile, "CERTIFICATE", createCert(tb, tmpl, ca, key, caKey))
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("encoding the key of %q: %v", tmpl.Subject.CommonName, err)
	}
	writePEM(tb, keyFile, "PRIVATE KEY", der)
}

// writePEM writes one PEM block to path, readable by its owner only.
func writePEM(tb testing.TB, path, blockType string, der []byte) {
	tb.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
