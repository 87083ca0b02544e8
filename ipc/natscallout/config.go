package natscallout

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/verifyd/verifyd/rbac"
)

// Config configures the NATS auth callout service (YAML section
// nats_callout). The YAML keys are the snake_case names in the field tags;
// README.md and docs/integrations/nats.md document each one. Secrets (the
// callout user's password, the issuer and xkey seeds) are read from files
// or environment variables, never from the configuration file itself.
type Config struct {
	// Enabled starts the service. Default false.
	Enabled bool `yaml:"enabled"`
	// URL lists the NATS servers, comma-separated ("nats://host:4222";
	// schemes nats, tls, ws, wss). Default "nats://127.0.0.1:4222". It
	// carries no user information: credentials come from the fields below.
	URL string `yaml:"url"`
	// User is the callout user, one of the server's auth_callout
	// auth_users; its password comes from PasswordFile or PasswordEnv
	// (exactly one). Either User or NkeySeedFile is required.
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// NkeySeedFile holds the callout user's nkey seed ("SU..."), instead
	// of a user and password.
	NkeySeedFile string `yaml:"nkey_seed_file"`
	// IssuerSeedFile or IssuerSeedEnv (exactly one) holds the account seed
	// ("SA...") whose public key is the server's auth_callout issuer. It
	// signs the responses and the user JWTs.
	IssuerSeedFile string `yaml:"issuer_seed_file"`
	IssuerSeedEnv  string `yaml:"issuer_seed_env"`
	// XKeySeedFile or XKeySeedEnv (at most one) holds the curve seed
	// ("SX...") whose public key is the server's auth_callout xkey. With
	// it, requests and responses are encrypted, and an unencrypted request
	// is refused; without it, an encrypted request cannot be read.
	XKeySeedFile string `yaml:"xkey_seed_file"`
	XKeySeedEnv  string `yaml:"xkey_seed_env"`
	// Account is the account authorized clients are placed in (the user
	// JWT's audience). Required.
	Account string `yaml:"account"`
	// MaxTTL bounds the lifetime of an issued user JWT: a client is
	// disconnected when its credential expires or after MaxTTL, whichever
	// comes first, and reconnects through the callout again. It is the
	// longest a revocation or a policy change takes to reach a connected
	// client. Default 10m; at least 1s.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// QueueGroup is the queue group of the subscription, so that several
	// verifyd instances share the requests. Default "verifyd".
	QueueGroup string `yaml:"queue_group"`
	// Scopes says which scopes stand for NATS permissions.
	Scopes ScopeMapping `yaml:"scopes"`
}

// ScopeMapping says which scopes grant NATS permissions: a grant of
// <Prefix><subject>:<Publish> allows publishing to subject, one of
// <Prefix><subject>:<Subscribe> subscribing to it (see Subject for the
// wildcards).
type ScopeMapping struct {
	// Prefix starts the first segment of a NATS scope. Default "nats/".
	Prefix string `yaml:"prefix"`
	// Publish and Subscribe are the actions. Defaults "publish" and
	// "subscribe".
	Publish   string `yaml:"publish"`
	Subscribe string `yaml:"subscribe"`
}

// The defaults of Config.
const (
	DefaultURL        = "nats://127.0.0.1:4222"
	DefaultMaxTTL     = 10 * time.Minute
	DefaultQueueGroup = "verifyd"
)

// EnsureDefaults fills in unset fields.
func (c *Config) EnsureDefaults() {
	def := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	def(&c.URL, DefaultURL)
	def(&c.QueueGroup, DefaultQueueGroup)
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	c.Scopes.EnsureDefaults()
}

// EnsureDefaults fills in unset fields.
func (m *ScopeMapping) EnsureDefaults() {
	if m.Prefix == "" {
		m.Prefix = "nats/"
	}
	if m.Publish == "" {
		m.Publish = "publish"
	}
	if m.Subscribe == "" {
		m.Subscribe = "subscribe"
	}
}

// Validate reports every problem of c at once; call EnsureDefaults first.
// A disabled section is not checked.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	return c.check()
}

// check reports every problem of c at once, enabled or not.
func (c *Config) check() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("nats_callout."+format, args...))
	}
	for _, u := range splitURLs(c.URL) {
		if err := checkURL(u); err != nil {
			bad("url: %v", err)
		}
	}
	if len(splitURLs(c.URL)) == 0 {
		bad("url: no server URL")
	}
	switch {
	case c.User != "" && c.NkeySeedFile != "":
		bad("user: set either user (with a password) or nkey_seed_file, not both")
	case c.User == "" && c.NkeySeedFile == "":
		bad("user: the callout user is required: user with password_file or password_env, or nkey_seed_file")
	case c.User != "" && (c.PasswordFile == "") == (c.PasswordEnv == ""):
		bad("password_file: exactly one of password_file and password_env must be set for user %q", c.User)
	case c.User == "" && (c.PasswordFile != "" || c.PasswordEnv != ""):
		bad("password_file: a password needs a user")
	}
	if (c.IssuerSeedFile == "") == (c.IssuerSeedEnv == "") {
		bad("issuer_seed_file: exactly one of issuer_seed_file and issuer_seed_env must be set (the account seed whose public key is auth_callout.issuer)")
	}
	if c.XKeySeedFile != "" && c.XKeySeedEnv != "" {
		bad("xkey_seed_file: set at most one of xkey_seed_file and xkey_seed_env")
	}
	if !validName(c.Account) {
		bad("account: %q is not a NATS account name (required; no spaces, '.', '*' or '>')", c.Account)
	}
	if c.MaxTTL < time.Second {
		bad("max_ttl %s is below 1s", c.MaxTTL)
	}
	if !validName(c.QueueGroup) {
		bad("queue_group: %q is not a NATS queue group name (no spaces, '.', '*' or '>')", c.QueueGroup)
	}
	if err := c.Scopes.Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("nats_callout.%w", e))
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem of m at once.
func (m ScopeMapping) Validate() error {
	var errs []error
	if m.Prefix == "" || strings.ContainsAny(m.Prefix, ":*") || rbac.ValidateScope(m.Prefix) != nil {
		errs = append(errs, fmt.Errorf("scopes.prefix: %q must be scope characters without ':' or '*', such as \"nats/\"", m.Prefix))
	}
	for _, a := range [...]struct{ name, action string }{{"publish", m.Publish}, {"subscribe", m.Subscribe}} {
		if a.action == "" || strings.ContainsAny(a.action, ":*") || rbac.ValidateScope(a.action) != nil {
			errs = append(errs, fmt.Errorf("scopes.%s: %q must be one scope segment without '*'", a.name, a.action))
		}
	}
	if m.Publish == m.Subscribe {
		errs = append(errs, fmt.Errorf("scopes.subscribe: %q is also the publish action", m.Subscribe))
	}
	return errors.Join(errs...)
}

// splitURLs returns the URLs of a comma-separated list.
func splitURLs(list string) []string {
	var out []string
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// checkURL checks one server URL as nats.go reads it: a bare host:port
// means nats://host:port.
func checkURL(s string) error {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%q: the scheme must be nats, tls, ws or wss", s)
	}
	if u.User != nil {
		return fmt.Errorf("%s: credentials do not belong in the URL (use user and password_file)", u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

// validName reports whether s can name a NATS account or queue group.
func validName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '.' || c == '*' || c == '>' {
			return false
		}
	}
	return true
}

// unjoin returns the errors err joins, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
