package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/internal/testpki"
	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// tlsServer is a Server over a real store, serving TLS on loopback.
type tlsServer struct {
	t     *testing.T
	addr  string
	certs *TLSCerts
	ca    *testpki.CA // issued the server's certificate and the clients'
	v     *verify.Verifier
}

// newTLSServer starts a server with the TLS section cfg, completed with
// a server certificate from a new CA (and that CA as the client CA when
// client_auth is not none).
func newTLSServer(t *testing.T, cfg TLSConfig, configure func(*Options)) *tlsServer {
	t.Helper()
	ca := testpki.NewCA(t, "test-ca")
	dir := t.TempDir()
	cfg.CertFile, cfg.KeyFile = ca.Server(t, "verifyd-1").Write(t, dir, "server")
	if cfg.ClientAuth != "" && cfg.ClientAuth != ClientAuthNone {
		cfg.ClientCAFile = ca.CertFile(t)
	}
	certs, err := LoadTLS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	store, err := keystore.Open(t.TempDir(), &keystore.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ck, _ := credential.NewChecksumKey()
	minter, err := credential.NewMinter(ck)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(store, minter, &verify.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Verifier:    v,
		Manager:     verify.NewManager(store, minter, keystore.Sum(adminKey), nil),
		Gatherer:    reg,
		Registerer:  reg,
		ClientNames: cfg.ClientNames,
	}
	if configure != nil {
		configure(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(certs.Listener(ln)) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve after Shutdown: %v", err)
		}
	})
	return &tlsServer{t: t, addr: ln.Addr().String(), certs: certs, ca: ca, v: v}
}

// client returns an HTTPS client that trusts roots and presents pair (when
// it has a certificate).
func (s *tlsServer) client(roots *x509.Certificate, pair testpki.Pair, maxVersion uint16) *http.Client {
	s.t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(roots)
	conf := &tls.Config{RootCAs: pool, MaxVersion: maxVersion}
	if pair.CertPEM != nil {
		c, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
		if err != nil {
			s.t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
}

// get sends method path over c and returns the status and the answer's
// "code" (for errors), or the error of a failed request.
func (s *tlsServer) get(c *http.Client, method, path, body string) (int, string, error) {
	req, err := http.NewRequest(method, "https://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("X-Admin-Key", adminKey)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var e struct {
		Code string `json:"code"`
	}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Code, nil
}

func (s *tlsServer) want(c *http.Client, method, path string, status int, code string) {
	s.t.Helper()
	got, gotCode, err := s.get(c, method, path, `{"token":"unknown-key-0123456789"}`)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	if got != status || gotCode != code {
		s.t.Errorf("%s %s: %d %s, want %d %s", method, path, got, gotCode, status, code)
	}
}

// TestTLSClientNames checks the allowlists of client certificate names per
// route group, with client certificates requested but not required.
func TestTLSClientNames(t *testing.T) {
	s := newTLSServer(t, TLSConfig{
		ClientAuth:  ClientAuthRequest,
		ClientNames: map[string][]string{GroupAdmin: {"ops-console"}, GroupVerify: {"broker-*", "gw.example.com"}},
	}, nil)
	root := s.ca.Cert
	anon := s.client(root, testpki.Pair{}, 0)
	ops := s.client(root, s.ca.Client(t, "ops-console"), 0)
	broker := s.client(root, s.ca.Client(t, "BROKER-7"), 0)
	gateway := s.client(root, s.ca.Client(t, "", "gw.example.com"), 0) // a DNS name, no Common Name
	stranger := s.client(root, s.ca.Client(t, "broker"), 0)            // "broker-*" needs the '-'

	for _, tc := range []struct {
		name   string
		c      *http.Client
		admin  bool // may use the admin group
		verify bool // may use the verify group
	}{
		{"no certificate", anon, false, false},
		{"ops-console", ops, true, false},
		{"broker-* in another case", broker, false, true},
		{"DNS name", gateway, false, true},
		{"a name on no list", stranger, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Groups without a list, and paths outside the groups, admit anyone.
			s.want(tc.c, "GET", "/healthz", 200, "")
			s.want(tc.c, "GET", "/v1/nothing", 404, "NOT_FOUND")
			for _, p := range []struct {
				method, path string
				allowed      bool
				status       int
				code         string
			}{
				{"GET", "/v1/admin/keys", tc.admin, 200, ""},
				{"GET", "/v1/admin/policy", tc.admin, 200, ""},
				{"POST", "/v1/verify", tc.verify, 401, "UNAUTHORIZED"},
				{"GET", "/v1/authz", tc.verify, 401, "UNAUTHORIZED"},
				{"GET", "/v1/authz/some/path", tc.verify, 401, "UNAUTHORIZED"},
				{"POST", "/v1/introspect", tc.verify, 401, ""},
				{"POST", "/v1/compat/none", tc.verify, 404, "NOT_FOUND"},
			} {
				if p.allowed {
					s.want(tc.c, p.method, p.path, p.status, p.code)
				} else {
					s.want(tc.c, p.method, p.path, 403, "FORBIDDEN")
				}
			}
		})
	}

	// A certificate from another CA is not verified: the handshake fails.
	// (The client is made to present it: Go's client would otherwise
	// leave out a certificate the server's CA list does not name, and get
	// 403 as a client without one.)
	other := testpki.NewCA(t, "other-ca")
	forged := s.client(root, testpki.Pair{}, 0)
	pair := other.Client(t, "ops-console")
	c, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	forged.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	if _, _, err := s.get(forged, "GET", "/v1/admin/keys", ""); err == nil {
		t.Error("a client certificate from an unknown CA was accepted")
	}
	s.want(s.client(root, pair, 0), "GET", "/v1/admin/keys", 403, "FORBIDDEN")
	// A client that does not trust the server's CA refuses it.
	if _, _, err := s.get(s.client(other.Cert, testpki.Pair{}, 0), "GET", "/healthz", ""); err == nil {
		t.Error("a client trusted a certificate from an unknown CA")
	}
}

func TestTLSRequireAndMinimumVersion(t *testing.T) {
	s := newTLSServer(t, TLSConfig{ClientAuth: ClientAuthRequire}, nil)
	root := s.ca.Cert
	if _, _, err := s.get(s.client(root, testpki.Pair{}, 0), "GET", "/healthz", ""); err == nil {
		t.Error("client_auth require served a client without a certificate")
	}
	with := s.client(root, s.ca.Client(t, "anyone"), 0)
	s.want(with, "GET", "/healthz", 200, "")
	if _, _, err := s.get(s.client(root, s.ca.Client(t, "anyone"), tls.VersionTLS11), "GET", "/healthz", ""); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	s.want(s.client(root, s.ca.Client(t, "anyone"), tls.VersionTLS12), "GET", "/healthz", 200, "")
}

// TestTLSPlainHTTPIsRefused sends plain HTTP to the TLS port: the client
// reads a 400 that says what is wrong, and the connection closes.
func TestTLSPlainHTTPIsRefused(t *testing.T) {
	s := newTLSServer(t, TLSConfig{}, nil)
	resp, err := http.Get("http://" + s.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "https://") || !json.Valid(b) {
		t.Errorf("plain HTTP: %d %q", resp.StatusCode, b)
	}
	// The server goes on serving TLS.
	s.want(s.client(s.ca.Cert, testpki.Pair{}, 0), "GET", "/healthz", 200, "")
}

// TestTLSReload replaces the certificate: new connections get the new
// one; a broken pair leaves the one in force serving.
func TestTLSReload(t *testing.T) {
	s := newTLSServer(t, TLSConfig{}, nil)
	serving := func() string {
		t.Helper()
		pool := x509.NewCertPool()
		pool.AddCert(s.ca.Cert)
		conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := serving(); cn != "verifyd-1" {
		t.Fatalf("serving %q", cn)
	}
	cfg := s.certs.cfg
	next := s.ca.Server(t, "verifyd-2")
	// Half written: the new certificate with the old key.
	if err := os.WriteFile(cfg.CertFile, next.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.certs.Reload(); err == nil || !strings.Contains(err.Error(), cfg.CertFile) {
		t.Errorf("Reload of a mismatched pair: %v", err)
	}
	if cn := serving(); cn != "verifyd-1" {
		t.Errorf("after a failed reload, serving %q", cn)
	}
	if err := os.WriteFile(cfg.KeyFile, next.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := serving(); cn != "verifyd-2" {
		t.Errorf("after the reload, serving %q", cn)
	}
	if cn := s.certs.Certificate().Subject.CommonName; cn != "verifyd-2" {
		t.Errorf("Certificate() = %q", cn)
	}
	// A key file that is not a key at all.
	if err := os.WriteFile(cfg.KeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.certs.Reload(); err == nil {
		t.Error("Reload accepted a garbage key")
	}
	if cn := serving(); cn != "verifyd-2" {
		t.Errorf("after a failed reload, serving %q", cn)
	}
}

func TestTLSConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  TLSConfig
		want []string // "" : valid
	}{
		{"off", TLSConfig{}, nil},
		{"on", TLSConfig{CertFile: "c", KeyFile: "k"}, nil},
		{"mtls", TLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: "require", ClientCAFile: "ca", ClientNames: map[string][]string{"admin": {"ops", "*"}, "verify": {"broker-*"}}}, nil},
		{"client settings without TLS", TLSConfig{ClientCAFile: "ca", ClientAuth: "request"}, []string{"need TLS"}},
		{"one file", TLSConfig{CertFile: "c"}, []string{"set together"}},
		{"bad mode", TLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: "optional"}, []string{`"optional"`}},
		{"no CA", TLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: "request"}, []string{"needs client_ca_file"}},
		{"CA without mode", TLSConfig{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}, []string{"client_auth is none"}},
		{"names without certificates", TLSConfig{CertFile: "c", KeyFile: "k", ClientNames: map[string][]string{"admin": {"x"}}}, []string{"client_names needs client certificates"}},
		{"bad names", TLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: "request", ClientCAFile: "ca",
			ClientNames: map[string][]string{"pats": {"x"}, "admin": {"a*b", ""}, "verify": {}}}, []string{`"pats"`, `"a*b"`, `""`, "client_names.verify is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.EnsureDefaults()
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %s:\n%v", w, err)
				}
			}
		})
	}
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	cert, key := ca.Server(t, "s").Write(t, dir, "s")
	bogus := writeTemp(t, dir, "bogus.pem", []byte("not PEM"))
	for name, cfg := range map[string]TLSConfig{
		"missing key":      {CertFile: cert, KeyFile: dir + "/missing.pem"},
		"CA with no certs": {CertFile: cert, KeyFile: key, ClientAuth: "request", ClientCAFile: bogus},
		"missing CA":       {CertFile: cert, KeyFile: key, ClientAuth: "request", ClientCAFile: dir + "/missing.pem"},
	} {
		if _, err := LoadTLS(cfg); err == nil {
			t.Errorf("%s: LoadTLS succeeded", name)
		}
	}
}

func writeTemp(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := dir + "/" + name
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMatchName(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"ops-console", "ops-console", true},
		{"ops-console", "OPS-Console", true},
		{"ops-console", "ops-console2", false},
		{"broker-*", "broker-1", true},
		{"broker-*", "broker-", true},
		{"broker-*", "broker", false},
		{"broker-*", "xbroker-1", false},
		{"*", "anything", true},
		{"*", "", false},
	} {
		if got := matchName(tc.pattern, tc.name); got != tc.want {
			t.Errorf("matchName(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
	if !looksLikeHTTP([5]byte([]byte("GET /"))) || looksLikeHTTP([5]byte{0x16, 3, 1, 0, 0}) {
		t.Error("looksLikeHTTP")
	}
	if !bytes.Contains([]byte(plainHTTPAnswer), []byte("Content-Length: ")) {
		t.Error("plainHTTPAnswer")
	}
}
