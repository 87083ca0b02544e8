package httpapi

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Client certificate modes of TLSConfig.ClientAuth.
const (
	ClientAuthNone    = "none"    // no client certificate is asked for
	ClientAuthRequest = "request" // asked for, and verified when one is sent
	ClientAuthRequire = "require" // the handshake fails without a valid one
)

// Route groups of TLSConfig.ClientNames.
const (
	GroupAdmin  = "admin"  // /v1/admin/...
	GroupVerify = "verify" // /v1/verify, /v1/authz, /v1/introspect, /v1/compat/...
)

// DefaultTLSCheckInterval is how often the TLS files are checked for a
// change by default.
const DefaultTLSCheckInterval = 5 * time.Second

// TLSConfig is the http.tls section: TLS on the HTTP listener, with
// optional client certificates. Without CertFile and KeyFile the
// listener speaks plain HTTP.
type TLSConfig struct {
	// CertFile and KeyFile hold the server's certificate chain and its
	// private key, in PEM.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile holds the CA certificates, in PEM, that client
	// certificates must chain to. Required unless ClientAuth is none.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is none (the default), request (a client certificate is
	// asked for and verified when sent; a connection without one is
	// served, as far as ClientNames allows) or require (the handshake
	// fails without a valid client certificate, for every endpoint).
	ClientAuth string `yaml:"client_auth"`
	// ClientNames maps a route group, admin or verify, to the names a
	// verified client certificate must carry, as its subject's Common Name
	// or a DNS name, to call the group's endpoints. A name ending in '*'
	// matches every name that starts with the text before it ("broker-*");
	// "*" alone admits any verified certificate. Names compare without
	// regard to ASCII case. A group not listed admits any caller.
	ClientNames map[string][]string `yaml:"client_names"`
	// CheckInterval is how often the three files are checked for a
	// change (inode, size, modification time); a change reloads them.
	// Default 5s; negative: only on SIGHUP.
	CheckInterval time.Duration `yaml:"check_interval"`
}

// Enabled reports whether the listener speaks TLS.
func (c *TLSConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// Files returns the paths of the files the TLS material is read from.
func (c *TLSConfig) Files() []string {
	files := []string{c.CertFile, c.KeyFile}
	if c.ClientCAFile != "" {
		files = append(files, c.ClientCAFile)
	}
	return files
}

// EnsureDefaults fills in unset fields.
func (c *TLSConfig) EnsureDefaults() {
	if c.ClientAuth == "" {
		c.ClientAuth = ClientAuthNone
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultTLSCheckInterval
	}
}

// Validate reports every problem of the section at once. It reads no
// file: LoadTLS does.
func (c *TLSConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("http.tls."+format, args...)) }
	if !c.Enabled() {
		if c.ClientCAFile != "" || len(c.ClientNames) > 0 || c.ClientAuth != "" && c.ClientAuth != ClientAuthNone {
			bad("client_ca_file, client_auth and client_names need TLS: set cert_file and key_file")
		}
		return errors.Join(errs...)
	}
	if c.CertFile == "" || c.KeyFile == "" {
		bad("cert_file and key_file must be set together")
	}
	switch c.ClientAuth {
	case ClientAuthNone:
		if c.ClientCAFile != "" {
			bad("client_ca_file is set but client_auth is none: set client_auth to request or require")
		}
		if len(c.ClientNames) > 0 {
			bad("client_names needs client certificates: set client_auth to request or require, and client_ca_file")
		}
	case ClientAuthRequest, ClientAuthRequire:
		if c.ClientCAFile == "" {
			bad("client_auth %s needs client_ca_file, the CA bundle client certificates are verified against", c.ClientAuth)
		}
	default:
		bad("client_auth %q is not none, request or require", c.ClientAuth)
	}
	if _, err := compileClientNames(c.ClientNames); err != nil {
		errs = append(errs, fmt.Errorf("http.tls.%w", err))
	}
	return errors.Join(errs...)
}

// TLSCerts is the TLS material of the HTTP listener: the certificate and
// key, and the client CA bundle. Reload replaces it atomically; a
// handshake uses the material in force when it starts. It is safe for
// concurrent use.
type TLSCerts struct {
	cfg TLSConfig
	cur atomic.Pointer[tlsMaterial]
}

// tlsMaterial is one loaded version of the files. It is immutable.
type tlsMaterial struct {
	config *tls.Config
	leaf   *x509.Certificate
}

// LoadTLS reads the files cfg names and returns them ready to serve. cfg
// must be enabled and valid (see TLSConfig.Validate).
func LoadTLS(cfg TLSConfig) (*TLSCerts, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, errors.New("http.tls: cert_file and key_file are not set")
	}
	m, err := loadTLSMaterial(&cfg)
	if err != nil {
		return nil, err
	}
	c := &TLSCerts{cfg: cfg}
	c.cur.Store(m)
	return c, nil
}

// Reload reads the files again and puts them in force. On error (a file
// missing or unreadable, a key that does not match the certificate, a CA
// bundle with no certificate) the material in force stays.
func (c *TLSCerts) Reload() error {
	m, err := loadTLSMaterial(&c.cfg)
	if err != nil {
		return err
	}
	c.cur.Store(m)
	return nil
}

// CheckInterval returns how often the files are to be checked for a
// change; not positive: never.
func (c *TLSCerts) CheckInterval() time.Duration { return c.cfg.CheckInterval }

// Certificate returns the server certificate in force (the leaf of its
// chain), for logs and metrics.
func (c *TLSCerts) Certificate() *x509.Certificate { return c.cur.Load().leaf }

func loadTLSMaterial(cfg *TLSConfig) (*tlsMaterial, error) {
	pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("http.tls: certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("http.tls: certificate %s: %w", cfg.CertFile, err)
		}
	}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		NextProtos:   []string{"http/1.1"},
	}
	if cfg.ClientAuth != ClientAuthNone {
		pem, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("http.tls: client CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http.tls: client CA bundle %s holds no PEM certificate", cfg.ClientCAFile)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if cfg.ClientAuth == ClientAuthRequire {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return &tlsMaterial{config: conf, leaf: leaf}, nil
}

// Listener returns ln speaking TLS with the material in force at each
// handshake. The handshake runs on the connection's first read, under
// the server's read timeout; a client that speaks plain HTTP to it gets a
// 400 answer saying so, and is closed.
func (c *TLSCerts) Listener(ln net.Listener) net.Listener {
	base := &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return c.cur.Load().config, nil },
	}
	return &tlsListener{Listener: ln, config: base}
}

type tlsListener struct {
	net.Listener
	config *tls.Config
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tls.Server(c, l.config)}, nil
}

// tlsConn is one TLS connection of the HTTP listener. It remembers the
// names of its verified client certificate, and each route group's
// verdict on them. Its fields are used by the goroutine that serves the
// connection only: fasthttp reads requests and runs the handler of a
// connection in one goroutine.
type tlsConn struct {
	*tls.Conn
	handshook bool
	names     []string   // of the verified client certificate; none without one
	verdicts  [2]verdict // by group index
}

// verdict is a route group's decision on a connection's certificate.
type verdict uint8

const (
	verdictUnknown verdict = iota
	verdictAllowed
	verdictRefused
)

// plainHTTPAnswer is what a client that speaks plain HTTP to the TLS
// listener reads.
var plainHTTPAnswer = func() string {
	body := `{"code":"BAD_REQUEST","error":"bad_request","message":"this port speaks HTTPS, not plain HTTP: use an https:// address"}` + "\n"
	return fmt.Sprintf("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}()

func (c *tlsConn) Read(b []byte) (int, error) {
	if !c.handshook {
		if err := c.Conn.Handshake(); err != nil {
			var rh tls.RecordHeaderError
			if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader) {
				_ = rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = io.WriteString(rh.Conn, plainHTTPAnswer)
			}
			return 0, err
		}
		c.handshook = true
		if st := c.Conn.ConnectionState(); len(st.VerifiedChains) > 0 {
			c.names = certNames(st.VerifiedChains[0][0])
		}
	}
	return c.Conn.Read(b)
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain HTTP request.
func looksLikeHTTP(h [5]byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "DELET", "PATCH", "OPTIO"} {
		if string(h[:]) == m {
			return true
		}
	}
	return false
}

// certNames returns the names of a client certificate: its subject's
// Common Name and its DNS names.
func certNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	if c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return names
}

// clientNames is the compiled client certificate allowlist: per route
// group, the names admitted, or nil for a group that admits anyone.
type clientNames struct {
	groups [2][]string // by group index: GroupAdmin, GroupVerify
}

var groupNames = [2]string{GroupAdmin, GroupVerify}

// compileClientNames checks and compiles the allowlist m; nil for none.
func compileClientNames(m map[string][]string) (*clientNames, error) {
	if len(m) == 0 {
		return nil, nil
	}
	var errs []error
	c := &clientNames{}
	for group, names := range m {
		i := slices.Index(groupNames[:], group)
		if i < 0 {
			errs = append(errs, fmt.Errorf("client_names: route group %q is not admin or verify", group))
			continue
		}
		if len(names) == 0 {
			errs = append(errs, fmt.Errorf("client_names.%s is empty: list the names admitted, or leave the group out to admit anyone", group))
		}
		for _, n := range names {
			if n == "" || strings.IndexByte(n, '*') >= 0 && strings.IndexByte(n, '*') != len(n)-1 {
				errs = append(errs, fmt.Errorf("client_names.%s: %q is not a name, or a name with one '*' at its end", group, n))
			}
		}
		c.groups[i] = names
	}
	return c, errors.Join(errs...)
}

// group returns the index of the request's route group, or -1.
func group(ctx *fasthttp.RequestCtx) int {
	if isAuthzURI(ctx.Request.URI().PathOriginal()) {
		return 1
	}
	p := ctx.Path()
	switch {
	case bytes.HasPrefix(p, []byte("/v1/admin/")):
		return 0
	case string(p) == "/v1/verify", string(p) == "/v1/introspect", bytes.HasPrefix(p, []byte("/v1/compat/")):
		return 1
	}
	return -1
}

// admit reports whether the request may reach its route group, answering
// 403 when it may not: a group with an allowlist needs a verified client
// certificate bearing one of its names.
func (c *clientNames) admit(ctx *fasthttp.RequestCtx) bool {
	g := group(ctx)
	if g < 0 || c.groups[g] == nil {
		return true
	}
	tc, ok := ctx.Conn().(*tlsConn)
	if ok && tc.verdicts[g] == verdictUnknown {
		tc.verdicts[g] = verdictRefused
		if matchNames(c.groups[g], tc.names) {
			tc.verdicts[g] = verdictAllowed
		}
	}
	if ok && tc.verdicts[g] == verdictAllowed {
		return true
	}
	writeError(ctx, fasthttp.StatusForbidden, "FORBIDDEN",
		"the "+groupNames[g]+" endpoints need a client certificate whose name is on their allowlist (http.tls.client_names."+groupNames[g]+")")
	return false
}

// matchNames reports whether one of names matches one of patterns.
func matchNames(patterns, names []string) bool {
	for _, p := range patterns {
		for _, n := range names {
			if matchName(p, n) {
				return true
			}
		}
	}
	return false
}

// matchName matches a name against an allowlist pattern: equal without
// regard to ASCII case, or, for a pattern ending in '*', starting with the
// text before it.
func matchName(pattern, name string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) && name != ""
	}
	return strings.EqualFold(pattern, name)
}
