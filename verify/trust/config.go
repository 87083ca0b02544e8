package trust

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/verifyd/verifyd/verify/jwt"
)

// Config is the trust section of the daemon configuration: the key sources
// JWTs are verified against and the limits that apply to them. It is a plain
// value, loaded from YAML; [New] works on a copy.
//
// Zero fields take their defaults ([Config.EnsureDefaults]). There is no way
// to ask for no clock skew at all: Leeway zero means the default, and the
// smallest tolerance is one nanosecond.
type Config struct {
	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means
	// [DefaultLeeway]; negative is invalid.
	Leeway time.Duration `yaml:"leeway"`
	// MaxTokenBytes caps the length of a JWT, checked before anything else.
	// It is applied by the verifier; it is validated here (1024..65536).
	// Zero means [DefaultMaxTokenBytes].
	MaxTokenBytes int `yaml:"max_token_bytes"`
	// MaxStaleness bounds how old the last good fetch of a URL or OIDC
	// source may be. Past it, the source's keys are retired and removed
	// (fail closed) until a fetch succeeds again. It must exceed every URL
	// source's Refresh. Zero means [DefaultMaxStaleness].
	MaxStaleness time.Duration `yaml:"max_staleness"`
	// FetchTimeout bounds one HTTP request, body included. Zero means
	// [DefaultFetchTimeout].
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// MaxJWKSBytes caps a key set or discovery document, fetched or read
	// from a file. Zero means [DefaultMaxJWKSBytes].
	MaxJWKSBytes int64 `yaml:"max_jwks_bytes"`
	// UnknownKidRefresh is the least time between two refreshes of a source
	// caused by tokens naming a key id nobody has. Zero means
	// [DefaultUnknownKidRefresh].
	UnknownKidRefresh time.Duration `yaml:"unknown_kid_refresh"`
	// Identity says where identities are read from in the claims, for every
	// source that does not override it.
	Identity Identity `yaml:"identity"`
	// Sources lists the trust sources. Names must be unique.
	Sources []Source `yaml:"sources"`
}

// Source is one trust source: exactly one of JWKSFile, JWKSURL, OIDCIssuer
// and HS256 is set. Each source becomes one [jwt.Profile] shared by all its
// keys.
type Source struct {
	// Name identifies the source in results, logs and metrics:
	// [a-z0-9_-]{1,64}, unique.
	Name string `yaml:"name"`
	// JWKSFile is a JWK set on disk, reloaded when it changes.
	JWKSFile string `yaml:"jwks_file"`
	// JWKSURL is a JWK set fetched over HTTP(S) every Refresh.
	JWKSURL string `yaml:"jwks_url"`
	// OIDCIssuer is an OpenID Connect issuer: its discovery document names
	// the JWK set, and its "issuer" must equal OIDCIssuer exactly.
	OIDCIssuer string `yaml:"oidc_issuer"`
	// HS256 lists shared secrets. Each is at least 32 bytes once decoded.
	HS256 []Secret `yaml:"hs256"`
	// Refresh is how often a URL or OIDC source is fetched (default
	// [DefaultURLRefresh]) or, for files (key sets and secret files), how
	// often they are checked for changes (default [DefaultFileRefresh]).
	Refresh time.Duration `yaml:"refresh"`
	// Algorithms is the allowlist of the source's keys: "ES256" for key set
	// and OIDC sources, "HS256" for hs256 sources, which is also the
	// default. Nothing else is accepted.
	Algorithms []string `yaml:"algorithms"`
	// Issuer, when set, must equal the tokens' "iss". An OIDC source
	// defaults to its issuer, and may not name another.
	Issuer string `yaml:"issuer"`
	// Audience, when set, lists the audiences the tokens' "aud" must name
	// one of.
	Audience []string `yaml:"audience"`
	// AllowMissingExp accepts tokens without "exp" from this source.
	AllowMissingExp bool `yaml:"allow_missing_exp"`
	// Identity overrides Config.Identity field by field: the fields set
	// here win.
	Identity *Identity `yaml:"identity"`
}

// Secret is one HS256 secret, base64url-encoded (padding optional) in a file
// or an environment variable: exactly one of SecretFile and SecretEnv.
// A secret file is reloaded when it changes; an environment variable is
// read once, at start.
type Secret struct {
	// Kid is the key id tokens name. It is required when the registry holds
	// more than one HS256 secret.
	Kid        string `yaml:"kid"`
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
}

// Identity says which claims carry the subject, roles, realm and scopes.
// Empty fields mean the [jwt.Profile] defaults.
type Identity struct {
	SubjectClaims []string `yaml:"subject_claims"`
	RolesClaim    string   `yaml:"roles_claim"`
	RealmClaim    string   `yaml:"realm_claim"`
	ScopeClaims   []string `yaml:"scope_claims"`
}

// Default values of Config and Source fields.
const (
	DefaultLeeway            = jwt.DefaultLeeway
	DefaultMaxTokenBytes     = 8192
	DefaultMaxStaleness      = 24 * time.Hour
	DefaultFetchTimeout      = 5 * time.Second
	DefaultMaxJWKSBytes      = 1 << 20
	DefaultUnknownKidRefresh = 30 * time.Second
	DefaultURLRefresh        = 60 * time.Second
	DefaultFileRefresh       = 5 * time.Second
)

// Limits enforced by [Config.Validate].
const (
	MinTokenBytes      = 1024
	MaxTokenBytesLimit = 65536
	maxJWKSBytesLimit  = 64 << 20
	maxSourceName      = 64
	minURLRefresh      = time.Second
)

// SourceType is the kind of a trust source.
type SourceType string

// The kinds of trust source.
const (
	TypeJWKSFile SourceType = "jwks_file"
	TypeJWKSURL  SourceType = "jwks_url"
	TypeOIDC     SourceType = "oidc_issuer"
	TypeHS256    SourceType = "hs256"
)

// fetched reports whether sources of type t are fetched over HTTP.
func (t SourceType) fetched() bool { return t == TypeJWKSURL || t == TypeOIDC }

// Type returns the kind of s, or "" unless exactly one of its kinds is set.
func (s *Source) Type() SourceType {
	var t SourceType
	n := 0
	if s.JWKSFile != "" {
		t, n = TypeJWKSFile, n+1
	}
	if s.JWKSURL != "" {
		t, n = TypeJWKSURL, n+1
	}
	if s.OIDCIssuer != "" {
		t, n = TypeOIDC, n+1
	}
	if len(s.HS256) > 0 {
		t, n = TypeHS256, n+1
	}
	if n != 1 {
		return ""
	}
	return t
}

// alg is the one algorithm the keys of a source of type t verify.
func (t SourceType) alg() jwt.Alg {
	if t == TypeHS256 {
		return jwt.HS256
	}
	return jwt.ES256
}

// EnsureDefaults sets every zero field of c, and of each of its sources, to
// its default value. It does not touch fields that are invalid.
func (c *Config) EnsureDefaults() {
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.MaxTokenBytes == 0 {
		c.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if c.MaxStaleness == 0 {
		c.MaxStaleness = DefaultMaxStaleness
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.MaxJWKSBytes == 0 {
		c.MaxJWKSBytes = DefaultMaxJWKSBytes
	}
	if c.UnknownKidRefresh == 0 {
		c.UnknownKidRefresh = DefaultUnknownKidRefresh
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		t := s.Type()
		if s.Refresh == 0 {
			if t.fetched() {
				s.Refresh = DefaultURLRefresh
			} else {
				s.Refresh = DefaultFileRefresh
			}
		}
		if len(s.Algorithms) == 0 && t != "" {
			s.Algorithms = []string{t.alg().String()}
		}
	}
}

// clone returns a copy of c that shares nothing mutable with it.
func (c Config) clone() Config {
	c.Identity = c.Identity.clone()
	c.Sources = slices.Clone(c.Sources)
	for i := range c.Sources {
		s := &c.Sources[i]
		s.HS256 = slices.Clone(s.HS256)
		s.Algorithms = slices.Clone(s.Algorithms)
		s.Audience = slices.Clone(s.Audience)
		if s.Identity != nil {
			id := s.Identity.clone()
			s.Identity = &id
		}
	}
	return c
}

func (id Identity) clone() Identity {
	id.SubjectClaims = slices.Clone(id.SubjectClaims)
	id.ScopeClaims = slices.Clone(id.ScopeClaims)
	return id
}

// merge returns base with the fields set in over replacing its own.
func (id Identity) merge(over *Identity) Identity {
	if over == nil {
		return id
	}
	if len(over.SubjectClaims) > 0 {
		id.SubjectClaims = over.SubjectClaims
	}
	if over.RolesClaim != "" {
		id.RolesClaim = over.RolesClaim
	}
	if over.RealmClaim != "" {
		id.RealmClaim = over.RealmClaim
	}
	if len(over.ScopeClaims) > 0 {
		id.ScopeClaims = over.ScopeClaims
	}
	return id
}

// Validate reports every invalid field of c, joined into one error; each
// problem names its location, e.g. "trust.sources[1] (proxy): hs256[0]:
// exactly one of secret_file and secret_env must be set". Zero fields are
// invalid until EnsureDefaults has filled them. Validate reads no file and
// no environment variable: [New] reports the problems of their contents.
func (c *Config) Validate() error {
	return errors.Join(c.validate(nil)...)
}

// validate returns the problems of c. When badSource is not nil, it records
// the sources with problems of their own, and -1 when c has problems
// outside its sources.
func (c *Config) validate(badSource map[int]bool) []error {
	var errs []error
	src := -1
	bad := func(loc, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", loc, fmt.Sprintf(format, args...)))
		if badSource != nil {
			badSource[src] = true
		}
	}
	if c.Leeway <= 0 {
		bad("trust.leeway", "%v is not positive", c.Leeway)
	}
	if c.MaxTokenBytes < MinTokenBytes || c.MaxTokenBytes > MaxTokenBytesLimit {
		bad("trust.max_token_bytes", "%d is outside %d..%d", c.MaxTokenBytes, MinTokenBytes, MaxTokenBytesLimit)
	}
	if c.MaxStaleness <= 0 {
		bad("trust.max_staleness", "%v is not positive", c.MaxStaleness)
	}
	if c.FetchTimeout <= 0 {
		bad("trust.fetch_timeout", "%v is not positive", c.FetchTimeout)
	}
	if c.MaxJWKSBytes < 1 || c.MaxJWKSBytes > maxJWKSBytesLimit {
		bad("trust.max_jwks_bytes", "%d is outside 1..%d", c.MaxJWKSBytes, maxJWKSBytesLimit)
	}
	if c.UnknownKidRefresh <= 0 {
		bad("trust.unknown_kid_refresh", "%v is not positive", c.UnknownKidRefresh)
	}
	for _, p := range c.Identity.problems() {
		bad("trust.identity", "%s", p)
	}

	names := make(map[string]int, len(c.Sources))
	hsSecrets := 0
	for i := range c.Sources {
		hsSecrets += len(c.Sources[i].HS256)
	}
	secretKids := make(map[string]string) // kid -> location of its first use
	for i := range c.Sources {
		src = i
		s := &c.Sources[i]
		loc := sourceLocation(i, s.Name)
		if !validName(s.Name) {
			bad(loc, "name %q must match [a-z0-9_-]{1,%d}", s.Name, maxSourceName)
		} else if j, dup := names[s.Name]; dup {
			bad(loc, "name %q is also used by trust.sources[%d]", s.Name, j)
		} else {
			names[s.Name] = i
		}
		t := s.Type()
		if t == "" {
			bad(loc, "exactly one of jwks_file, jwks_url, oidc_issuer and hs256 must be set (%s)", s.kindsSet())
		}
		switch t {
		case TypeJWKSURL:
			if err := checkURL(s.JWKSURL); err != nil {
				bad(loc, "jwks_url: %v", err)
			}
		case TypeOIDC:
			if err := checkURL(s.OIDCIssuer); err != nil {
				bad(loc, "oidc_issuer: %v", err)
			} else if u, _ := url.Parse(s.OIDCIssuer); u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
				bad(loc, "oidc_issuer: an issuer has no query, fragment or user information")
			}
			if s.Issuer != "" && s.Issuer != s.OIDCIssuer {
				bad(loc, "issuer %q differs from oidc_issuer %q: tokens of an OIDC issuer carry its name", s.Issuer, s.OIDCIssuer)
			}
		case TypeHS256:
			for j, sec := range s.HS256 {
				sloc := fmt.Sprintf("%s: hs256[%d]", loc, j)
				if (sec.SecretFile == "") == (sec.SecretEnv == "") {
					bad(sloc, "exactly one of secret_file and secret_env must be set")
				}
				if len(sec.Kid) > jwt.MaxKeyIDBytes {
					bad(sloc, "kid is %d bytes, the limit is %d", len(sec.Kid), jwt.MaxKeyIDBytes)
				}
				if sec.Kid == "" && hsSecrets > 1 {
					bad(sloc, "kid is required: the registry holds %d HS256 secrets", hsSecrets)
				}
				if sec.Kid != "" {
					if first, dup := secretKids[sec.Kid]; dup {
						bad(sloc, "kid %s is also used by %s", safeKid(sec.Kid), first)
					} else {
						secretKids[sec.Kid] = sloc
					}
				}
			}
		}
		if t != "" {
			if t.fetched() && s.Refresh < minURLRefresh {
				bad(loc, "refresh %v is less than %v", s.Refresh, minURLRefresh)
			} else if s.Refresh <= 0 {
				bad(loc, "refresh %v is not positive", s.Refresh)
			}
			if t.fetched() && c.MaxStaleness > 0 && s.Refresh >= c.MaxStaleness {
				bad(loc, "refresh %v is not less than trust.max_staleness %v: the source would go stale between fetches", s.Refresh, c.MaxStaleness)
			}
		}
		if len(s.Algorithms) == 0 && t != "" {
			bad(loc, "algorithms is empty")
		}
		for j, name := range s.Algorithms {
			alg, err := jwt.ParseAlg(name)
			switch {
			case err != nil:
				bad(loc, "algorithms[%d]: %q is not accepted (only ES256 and HS256)", j, name)
			case t != "" && alg != t.alg():
				bad(loc, "algorithms[%d]: %s does not fit a %s source, whose keys are all %s", j, name, t, t.alg())
			}
		}
		for j, aud := range s.Audience {
			if aud == "" {
				bad(loc, "audience[%d] is empty", j)
			}
		}
		if s.Identity != nil {
			for _, p := range s.Identity.problems() {
				bad(loc, "identity: %s", p)
			}
		}
	}
	return errs
}

// sourceLocation names sources[i] in errors: its name is shown only when it
// is a valid one.
func sourceLocation(i int, name string) string {
	if validName(name) {
		return fmt.Sprintf("trust.sources[%d] (%s)", i, name)
	}
	return fmt.Sprintf("trust.sources[%d]", i)
}

func (s *Source) kindsSet() string {
	var set []string
	if s.JWKSFile != "" {
		set = append(set, "jwks_file")
	}
	if s.JWKSURL != "" {
		set = append(set, "jwks_url")
	}
	if s.OIDCIssuer != "" {
		set = append(set, "oidc_issuer")
	}
	if len(s.HS256) > 0 {
		set = append(set, "hs256")
	}
	if len(set) == 0 {
		return "none is set"
	}
	return "set: " + strings.Join(set, ", ")
}

func (id *Identity) problems() []string {
	var out []string
	for j, c := range id.SubjectClaims {
		if c == "" {
			out = append(out, fmt.Sprintf("subject_claims[%d] is empty", j))
		}
	}
	for j, c := range id.ScopeClaims {
		if c == "" {
			out = append(out, fmt.Sprintf("scope_claims[%d] is empty", j))
		}
	}
	return out
}

func validName(name string) bool {
	if len(name) == 0 || len(name) > maxSourceName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkURL accepts absolute http and https URLs with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}
