package natscallout

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
	"gopkg.in/yaml.v3"
)

// TestConfigDocumented: the documented verifyd block decodes into Config
// with no unknown key and is valid.
func TestConfigDocumented(t *testing.T) {
	var doc struct {
		NATSCallout Config `yaml:"nats_callout"`
	}
	dec := yaml.NewDecoder(bytes.NewReader([]byte(docBlock(t, "verifyd.yaml"))))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	c := doc.NATSCallout
	c.EnsureDefaults()
	if err := c.Validate(); err != nil || !c.Enabled || c.Account != "APP" || c.MaxTTL != 10*time.Minute {
		t.Fatalf("%+v: %v", c, err)
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.EnsureDefaults()
	if c.URL != DefaultURL || c.MaxTTL != DefaultMaxTTL || c.QueueGroup != DefaultQueueGroup || c.Scopes != defaultMapping {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("a disabled section is not checked: %v", err)
	}
	c.Enabled = true
	if err := c.Validate(); err == nil {
		t.Fatal("an enabled section without user, issuer and account is valid")
	}
}

func TestConfigValidate(t *testing.T) {
	valid := Config{Enabled: true, User: "verifyd", PasswordFile: "/p", IssuerSeedEnv: "SEED", Account: "APP"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string // each must appear in the error
	}{
		{"valid", func(*Config) {}, nil},
		{"nkey user", func(c *Config) { c.User, c.PasswordFile, c.NkeySeedFile = "", "", "/u.nk" }, nil},
		{"several URLs", func(c *Config) { c.URL = "nats://a:4222, tls://b:4443,c:4222" }, nil},
		{"xkey", func(c *Config) { c.XKeySeedFile = "/x.nk" }, nil},
		{"every problem at once", func(c *Config) {
			*c = Config{Enabled: true, URL: "http://a,nats://u:p@b:4222,nats://", PasswordEnv: "P", XKeySeedFile: "/x", XKeySeedEnv: "X",
				Account: "A.B", MaxTTL: time.Millisecond, QueueGroup: "a b", Scopes: ScopeMapping{Prefix: "nats:", Publish: "p*", Subscribe: "p*"}}
		}, []string{
			"nats_callout.url: \"http://a\": the scheme",
			"nats_callout.url: nats://u:xxxxx@b:4222: credentials do not belong in the URL",
			"nats_callout.url: \"nats://\" has no host",
			"nats_callout.user: the callout user is required",
			"nats_callout.issuer_seed_file: exactly one",
			"nats_callout.xkey_seed_file: set at most one",
			"nats_callout.account: \"A.B\"",
			"nats_callout.max_ttl 1ms is below 1s",
			"nats_callout.queue_group: \"a b\"",
			"nats_callout.scopes.prefix: \"nats:\"",
			"nats_callout.scopes.publish: \"p*\" must be one scope segment",
			"nats_callout.scopes.subscribe: \"p*\" must be one scope segment",
			"nats_callout.scopes.subscribe: \"p*\" is also the publish action",
		}},
		{"user and nkey", func(c *Config) { c.NkeySeedFile = "/u.nk" }, []string{"set either user (with a password) or nkey_seed_file"}},
		{"two passwords", func(c *Config) { c.PasswordEnv = "P" }, []string{"exactly one of password_file and password_env"}},
		{"two issuer seeds", func(c *Config) { c.IssuerSeedFile = "/i" }, []string{"exactly one of issuer_seed_file and issuer_seed_env"}},
		{"no URL", func(c *Config) { c.URL = " , " }, []string{"nats_callout.url: no server URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			c.EnsureDefaults()
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("valid, want %q", tc.want)
			}
			if n := len(unjoin(err)); n != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%v", n, len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestNewSecrets: New reads the seeds and the password, refuses seeds of
// the wrong kind, and never shows a secret in an error.
func TestNewSecrets(t *testing.T) {
	e := newTestEnv(t, "")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	user, _ := nkeys.CreateUser()
	userSeed, _ := user.Seed()
	issuerSeed, _ := e.issuer.Seed()
	xSeed, _ := e.xkey.Seed()
	env := map[string]string{"ISSUER": string(issuerSeed), "USER_SEED": string(userSeed), "X": string(xSeed), "PW": "pw"}
	getenv := func(k string) string { return env[k] }
	base := Config{Enabled: true, User: "verifyd", PasswordEnv: "PW", IssuerSeedEnv: "ISSUER", Account: "APP"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" : New succeeds
	}{
		{"valid", func(*Config) {}, ""},
		{"issuer from a file", func(c *Config) { c.IssuerSeedEnv, c.IssuerSeedFile = "", write("issuer.nk", append(issuerSeed, '\n')) }, ""},
		{"xkey", func(c *Config) { c.XKeySeedEnv = "X" }, ""},
		{"nkey user", func(c *Config) { c.User, c.PasswordEnv, c.NkeySeedFile = "", "", write("user.nk", userSeed) }, ""},
		{"a user seed as issuer", func(c *Config) { c.IssuerSeedEnv = "USER_SEED" }, "the issuer seed is not an account seed"},
		{"an account seed as xkey", func(c *Config) { c.XKeySeedEnv = "ISSUER" }, "the xkey seed is not a curve seed"},
		{"not a seed", func(c *Config) { c.IssuerSeedEnv = "PW" }, "the issuer seed is not an nkey seed"},
		{"empty variable", func(c *Config) { c.IssuerSeedEnv = "UNSET" }, "the environment variable UNSET is empty"},
		{"missing file", func(c *Config) { c.IssuerSeedEnv, c.IssuerSeedFile = "", filepath.Join(dir, "missing") }, "no such file"},
		{"empty file", func(c *Config) { c.PasswordEnv, c.PasswordFile = "", write("empty", []byte("\n")) }, "is empty"},
		{"huge file", func(c *Config) {
			c.PasswordEnv, c.PasswordFile = "", write("huge", []byte(strings.Repeat("x", maxSeedFileBytes+1)))
		}, "is larger than"},
		{"invalid", func(c *Config) { c.Account = "" }, "nats_callout.account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			s, err := New(c, &Options{Verifier: e.v, Getenv: getenv})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.IssuerPublicKey() != e.issuerPub {
					t.Fatalf("issuer %s, want %s", s.IssuerPublicKey(), e.issuerPub)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
			for _, secret := range env {
				if len(secret) > 2 && strings.Contains(err.Error(), secret) {
					t.Fatalf("the error shows a secret: %v", err)
				}
			}
		})
	}
	if _, err := New(base, nil); err == nil {
		t.Fatal("New without a verifier succeeded")
	}
}
