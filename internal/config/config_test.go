package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, reset, err := Load(nil, env(nil), nil)
	if err != nil || reset {
		t.Fatal(err, reset)
	}
	if c.DataDir != "./data" || c.HTTP.Addr != "127.0.0.1:8080" || c.Socket != "./verifyd.sock" || !c.CreateDataDir {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestPrecedenceFileEnvFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verifyd.yaml")
	os.WriteFile(path, []byte("data_dir: /from/file\nhttp:\n  addr: 127.0.0.1:1\n  read_timeout: 3s\nlog:\n  level: debug\n"), 0o600)
	c, _, err := Load([]string{"--config", path, "--http-addr", "127.0.0.1:3"},
		env(map[string]string{"VERIFYD_HTTP_ADDR": "127.0.0.1:2", "VERIFYD_DATA_DIR": "/from/env", "VERIFYD_ADMIN_KEY": "admin-key-from-env-123"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/env" || c.HTTP.Addr != "127.0.0.1:3" || c.HTTP.ReadTimeout != 3*time.Second || c.Log.Level != "debug" || c.AdminKey != "admin-key-from-env-123" {
		t.Fatalf("got %+v", c)
	}
	if c.HTTP.WriteTimeout != 10*time.Second {
		t.Fatal("a key absent from the file lost its default")
	}
}

func TestErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"unknown key", []string{"--config", write("a.yaml", "http:\n  adr: x\n")}, nil, []string{"line 2", "adr"}},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml")}, nil, []string{"nope.yaml"}},
		{"bad values", []string{"--config", write("b.yaml", "http:\n  addr: nowhere\n  max_body_bytes: 10\nlog:\n  level: loud\n  format: xml\n")}, nil,
			[]string{"http.addr", "max_body_bytes", "log.level", "log.format"}},
		{"bad env", nil, map[string]string{"VERIFYD_CREATE_DATA_DIR": "maybe", "VERIFYD_CACHE_ENTRIES": "lots"}, []string{"VERIFYD_CREATE_DATA_DIR", "VERIFYD_CACHE_ENTRIES"}},
		{"short admin key", nil, map[string]string{"VERIFYD_ADMIN_KEY": "short"}, []string{"VERIFYD_ADMIN_KEY"}},
		{"stray argument", []string{"serve"}, nil, []string{`"serve"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load(tc.args, env(tc.env), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "short") && tc.name == "short admin key" {
				t.Error("the error echoes the admin key")
			}
		})
	}
}

func TestHelp(t *testing.T) {
	if _, _, err := Load([]string{"-h"}, env(nil), nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v", err)
	}
}

func TestTrustConfig(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/verifyd.yaml"
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`
trust:
  leeway: 30s
  sources:
    - name: gateway
      jwks_url: https://idp.example/jwks.json
      issuer: https://issuer.example
      audience: [verifyd]
    - name: proxy
      hs256:
        - kid: hs-1
          secret_env: PROXY_SECRET
`)
	c, _, err := Load([]string{"--config", path}, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Trust.Leeway != 30*time.Second || len(c.Trust.Sources) != 2 || c.Trust.Sources[1].HS256[0].Kid != "hs-1" {
		t.Errorf("trust = %+v", c.Trust)
	}
	if c.Trust.MaxTokenBytes != 8192 {
		t.Errorf("max_token_bytes default = %d", c.Trust.MaxTokenBytes)
	}

	write(`
trust:
  sources:
    - name: Bad Name
      jwks_url: https://idp.example/jwks.json
      jwks_file: /etc/jwks.json
    - name: proxy
`)
	_, _, err = Load([]string{"--config", path}, func(string) string { return "" }, nil)
	if err == nil {
		t.Fatal("invalid trust sources accepted")
	}
	for _, want := range []string{"config: trust.sources[0]", "config: trust.sources[1] (proxy)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestIPCConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "verifyd.yaml")
	if err := os.WriteFile(path, []byte("socket: /run/verifyd/verifyd.sock\nipc:\n  mode: \"0600\"\n  allow_uids: [0, 1000]\n  max_in_flight: 64\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load([]string{"--config", path}, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := c.IPC.FileMode(); m != 0o600 || c.Socket != "/run/verifyd/verifyd.sock" || len(c.IPC.AllowUIDs) != 2 || c.IPC.MaxInFlight != 64 || c.IPC.MaxFrameBytes != 16384 {
		t.Errorf("ipc = %+v socket %q", c.IPC, c.Socket)
	}
	for _, bad := range []string{"mode: \"0999\"", "mode: rw-rw----", "max_in_flight: 0", "read_timeout: 0s"} {
		os.WriteFile(path, []byte("ipc:\n  "+bad+"\n"), 0o600)
		if _, _, err := Load([]string{"--config", path}, func(string) string { return "" }, nil); err == nil || !strings.Contains(err.Error(), "ipc.") {
			t.Errorf("ipc %s: error %v, want one naming ipc.", bad, err)
		}
	}
}

func TestPolicyConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verifyd.yaml")
	os.WriteFile(path, []byte("policy: /etc/verifyd/policy.yaml\npolicy_check_interval: 500ms\n"), 0o600)
	c, _, err := Load([]string{"--config", path}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy != "/etc/verifyd/policy.yaml" || c.PolicyCheckInterval != 500*time.Millisecond {
		t.Errorf("policy %q, interval %v", c.Policy, c.PolicyCheckInterval)
	}
	c, _, err = Load([]string{"--config", path, "--policy", "flag.yaml"}, env(map[string]string{"VERIFYD_POLICY": "env.yaml"}), nil)
	if err != nil || c.Policy != "flag.yaml" {
		t.Errorf("flag: %q %v", c.Policy, err)
	}
	c, _, err = Load(nil, env(map[string]string{"VERIFYD_POLICY": "env.yaml"}), nil)
	if err != nil || c.Policy != "env.yaml" || c.PolicyCheckInterval != 2*time.Second {
		t.Errorf("env: %q %v %v", c.Policy, c.PolicyCheckInterval, err)
	}
	if c, _, _ := Load(nil, env(nil), nil); c.Policy != "" {
		t.Errorf("default policy file %q, want none", c.Policy)
	}
	os.WriteFile(path, []byte("policy_check_interval: 0s\n"), 0o600)
	if _, _, err := Load([]string{"--config", path}, env(nil), nil); err == nil || !strings.Contains(err.Error(), "policy_check_interval") {
		t.Errorf("interval 0: %v", err)
	}
}
