package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
)

func TestRevokeJWT(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	before := time.Now().Add(-time.Second)

	r := d.admin(t, "", "revoke", "jwt", "--jti", "4f1c2a9e", "--expires-at", "2030-01-01T00:00:00Z")
	r.want(t, exitOK)
	for _, want := range []string{"jti:", "4f1c2a9e", "expires:", "2030-01-01T00:00:00Z", "created:", "creator:", "admin"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("revoke jwt --jti lacks %q:\n%s", want, r.stdout)
		}
	}

	// Flags after a global flag between the words, Unix seconds, JSON.
	r = d.admin(t, "", "revoke", "-o", "json", "jwt", "--jti", "second", "--expires-at", "1893456000")
	r.want(t, exitOK)
	var got adminclient.JWTRevocation
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not a revocation: %v\n%s", err, r.stdout)
	}
	if got.TokenID != "second" || !got.ExpiresAt.Equal(time.Unix(1893456000, 0)) || got.Creator != "admin" {
		t.Errorf("revoke jwt -o json = %+v", got)
	}
	if !strings.Contains(r.stdout, "\n  \"jti\": ") {
		t.Errorf("JSON is not indented:\n%s", r.stdout)
	}

	// A subject: now by default, the daemon's clock.
	r = d.admin(t, "", "revoke", "jwt", "--subject", "alice@example.com", "-o", "json")
	r.want(t, exitOK)
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Subject != "alice@example.com" || got.NotBefore.Before(before) || got.NotBefore.After(time.Now().Add(time.Second)) {
		t.Errorf("revoke jwt --subject = %+v", got)
	}
	nowNB := got.NotBefore
	r = d.admin(t, "", "revoke", "jwt", "--subject", "alice@example.com", "--not-before", "now", "-o", "json")
	r.want(t, exitOK)
	// An earlier time leaves the revocation in effect as it is, and says so.
	r = d.admin(t, "", "revoke", "jwt", "--subject", "alice@example.com", "--not-before", "2020-01-01T00:00:00Z")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "not before:") || strings.Contains(r.stdout, "2020-01-01") {
		t.Errorf("an earlier not-before printed:\n%s", r.stdout)
	}
	r = d.admin(t, "", "revoke", "jwt", "--subject", "bob", "--not-before", "1700000000")
	r.want(t, exitOK)

	l, err := d.client.ListRevocations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Tokens) != 2 || len(l.Subjects) != 2 || l.Subjects[0].NotBefore.Before(nowNB) {
		t.Errorf("revocations after the commands = %+v", l)
	}
}

func TestRevocationsList(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	r := d.admin(t, "", "revocations", "list", "-o", "json")
	r.want(t, exitOK)
	if strings.TrimSpace(r.stdout) != "{\n  \"tokens\": [],\n  \"subjects\": []\n}" {
		t.Errorf("empty list = %q", r.stdout)
	}

	ctx := context.Background()
	for _, rev := range []adminclient.JWTRevocation{
		{TokenID: "jti-b", ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		{TokenID: "jti-a"},
		{Subject: "alice", NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := d.client.RevokeJWT(ctx, rev); err != nil {
			t.Fatalf("RevokeJWT(%+v): %v", rev, err)
		}
	}

	r = d.admin(t, "", "revocations", "list")
	r.want(t, exitOK)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", r.stdout)
	}
	header := lines[0]
	for _, col := range []string{"KIND", "JTI OR SUBJECT", "NOT BEFORE", "EXPIRES", "CREATED", "CREATOR"} {
		if !strings.Contains(header, col) {
			t.Errorf("header lacks %s: %q", col, header)
		}
	}
	col := strings.Index(header, "JTI OR SUBJECT")
	for i, want := range []string{"jti-a", "jti-b", "alice"} {
		line := lines[i+1]
		if len(line) <= col || !strings.HasPrefix(line[col:], want+" ") {
			t.Errorf("row %d not aligned or out of order, want %s:\n%s\n%s", i, want, header, line)
		}
	}
	if !strings.HasPrefix(lines[3], "subject ") || !strings.Contains(lines[3], "2026-01-01T00:00:00Z") || !strings.Contains(lines[2], "2030-01-01T00:00:00Z") {
		t.Errorf("rows:\n%s", r.stdout)
	}

	r = d.admin(t, "", "revocations", "list", "-o", "json")
	r.want(t, exitOK)
	var l adminclient.RevocationList
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l.Tokens) != 2 || len(l.Subjects) != 1 || l.Subjects[0].Subject != "alice" {
		t.Errorf("revocations list -o json = %s (%v)", r.stdout, err)
	}
}

func TestRevocationUsageErrors(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	tests := []struct {
		name   string
		args   []string
		stderr string // substring
	}{
		{"revoke alone", []string{"revoke"}, "revoke needs a subcommand: jwt"},
		{"revocations alone", []string{"revocations"}, "revocations needs a subcommand: list"},
		{"unknown revoke command", []string{"revoke", "key"}, `unknown command "revoke key"`},
		{"neither", []string{"revoke", "jwt"}, "give exactly one of --jti and --subject"},
		{"both", []string{"revoke", "jwt", "--jti", "j", "--subject", "s"}, "give exactly one of --jti and --subject"},
		{"empty jti", []string{"revoke", "jwt", "--jti", ""}, "give exactly one of --jti and --subject"},
		{"not-before with jti", []string{"revoke", "jwt", "--jti", "j", "--not-before", "now"}, "--not-before goes with --subject"},
		{"expires-at with subject", []string{"revoke", "jwt", "--subject", "s", "--expires-at", "1"}, "--expires-at goes with --jti"},
		{"bad time", []string{"revoke", "jwt", "--jti", "j", "--expires-at", "tomorrow"}, "want an RFC 3339 time"},
		{"relative time", []string{"revoke", "jwt", "--subject", "s", "--not-before", "-1h"}, "want an RFC 3339 time"},
		{"positional", []string{"revoke", "jwt", "j"}, "usage: verifyctl revoke jwt"},
		{"list argument", []string{"revocations", "list", "x"}, "usage: verifyctl revocations list"},
		{"jti too long", []string{"revoke", "jwt", "--jti", strings.Repeat("j", 1025)}, "jti is 1025 bytes, more than 1024"},
		{"not-before far ahead", []string{"revoke", "jwt", "--subject", "s", "--not-before", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "in the future"},
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
	if l, err := d.client.ListRevocations(context.Background()); err != nil || len(l.Tokens)+len(l.Subjects) != 0 {
		t.Errorf("usage errors revoked something: %+v, %v", l, err)
	}
}

func TestRevocationAdminKey(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	for _, args := range [][]string{
		{"revoke", "jwt", "--jti", "j"},
		{"revocations", "list"},
	} {
		r := d.anon(t, "", args...)
		r.want(t, exitUsage)
		if !strings.Contains(r.stderr, "no admin key: set VERIFYD_ADMIN_KEY") {
			t.Errorf("%q: stderr = %q", args, r.stderr)
		}
	}
	if n := d.Connections(); n != 0 {
		t.Errorf("daemon saw %d requests without an admin key, want 0", n)
	}
	r := runBinary(t, invocation{
		env:  []string{"VERIFYD_ADDR=" + d.URL, "VERIFYD_ADMIN_KEY=not-the-key"},
		args: []string{"revoke", "jwt", "--subject", "alice"},
	})
	r.want(t, exitRefused)
}

func TestRevocationHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"help lists them", []string{"help"}, []string{"revoke jwt", "revocations list"}},
		{"help revoke", []string{"help", "revoke"}, []string{"Commands:", "revoke jwt"}},
		{"help revoke jwt", []string{"help", "revoke", "jwt"}, []string{"--jti ID", "--not-before TIME", "RFC 3339", "Unix seconds", "daemon's clock"}},
		{"revoke jwt -h", []string{"revoke", "jwt", "-h"}, []string{"verifyctl revoke jwt (--jti ID"}},
		{"help revocations list", []string{"help", "revocations", "list"}, []string{"in effect"}},
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

func TestTimeValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Time
		now  bool
		bad  bool
	}{
		{in: "2026-05-01T12:00:00Z", want: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)},
		{in: "2026-05-01T14:00:00+02:00", want: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)},
		{in: "1767225600", want: time.Unix(1767225600, 0)},
		{in: "0", want: time.Unix(0, 0)},
		{in: "now", now: true},
		{in: "", bad: true},
		{in: "Now", bad: true},
		{in: "2026-05-01", bad: true},
		{in: "+1h", bad: true},
		{in: "1.5", bad: true},
	}
	for _, tc := range tests {
		var v timeValue
		err := v.Set(tc.in)
		switch {
		case tc.bad:
			if err == nil {
				t.Errorf("Set(%q) accepted", tc.in)
			}
		case err != nil:
			t.Errorf("Set(%q) = %v", tc.in, err)
		case tc.now:
			if !v.now || time.Since(v.t) > time.Minute || v.String() != "now" {
				t.Errorf("Set(now) = %+v", v)
			}
		case !v.t.Equal(tc.want) || v.now:
			t.Errorf("Set(%q) = %v, want %v", tc.in, v.t, tc.want)
		}
	}
}
