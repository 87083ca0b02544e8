package trust

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/verify/jwt"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{Sources: []Source{
		{Name: "file", JWKSFile: "/k.json"},
		{Name: "url", JWKSURL: "https://idp.example/jwks"},
		{Name: "oidc", OIDCIssuer: "https://idp.example"},
		{Name: "hs", HS256: []Secret{{SecretEnv: "X"}}},
	}}
	c.EnsureDefaults()
	if c.Leeway != 60*time.Second || c.MaxTokenBytes != 8192 || c.MaxStaleness != 24*time.Hour ||
		c.FetchTimeout != 5*time.Second || c.MaxJWKSBytes != 1<<20 || c.UnknownKidRefresh != 30*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	want := []struct {
		refresh time.Duration
		alg     string
	}{{5 * time.Second, "ES256"}, {60 * time.Second, "ES256"}, {60 * time.Second, "ES256"}, {5 * time.Second, "HS256"}}
	for i, w := range want {
		s := c.Sources[i]
		if s.Refresh != w.refresh || len(s.Algorithms) != 1 || s.Algorithms[0] != w.alg {
			t.Errorf("sources[%d] (%s): refresh %v, algorithms %v; want %v, [%s]", i, s.Name, s.Refresh, s.Algorithms, w.refresh, w.alg)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestConfigValidate checks each rule on its own: the configuration is
// valid but for one field, and the error names its location.
func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{Sources: []Source{
			{Name: "idp", JWKSURL: "https://idp.example/jwks"},
			{Name: "proxy", HS256: []Secret{{Kid: "p1", SecretEnv: "P1"}}},
		}}
	}
	tests := []struct {
		name   string
		modify func(c *Config)
		want   string
	}{
		{"negative leeway", func(c *Config) { c.Leeway = -time.Second }, "trust.leeway: -1s is not positive"},
		{"token cap too small", func(c *Config) { c.MaxTokenBytes = 1000 }, "trust.max_token_bytes: 1000 is outside 1024..65536"},
		{"token cap too large", func(c *Config) { c.MaxTokenBytes = 65537 }, "trust.max_token_bytes: 65537 is outside"},
		{"negative staleness", func(c *Config) { c.MaxStaleness = -1 }, "trust.max_staleness"},
		{"negative fetch timeout", func(c *Config) { c.FetchTimeout = -1 }, "trust.fetch_timeout"},
		{"negative jwks cap", func(c *Config) { c.MaxJWKSBytes = -1 }, "trust.max_jwks_bytes"},
		{"huge jwks cap", func(c *Config) { c.MaxJWKSBytes = 1 << 40 }, "trust.max_jwks_bytes"},
		{"negative kid refresh", func(c *Config) { c.UnknownKidRefresh = -1 }, "trust.unknown_kid_refresh"},
		{"empty subject claim", func(c *Config) { c.Identity.SubjectClaims = []string{"sub", ""} }, "trust.identity: subject_claims[1] is empty"},
		{"empty name", func(c *Config) { c.Sources[0].Name = "" }, `trust.sources[0]: name "" must match`},
		{"bad name", func(c *Config) { c.Sources[0].Name = "IdP" }, `trust.sources[0]: name "IdP" must match [a-z0-9_-]{1,64}`},
		{"long name", func(c *Config) { c.Sources[0].Name = strings.Repeat("a", 65) }, "must match"},
		{"duplicate name", func(c *Config) { c.Sources[1].Name = "idp" }, `trust.sources[1] (idp): name "idp" is also used by trust.sources[0]`},
		{"no kind", func(c *Config) { c.Sources[0].JWKSURL = "" }, "trust.sources[0] (idp): exactly one of jwks_file, jwks_url, oidc_issuer and hs256 must be set (none is set)"},
		{"two kinds", func(c *Config) { c.Sources[0].JWKSFile = "/k" }, "(set: jwks_file, jwks_url)"},
		{"bad url scheme", func(c *Config) { c.Sources[0].JWKSURL = "ftp://idp.example/jwks" }, `trust.sources[0] (idp): jwks_url: scheme "ftp" is not http or https`},
		{"relative url", func(c *Config) { c.Sources[0].JWKSURL = "/jwks" }, "jwks_url: scheme"},
		{"oidc query", func(c *Config) { c.Sources[0] = Source{Name: "idp", OIDCIssuer: "https://idp.example?x=1"} }, "oidc_issuer: an issuer has no query"},
		{"oidc other issuer", func(c *Config) {
			c.Sources[0] = Source{Name: "idp", OIDCIssuer: "https://idp.example", Issuer: "https://other.example"}
		}, `issuer "https://other.example" differs from oidc_issuer`},
		{"secret file and env", func(c *Config) { c.Sources[1].HS256[0].SecretFile = "/s" }, "trust.sources[1] (proxy): hs256[0]: exactly one of secret_file and secret_env must be set"},
		{"secret without source", func(c *Config) { c.Sources[1].HS256[0].SecretEnv = "" }, "hs256[0]: exactly one of secret_file and secret_env"},
		{"missing kid with two secrets", func(c *Config) {
			c.Sources[1].HS256 = []Secret{{SecretEnv: "A"}, {Kid: "b", SecretEnv: "B"}}
		}, "trust.sources[1] (proxy): hs256[0]: kid is required: the registry holds 2 HS256 secrets"},
		{"missing kid across sources", func(c *Config) {
			c.Sources[0] = Source{Name: "other", HS256: []Secret{{Kid: "o", SecretEnv: "O"}}}
			c.Sources[1].HS256[0].Kid = ""
		}, "hs256[0]: kid is required"},
		{"duplicate secret kid", func(c *Config) {
			c.Sources[1].HS256 = []Secret{{Kid: "a", SecretEnv: "A"}, {Kid: "a", SecretEnv: "B"}}
		}, `hs256[1]: kid "a" is also used by trust.sources[1] (proxy): hs256[0]`},
		{"long secret kid", func(c *Config) { c.Sources[1].HS256[0].Kid = strings.Repeat("k", 257) }, "hs256[0]: kid is 257 bytes, the limit is 256"},
		{"refresh too short", func(c *Config) { c.Sources[0].Refresh = time.Millisecond }, "trust.sources[0] (idp): refresh 1ms is less than 1s"},
		{"negative file refresh", func(c *Config) { c.Sources[1].Refresh = -time.Second }, "trust.sources[1] (proxy): refresh -1s is not positive"},
		{"refresh beyond staleness", func(c *Config) { c.MaxStaleness = time.Minute; c.Sources[0].Refresh = time.Hour }, "refresh 1h0m0s is not less than trust.max_staleness 1m0s"},
		{"unknown algorithm", func(c *Config) { c.Sources[0].Algorithms = []string{"RS256"} }, `trust.sources[0] (idp): algorithms[0]: "RS256" is not accepted (only ES256 and HS256)`},
		{"none", func(c *Config) { c.Sources[0].Algorithms = []string{"none"} }, `algorithms[0]: "none" is not accepted`},
		{"lowercase algorithm", func(c *Config) { c.Sources[0].Algorithms = []string{"es256"} }, `algorithms[0]: "es256" is not accepted`},
		{"HS256 on a key set", func(c *Config) { c.Sources[0].Algorithms = []string{"ES256", "HS256"} }, "algorithms[1]: HS256 does not fit a jwks_url source, whose keys are all ES256"},
		{"ES256 on secrets", func(c *Config) { c.Sources[1].Algorithms = []string{"ES256"} }, "algorithms[0]: ES256 does not fit a hs256 source, whose keys are all HS256"},
		{"empty audience", func(c *Config) { c.Sources[0].Audience = []string{"api", ""} }, "trust.sources[0] (idp): audience[1] is empty"},
		{"empty scope claim", func(c *Config) { c.Sources[0].Identity = &Identity{ScopeClaims: []string{""}} }, "trust.sources[0] (idp): identity: scope_claims[0] is empty"},
	}
	if err := func() error { c := good(); c.EnsureDefaults(); return c.Validate() }(); err != nil {
		t.Fatalf("the base configuration is invalid: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good()
			tc.modify(&c)
			c.EnsureDefaults()
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v\nwant an error containing %q", err, tc.want)
			}
			// New reports the same problems.
			if _, err := New(c, &Options{Logger: quietLogger()}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

// TestConfigAllProblemsAtOnce checks that New reports every problem, of
// the configuration and of the files and secrets it names, in one error.
func TestConfigAllProblemsAtOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.json"), []byte(`{"keys":[]}`))
	short := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	c := Config{
		MaxTokenBytes: 10,
		Sources: []Source{
			{Name: "Bad Name", JWKSURL: "https://idp.example/jwks"},
			{Name: "proxy", HS256: []Secret{{Kid: "p", SecretEnv: "SHORT"}}},
			{Name: "file", JWKSFile: filepath.Join(dir, "bad.json")},
			{Name: "missing", JWKSFile: filepath.Join(dir, "missing.json")},
		},
	}
	env := func(name string) string {
		if name == "SHORT" {
			return short
		}
		return ""
	}
	// A problem outside the sources stops New before it reads files, whose
	// limits it sets.
	_, err := New(c, &Options{Getenv: env, Logger: quietLogger()})
	for _, want := range []string{"trust.max_token_bytes: 10 is outside 1024..65536", `trust.sources[0]: name "Bad Name" must match`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v\nwant an error containing %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "SHORT") {
		t.Errorf("New read a secret of a configuration that is invalid anyway: %v", err)
	}
	// Otherwise the problems of the sources' contents come with those of
	// the configuration.
	c.MaxTokenBytes = 0
	_, err = New(c, &Options{Getenv: env, Logger: quietLogger()})
	for _, want := range []string{
		`trust.sources[0]: name "Bad Name" must match`,
		"trust.sources[1] (proxy): hs256[0]: secret is 16 bytes, need at least 32",
		"trust.sources[2] (file): key set: no usable ES256 key (0 keys, 0 not for verifyd)",
		"trust.sources[3] (missing): open " + filepath.Join(dir, "missing.json"),
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v\nwant an error containing %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), short) {
		t.Errorf("the error shows the secret: %v", err)
	}
}

func TestConfigIsNotModified(t *testing.T) {
	c := Config{Sources: []Source{{Name: "proxy", HS256: []Secret{{SecretEnv: "S"}}}}}
	r := mustNew(t, c, &Options{Getenv: func(string) string { return string(secretText(randomSecret(t, 32))) }, Logger: quietLogger()})
	if c.Leeway != 0 || c.Sources[0].Refresh != 0 || c.Sources[0].Algorithms != nil {
		t.Errorf("New modified its argument: %+v", c)
	}
	k := mustResolve(t, r, jwt.HS256, "")
	if p := k.Profile(); p.Source != "proxy" || p.Leeway != DefaultLeeway {
		t.Errorf("profile %+v", p)
	}
}

func TestProfiles(t *testing.T) {
	c := Config{
		Leeway:   5 * time.Second,
		Identity: Identity{SubjectClaims: []string{"email"}, RolesClaim: "realm_access.roles", ScopeClaims: []string{"scp"}},
		Sources: []Source{
			{Name: "a", Issuer: "https://a.example", Audience: []string{"api"}, AllowMissingExp: true,
				Identity: &Identity{RolesClaim: "groups", RealmClaim: "tenant"},
				HS256:    []Secret{{Kid: "a", SecretEnv: "A"}}},
			{Name: "b", HS256: []Secret{{Kid: "b", SecretEnv: "B"}}},
		},
	}
	secret := string(secretText(randomSecret(t, 32)))
	r := mustNew(t, c, &Options{Getenv: func(string) string { return secret }, Logger: quietLogger()})
	a := mustResolve(t, r, jwt.HS256, "a").Profile()
	if a.Source != "a" || a.Issuer != "https://a.example" || len(a.Audience) != 1 || a.Audience[0] != "api" ||
		a.Leeway != 5*time.Second || !a.AllowNoExp || a.RolesClaim != "groups" || a.RealmClaim != "tenant" ||
		len(a.SubjectClaims) != 1 || a.SubjectClaims[0] != "email" || len(a.ScopeClaims) != 1 || a.ScopeClaims[0] != "scp" {
		t.Errorf("profile a: %+v", a)
	}
	b := mustResolve(t, r, jwt.HS256, "b").Profile()
	if b.Source != "b" || b.Issuer != "" || b.AllowNoExp || b.RolesClaim != "realm_access.roles" || b.RealmClaim != "" {
		t.Errorf("profile b: %+v", b)
	}
}
