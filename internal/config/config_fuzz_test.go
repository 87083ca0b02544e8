package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzConfigLoad loads a configuration file with Load, with a data
// directory and an admin key from the environment. Load never panics, and
// answers the same twice; an accepted configuration passes Validate again
// unchanged and has the environment's data directory over the file's; a
// refusal names the configuration ("config: " on every problem, details
// indented below) and never shows the admin key.
func FuzzConfigLoad(f *testing.F) {
	f.Add([]byte(""), "", "")
	f.Add([]byte("data_dir: /var/lib/verifyd\ncreate_data_dir: false\nhttp:\n  addr: 127.0.0.1:9090\n  read_timeout: 3s\nlog:\n  level: debug\n  format: json\n"), "/from/env", "operator-admin-key-0001")
	f.Add([]byte("trust:\n  sources:\n    - name: proxy\n      hs256:\n        - kid: hs-1\n          secret_env: PROXY_SECRET\n      issuer: https://issuer.example\n      audience: [verifyd]\n"), "", "")
	f.Add([]byte("forward_auth:\n  routes:\n    - method: POST\n      path: /v1/projects/{project}/topics/{topic}:publish\n      scope: projects/{project}/topics/{topic}:publish\n"), "", "")
	f.Add([]byte("rabbitmq:\n  enabled: true\nmqtt:\n  enabled: true\n  scope: \"mqtt/topic/{topic}:{action}\"\n"), "", "short")
	f.Add([]byte("http:\n  adr: x\n"), "", "")
	f.Add([]byte("cache:\n  entries: -1\n  jwt_entries: 0\npolicy_check_interval: 0s\n"), "d", "key with spaces in it, long enough")
	f.Add([]byte("\t- [\n"), "", "")
	f.Add([]byte("data_dir: &a x\nsocket: *a\n"), "", "")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body []byte, dataDir, adminKey string) {
		if strings.ContainsRune(dataDir, 0) || strings.ContainsRune(adminKey, 0) {
			return // not representable in an environment
		}
		path := filepath.Join(dir, "verifyd.yaml")
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		getenv := func(k string) string {
			return map[string]string{"VERIFYD_DATA_DIR": dataDir, "VERIFYD_ADMIN_KEY": adminKey}[k]
		}
		c, _, err := Load([]string{"--config", path}, getenv, nil)
		c2, _, err2 := Load([]string{"--config", path}, getenv, nil)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || !reflect.DeepEqual(c, c2) {
			t.Fatalf("two loads differ: %v / %v", err, err2)
		}
		if err != nil {
			msg := err.Error()
			for _, line := range strings.Split(msg, "\n") {
				// Continuation lines (a YAML error's details) are indented.
				if !strings.HasPrefix(line, "config: ") && !strings.HasPrefix(line, " ") {
					t.Fatalf("a problem does not name the configuration: %q", line)
				}
			}
			if len(adminKey) >= 8 && strings.Contains(msg, adminKey) && !strings.Contains(string(body), adminKey) {
				t.Fatalf("the refusal shows the admin key: %s", msg)
			}
			return
		}
		again := c
		if err := again.Validate(); err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("an accepted configuration does not validate again unchanged: %v", err)
		}
		if dataDir != "" && c.DataDir != dataDir {
			t.Fatalf("data_dir %q, want the environment's %q", c.DataDir, dataDir)
		}
		if c.AdminKey != adminKey {
			t.Fatalf("admin key %q, want the environment's", c.AdminKey)
		}
	})
}
