package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRequestsAndAuditSections(t *testing.T) {
	c, _, err := Load(nil, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Requests
	if r.TTL != 168*time.Hour || r.MaxPending != 1000 || r.MaxPendingPerAddress != 10 || r.KeyValidity != 2160*time.Hour ||
		strings.Join(r.DefaultRoles, ",") != "agent" || strings.Join(r.DefaultScopes, ",") != "mailbox:${sub}:*" ||
		c.Audit.File != "" || c.Audit.Retention != 2160*time.Hour {
		t.Fatalf("defaults: %+v %+v", r, c.Audit)
	}

	load := func(body string) (Config, error) {
		path := filepath.Join(t.TempDir(), "verifyd.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, _, err := Load([]string{"--config", path}, env(nil), nil)
		return c, err
	}
	c, err = load("requests:\n  ttl: 1h\n  default_roles: []\n  default_scopes: [\"tool:${sub}:*\"]\naudit:\n  file: /var/log/verifyd/audit.jsonl\n  retention: 720h\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Requests.TTL != time.Hour || c.Requests.DefaultRoles == nil || len(c.Requests.DefaultRoles) != 0 ||
		c.Requests.DefaultScopes[0] != "tool:${sub}:*" || c.Audit.File != "/var/log/verifyd/audit.jsonl" || c.Audit.Retention != 720*time.Hour {
		t.Fatalf("loaded: %+v %+v", c.Requests, c.Audit)
	}
	for body, want := range map[string]string{
		"requests:\n  ttl: -1h\n":                                     "requests.ttl",
		"requests:\n  ttl: 9000h\n":                                   "requests.ttl",
		"requests:\n  max_pending: 5\n  max_pending_per_address: 6\n": "max_pending_per_address",
		"requests:\n  default_scopes: [\"a::b\"]\n":                   "requests.default_scopes",
		"requests:\n  default_roles: [\"two words\"]\n":               "requests.default_roles",
		"audit:\n  retention: -1s\n":                                  "audit.retention",
		"audit:\n  rotate: daily\n":                                   "rotate",
	} {
		if _, err := load(body); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error naming %s", body, err, want)
		}
	}
}
