package clustertest

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/verifyd/verifyd/internal/testpki"
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
	ca         *testpki.CA
}

// newTestPKI makes a CA, a server and a client certificate (package
// testpki) and writes them as PEM files in tb.TempDir().
func newTestPKI(tb testing.TB) *testPKI {
	tb.Helper()
	dir := tb.TempDir()
	ca := testpki.NewCA(tb, "clustertest CA")
	p := &testPKI{CAFile: ca.CertFile(tb), ca: ca}
	// A member's gRPC gateway connects to its own client port presenting
	// the server certificate, which client certificate authentication then
	// checks for client use: hence a peer certificate.
	p.ServerCert, p.ServerKey = ca.Peer(tb, "clustertest etcd member").Write(tb, dir, "server")
	p.ClientCert, p.ClientKey = ca.Client(tb, "clustertest verifyd").Write(tb, dir, "client")
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
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.Cert)
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}
