package main

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/internal/adminclient/admintest"
	"github.com/verifyd/verifyd/verify/trust"
)

// newTrustDaemon returns a daemon with two trust sources: "proxy", an HS256
// secret that loads, and "idp", a JWKS URL nothing listens on.
func newTrustDaemon(t *testing.T) *daemon {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/jwks.json"
	ln.Close()
	secret := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	registry, err := trust.New(trust.Config{
		FetchTimeout: 500 * time.Millisecond,
		Sources: []trust.Source{
			{Name: "proxy", HS256: []trust.Secret{{Kid: "hs-1", SecretEnv: "SECRET"}}},
			{Name: "idp", JWKSURL: down},
		},
	}, &trust.Options{Getenv: func(string) string { return secret }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { registry.Close() })
	return newDaemonWith(t, &admintest.Options{Trust: registry})
}

func TestTrustStatus(t *testing.T) {
	t.Parallel()
	d := newTrustDaemon(t)

	r := d.admin(t, "", "trust", "status")
	r.want(t, exitOK)
	if r.stderr != "" {
		t.Errorf("stderr = %q, want nothing", r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows:\n%s", r.stdout)
	}
	header := lines[0]
	for _, col := range []string{"NAME", "TYPE", "KEYS", "SKIPPED", "LAST SUCCESS", "STALE", "LAST ERROR"} {
		if !strings.Contains(header, col) {
			t.Errorf("header lacks %s: %q", col, header)
		}
	}
	today := time.Now().UTC().Format("2006-01-02T")
	for i, row := range []map[string]string{
		{"NAME": "proxy ", "TYPE": "hs256 ", "KEYS": "1 ", "SKIPPED": "0 ", "LAST SUCCESS": today, "STALE": "false "},
		{"NAME": "idp ", "TYPE": "jwks_url ", "KEYS": "0 ", "SKIPPED": "0 ", "LAST SUCCESS": "- ", "STALE": "true "},
	} {
		line := lines[i+1]
		for name, want := range row {
			col := strings.Index(header, name)
			if len(line) <= col || !strings.HasPrefix(line[col:], want) {
				t.Errorf("row %d, column %s: want %q:\n%s\n%s", i, name, want, header, line)
			}
		}
	}
	col := strings.Index(header, "LAST ERROR")
	if lines[1][col:] != "-" || len(lines[2]) <= col+1 || !strings.Contains(lines[2][col:], "connect") {
		t.Errorf("last errors: want none for proxy, the fetch error for idp:\n%s", r.stdout)
	}

	r = d.admin(t, "", "trust", "status", "-o", "json")
	r.want(t, exitOK)
	var l adminclient.TrustSourceList
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l.Sources) != 2 {
		t.Fatalf("trust status -o json = %s (%v)", r.stdout, err)
	}
	if p, i := l.Sources[0], l.Sources[1]; p.Name != "proxy" || p.Keys != 1 || p.LastSuccess.IsZero() || p.Stale ||
		i.Name != "idp" || !i.Stale || i.LastError == "" || !i.LastSuccess.IsZero() {
		t.Errorf("trust status -o json = %+v", l)
	}
	if !strings.Contains(r.stdout, "\n  \"sources\": [") || strings.Contains(r.stdout, "last_success\": null") {
		t.Errorf("JSON is not indented or not the daemon's shape:\n%s", r.stdout)
	}
}

func TestTrustStatusNoSources(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	r := d.admin(t, "", "trust", "status")
	r.want(t, exitOK)
	if lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "NAME ") {
		t.Errorf("stdout = %q, want the header alone", r.stdout)
	}
	if r.stderr != noTrustNotice+"\n" {
		t.Errorf("stderr = %q, want the one-line note", r.stderr)
	}

	r = d.admin(t, "", "trust", "status", "-o", "json")
	r.want(t, exitOK)
	if strings.TrimSpace(r.stdout) != "{\n  \"sources\": []\n}" {
		t.Errorf("empty list = %q", r.stdout)
	}
	if r.stderr != noTrustNotice+"\n" {
		t.Errorf("stderr = %q, want the one-line note", r.stderr)
	}
}

// TestTrustStatusControlCharacters checks that what the daemon reports
// cannot break the table or reach the terminal as escape sequences.
func TestTrustStatusControlCharacters(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"sources":[{"name":"evil\ttab","type":"jwks_url","keys":0,"skipped_keys":2,` +
			`"last_error":"fetch failed\n\u001b[2Jcleared","stale":true}]}`))
	}))
	t.Cleanup(srv.Close)
	r := runBinary(t, invocation{
		env:  []string{"VERIFYD_ADDR=" + srv.URL, "VERIFYD_ADMIN_KEY=" + testAdminKey},
		args: []string{"trust", "status"},
	})
	r.want(t, exitOK)
	if strings.ContainsAny(r.stdout, "\t\x1b") || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("control characters reached the output:\n%q", r.stdout)
	}
	for _, want := range []string{`"evil\ttab"`, `"fetch failed\n\x1b[2Jcleared"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %s:\n%s", want, r.stdout)
		}
	}
}

func TestTrustUsageErrors(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	tests := []struct {
		name   string
		args   []string
		stderr string // substring
	}{
		{"trust alone", []string{"trust"}, "trust needs a subcommand: status"},
		{"unknown trust command", []string{"trust", "list"}, `unknown command "trust list"`},
		{"status argument", []string{"trust", "status", "x"}, "usage: verifyctl trust status"},
		{"unknown flag", []string{"trust", "status", "--stale"}, "unknown flag --stale"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := d.admin(t, "", tc.args...)
			r.want(t, exitUsage)
			if !strings.HasPrefix(r.stderr, "verifyctl: ") || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tc.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestTrustAdminKey(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	r := d.anon(t, "", "trust", "status")
	r.want(t, exitUsage)
	if !strings.Contains(r.stderr, "no admin key: set VERIFYD_ADMIN_KEY") {
		t.Errorf("stderr = %q", r.stderr)
	}
	if n := d.Connections(); n != 0 {
		t.Errorf("daemon saw %d requests without an admin key, want 0", n)
	}
	r = runBinary(t, invocation{
		env:  []string{"VERIFYD_ADDR=" + d.URL, "VERIFYD_ADMIN_KEY=not-the-key"},
		args: []string{"trust", "status"},
	})
	r.want(t, exitRefused)
}

func TestTrustHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"help lists it", []string{"help"}, []string{"trust status", "state of the JWT trust sources"}},
		{"help trust", []string{"help", "trust"}, []string{"Commands:", "trust status"}},
		{"help trust status", []string{"help", "trust", "status"}, []string{"verifyctl trust status", "jwks_url", "max_staleness", "exit status is 0"}},
		{"trust status -h", []string{"trust", "status", "-h"}, []string{"verifyctl trust status"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, invocation{args: tc.args})
			r.want(t, exitOK)
			for _, want := range tc.want {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("help lacks %q", want)
				}
			}
		})
	}
}
