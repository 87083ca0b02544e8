package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config configures replicated mode. It is off when Etcd.Endpoints is
// empty: the node is then its own source of truth, as in single-node mode.
type Config struct {
	// Node names this node in the cluster status. Default: the host name.
	Node string `yaml:"node"`
	// SecretFile holds the deployment secret (at least 32 bytes), the same
	// on every node. The API-key checksum key and the access-request token
	// key are derived from it, so that a key minted on one node is
	// recognised on every other; it never goes to etcd.
	SecretFile string `yaml:"secret_file"`
	// MaxStaleness, when positive, makes the node fail closed (every
	// verification answers unavailable, /readyz 503) once it has not been
	// able to follow etcd for this long. Default 0: it keeps answering
	// from its replica however long etcd is away.
	MaxStaleness time.Duration `yaml:"max_staleness"`
	// ReportInterval is how often the node publishes its status (applied
	// revision, lag) for `verifyctl cluster status`. Default 5s.
	ReportInterval time.Duration `yaml:"report_interval"`
	Etcd           Etcd          `yaml:"etcd"`
}

// Etcd says how to reach the etcd cluster.
type Etcd struct {
	// Endpoints lists the etcd members' client URLs
	// (http://host:2379, or https:// with TLS).
	Endpoints []string `yaml:"endpoints"`
	// Prefix is the key prefix under which verifyd keeps its state; one
	// etcd cluster can hold several deployments under different prefixes.
	// Default "/verifyd/".
	Prefix string `yaml:"prefix"`
	// DialTimeout bounds the connection to a member. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// RequestTimeout bounds one write and its apply on this node. Default 5s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	TLS            TLS           `yaml:"tls"`
}

// TLS configures the client side of TLS to etcd. Empty: plain connections
// (https endpoints then use the system roots).
type TLS struct {
	CAFile   string `yaml:"ca_file"`   // CA certificates of the members
	CertFile string `yaml:"cert_file"` // client certificate, when etcd asks for one
	KeyFile  string `yaml:"key_file"`  // its private key
}

// Default values of Config fields.
const (
	DefaultPrefix         = "/verifyd/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	DefaultReportInterval = 5 * time.Second
)

// Enabled reports whether c turns replicated mode on.
func (c *Config) Enabled() bool { return len(c.Etcd.Endpoints) > 0 }

// EnsureDefaults sets every zero field of an enabled c to its default.
func (c *Config) EnsureDefaults() {
	if !c.Enabled() {
		return
	}
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	if c.Etcd.Prefix == "" {
		c.Etcd.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(c.Etcd.Prefix, "/") {
		c.Etcd.Prefix += "/"
	}
	if c.Etcd.DialTimeout == 0 {
		c.Etcd.DialTimeout = DefaultDialTimeout
	}
	if c.Etcd.RequestTimeout == 0 {
		c.Etcd.RequestTimeout = DefaultRequestTimeout
	}
	if c.ReportInterval == 0 {
		c.ReportInterval = DefaultReportInterval
	}
}

// Validate reports every invalid field of an enabled c, joined.
func (c *Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("cluster: "+format, args...))
	}
	if c.Node == "" || len(c.Node) > 128 || strings.ContainsAny(c.Node, "/ \t\r\n") {
		bad("node %.64q must be 1 to 128 bytes without '/' or spaces", c.Node)
	}
	if c.SecretFile == "" {
		bad("secret_file is required: a file of at least 32 random bytes, the same on every node")
	}
	for _, e := range c.Etcd.Endpoints {
		if e == "" || strings.ContainsAny(e, " \t\r\n") {
			bad("etcd endpoint %.64q is not a URL or host:port", e)
		}
	}
	if c.Etcd.DialTimeout <= 0 || c.Etcd.RequestTimeout <= 0 {
		bad("etcd dial_timeout and request_timeout must be positive")
	}
	if c.MaxStaleness < 0 {
		bad("max_staleness %v is negative", c.MaxStaleness)
	}
	if c.ReportInterval < time.Second {
		bad("report_interval %v is less than 1s", c.ReportInterval)
	}
	if (c.Etcd.TLS.CertFile == "") != (c.Etcd.TLS.KeyFile == "") {
		bad("etcd tls: cert_file and key_file go together")
	}
	return errors.Join(errs...)
}

// tlsConfig builds the client TLS configuration, or nil when TLS is not
// configured.
func (c *Config) tlsConfig() (*tls.Config, error) {
	t := c.Etcd.TLS
	if t.CAFile == "" && t.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: etcd CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster: etcd CA %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: etcd client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// MinSecretLen is the shortest deployment secret accepted.
const MinSecretLen = 32

// Secrets are the per-deployment keys every node must share, derived from
// the secret file.
type Secrets struct {
	ChecksumKey     []byte // the API-key checksum key
	RequestTokenKey []byte // the access-request token key
}

// LoadSecrets reads the secret file and derives the deployment keys from
// it (HMAC-SHA256 of the secret over a label per key). Surrounding white
// space is ignored, so that `head -c 48 /dev/urandom | base64 > secret`
// makes a good file.
func (c *Config) LoadSecrets() (Secrets, error) {
	b, err := os.ReadFile(c.SecretFile)
	if err != nil {
		return Secrets{}, fmt.Errorf("cluster: secret file: %w", err)
	}
	secret := []byte(strings.TrimSpace(string(b)))
	if len(secret) < MinSecretLen {
		return Secrets{}, fmt.Errorf("cluster: secret file %s holds %d bytes, need at least %d", c.SecretFile, len(secret), MinSecretLen)
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return Secrets{
		ChecksumKey:     derive("verifyd apikey checksum key v1"),
		RequestTokenKey: derive("verifyd access request token key v1"),
	}, nil
}
