package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestThrottleAndTLSSections loads the throttle and http.tls sections: a
// list in the file replaces the default one (an empty list included), a
// key absent from the file keeps its default, and problems in either
// section are named.
func TestThrottleAndTLSSections(t *testing.T) {
	load := func(body string) (Config, error) {
		path := filepath.Join(t.TempDir(), "verifyd.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, _, err := Load([]string{"--config", path}, env(nil), nil)
		return c, err
	}
	c, err := load("throttle:\n  trusted_proxies: []\n  cooldown: 5m\n  role_rate_limits: {metered: 10/s}\n")
	if err != nil {
		t.Fatal(err)
	}
	th := c.Throttle
	if !th.Enabled || len(th.TrustedProxies) != 0 || th.Cooldown != 5*time.Minute || th.Failures != 20 || th.RoleRateLimits["metered"] != "10/s" {
		t.Errorf("throttle: %+v", th)
	}
	if c, err := load(""); err != nil || len(c.Throttle.TrustedProxies) != 2 || c.HTTP.TLS.Enabled() || c.HTTP.TLS.CheckInterval != 5*time.Second {
		t.Errorf("defaults: %+v %+v %v", c.Throttle, c.HTTP.TLS, err)
	}
	_, err = load("throttle:\n  window: 0s\n  client_ip_header: \"\"\nhttp:\n  tls:\n    client_auth: require\n")
	for _, want := range []string{"throttle.window", "throttle.client_ip_header", "http.tls.client_ca_file, client_auth and client_names need TLS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := load("throttle:\n  enabled: false\n  window: 0s\n"); err != nil {
		t.Errorf("a disabled throttle is checked: %v", err)
	}
}
