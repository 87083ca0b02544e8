package adminclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/testpki"
)

// TestNewTLS calls a daemon stand-in that requires a client certificate
// from the test CA, with the files LoadTLSConfig reads.
func TestNewTLS(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.VerifiedChains) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "ops" || r.Header.Get("X-Admin-Key") != "admin-key-0123456789" {
			http.Error(w, `{"code":"FORBIDDEN"}`, http.StatusForbidden)
			return
		}
		w.Write([]byte(`{"keys":[]}`))
	}))
	server := ca.Server(t, "srv")
	pair, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()

	dir := t.TempDir()
	certFile, keyFile := ca.Client(t, "ops").Write(t, dir, "ops")
	conf, err := LoadTLSConfig(ca.CertFile(t), certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewTLS(srv.URL, "admin-key-0123456789", 5*time.Second, conf)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := c.ListKeys(t.Context(), ""); err != nil || len(keys) != 0 {
		t.Errorf("ListKeys over TLS: %v %v", keys, err)
	}
	// Without the client certificate the handshake fails.
	conf, err = LoadTLSConfig(ca.CertFile(t), "", "")
	if err != nil {
		t.Fatal(err)
	}
	c, _ = NewTLS(srv.URL, "admin-key-0123456789", 5*time.Second, conf)
	if _, err := c.ListKeys(t.Context(), ""); err == nil {
		t.Error("a client without a certificate was served")
	}

	for name, files := range map[string][3]string{
		"missing CA":        {filepath.Join(dir, "none.pem"), "", ""},
		"CA without a cert": {keyFile, "", ""},
		"certificate only":  {"", certFile, ""},
		"key only":          {"", "", keyFile},
		"mismatched pair":   {"", certFile, ca.CertFile(t)},
	} {
		if _, err := LoadTLSConfig(files[0], files[1], files[2]); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewTLS("http://127.0.0.1:1", "", 0, conf); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "https://") {
		t.Errorf("NewTLS with http://: %v", err)
	}
}
