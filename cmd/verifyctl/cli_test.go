package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/internal/adminclient"
)

func TestCreateTable(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	r := d.admin(t, "", "keys", "create", "--subject", "alice", "--name", "ci",
		"--description", "pipeline key", "--scope", "tool:data:*", "--scope", "agent:data_*:delegate",
		"--role", "publisher", "--project-role", "p1=editor", "--project-role", "p1=viewer",
		"--meta", "team=core", "--expires-in", "720h")
	r.want(t, exitOK)

	secret := strings.TrimSuffix(r.stdout, "\n")
	if secret == "" || strings.ContainsAny(secret, " \n\t") {
		t.Fatalf("stdout = %q, want the secret alone on one line", r.stdout)
	}
	for _, want := range []string{"shown only this once", "alice", "tool:data:*, agent:data_*:delegate",
		"p1=editor,viewer", "team=core", "pipeline key"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, secret) {
		t.Error("stderr repeats the secret")
	}

	res, err := d.client.Verify(context.Background(), secret, "agent:data_sales:delegate")
	if err != nil || !res.Allow || res.Subject != "alice" {
		t.Fatalf("the printed secret does not verify: %+v, %v", res, err)
	}
	k, err := d.client.GetKey(context.Background(), res.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "ci" || k.Metadata["team"] != "core" || len(k.ProjectRoles["p1"]) != 2 || k.ExpiresAt.Sub(k.CreatedAt).Hours() != 720 {
		t.Errorf("created key = %+v", k)
	}
}

func TestCreateJSON(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	r := d.admin(t, "", "-o", "json", "keys", "create", "--subject", "bob", "--kind", "agent")
	r.want(t, exitOK)
	var k adminclient.Key
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil {
		t.Fatalf("stdout is not a key: %v\n%s", err, r.stdout)
	}
	if k.Secret == "" || k.Subject != "bob" || k.Kind != adminclient.KindAgent || len(k.ID) != 22 {
		t.Errorf("key = %+v", k)
	}
	if !strings.Contains(r.stdout, "\n  \"id\": ") {
		t.Errorf("JSON is not indented:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "shown only this once") {
		t.Errorf("stderr lacks the secret notice: %q", r.stderr)
	}
}

func TestFlagOrder(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	k := d.createKey(t, adminclient.KeySpec{Subject: "alice"})
	tests := []struct {
		name string
		args []string
	}{
		{"flags after id", []string{"keys", "get", k.ID, "-o", "json"}},
		{"flags before command", []string{"-o", "json", "keys", "get", k.ID}},
		{"flags between words", []string{"keys", "-o", "json", "get", k.ID}},
		{"flags before id", []string{"keys", "get", "-o=json", k.ID}},
		{"double dash flag", []string{"keys", "get", k.ID, "--o", "json", "--timeout", "5s"}},
		{"addr flag after id", []string{"keys", "get", k.ID, "--addr", d.URL, "-o", "json"}},
		{"terminator", []string{"-o", "json", "keys", "get", "--", k.ID}},
		{"equals forms after id", []string{"keys", "get", k.ID, "-o", "json", "--timeout=5s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := d.admin(t, "", tc.args...)
			r.want(t, exitOK)
			var got adminclient.Key
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.ID != k.ID {
				t.Errorf("stdout = %q (%v), want key %s as JSON", r.stdout, err, k.ID)
			}
		})
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	a := d.createKey(t, adminclient.KeySpec{Subject: "alice", Name: "first"})
	d.createKey(t, adminclient.KeySpec{Subject: "bob", Kind: adminclient.KindAgent})
	d.createKey(t, adminclient.KeySpec{Subject: "mallory", Name: "evil\x1b[2J\tname"})

	r := d.admin(t, "", "keys", "list")
	r.want(t, exitOK)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", r.stdout)
	}
	header := lines[0]
	for _, col := range []string{"ID", "KIND", "SUBJECT", "NAME", "STATUS", "CREATED", "EXPIRES", "LAST USED"} {
		if !strings.Contains(header, col) {
			t.Errorf("header lacks %s: %q", col, header)
		}
	}
	// Columns are aligned: each row's subject starts under SUBJECT.
	col := strings.Index(header, "SUBJECT")
	for _, line := range lines[1:] {
		if len(line) <= col || line[col-1] != ' ' || line[col] == ' ' {
			t.Errorf("row not aligned with the header:\n%s\n%s", header, line)
		}
	}
	if strings.Contains(r.stdout, "\x1b") || !strings.Contains(r.stdout, `"evil\x1b[2J\tname"`) {
		t.Errorf("control characters from the daemon were not escaped:\n%q", r.stdout)
	}

	r = d.admin(t, "", "keys", "list", "--subject", "alice", "-o", "json")
	r.want(t, exitOK)
	var l adminclient.KeyList
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l.Keys) != 1 || l.Keys[0].ID != a.ID {
		t.Errorf("list --subject alice -o json = %s (%v)", r.stdout, err)
	}

	r = d.admin(t, "", "keys", "list", "--subject", "nobody", "-o", "json")
	r.want(t, exitOK)
	if strings.TrimSpace(r.stdout) != "{\n  \"keys\": []\n}" {
		t.Errorf("empty list = %q", r.stdout)
	}
}

func TestGetRevokeRotate(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	ctx := context.Background()
	k := d.createKey(t, adminclient.KeySpec{Subject: "alice", Scopes: []string{"tool:data:*"}})

	r := d.admin(t, "", "keys", "get", k.ID)
	r.want(t, exitOK)
	for _, want := range []string{"id:", k.ID, "subject:", "alice", "status:", "active", "tool:data:*"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("keys get lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, k.Secret) {
		t.Error("keys get printed the secret")
	}

	r = d.admin(t, "", "keys", "rotate", k.ID, "--grace", "10m")
	r.want(t, exitOK)
	newSecret := strings.TrimSuffix(r.stdout, "\n")
	if newSecret == "" || newSecret == k.Secret {
		t.Fatalf("rotate stdout = %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "shown only this once") || !strings.Contains(r.stderr, "old secret valid until") {
		t.Errorf("rotate stderr:\n%s", r.stderr)
	}
	for _, s := range []string{k.Secret, newSecret} {
		if res, err := d.client.Verify(ctx, s, ""); err != nil || !res.Allow {
			t.Errorf("secret does not verify during grace: %+v, %v", res, err)
		}
	}

	r = d.admin(t, "", "keys", "revoke", k.ID, "-o", "json")
	r.want(t, exitOK)
	var got adminclient.Key
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Status != adminclient.KeyRevoked || got.RevokedAt.IsZero() {
		t.Errorf("revoke -o json = %s (%v)", r.stdout, err)
	}
	if res, err := d.client.Verify(ctx, newSecret, ""); err != nil || res.Allow {
		t.Errorf("revoked secret verifies: %+v, %v", res, err)
	}

	// Ids are base64url, so some start with '-': they are ids, not flags.
	for _, id := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "-RYjWXKSepVaj0CDBH2iRA", "--YjWXKSepVaj0CDBH2iRA"} {
		r = d.admin(t, "", "keys", "get", id, "-o", "json")
		r.want(t, exitRefused)
		if r.stderr != "verifyctl: no key with this id\n" {
			t.Errorf("keys get %s: stderr = %q", id, r.stderr)
		}
	}
}

func TestImport(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	dir := t.TempDir()
	tests := []struct {
		name   string
		secret string
		file   string // written to a file and passed with --secret-file; else sent on stdin
		stdin  string
	}{
		{name: "file with newline", secret: "legacy-file-key-0123456789", file: "legacy-file-key-0123456789\n"},
		{name: "file with crlf", secret: "legacy-crlf-key-0123456789", file: "legacy-crlf-key-0123456789\r\n"},
		{name: "stdin", secret: "legacy-stdin-key-0123456789", stdin: "legacy-stdin-key-0123456789\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"keys", "import", "--subject", "relay-" + tc.name, "--scope", "mailbox:relay:*"}
			if tc.file != "" {
				path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--secret-file", path)
			} else {
				args = append(args, "--secret-stdin")
			}
			r := d.admin(t, tc.stdin, append(args, "-o", "json")...)
			r.want(t, exitOK)
			if strings.Contains(r.stdout+r.stderr, tc.secret) {
				t.Error("import printed the secret")
			}
			var k adminclient.Key
			if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.Kind != adminclient.KindImported {
				t.Errorf("import -o json = %s (%v)", r.stdout, err)
			}
			res, err := d.client.Verify(context.Background(), tc.secret, "mailbox:relay:read")
			if err != nil || !res.Allow || res.KeyID != k.ID {
				t.Errorf("imported secret does not verify: %+v, %v", res, err)
			}
		})
	}
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	k := d.createKey(t, adminclient.KeySpec{Subject: "alice", Scopes: []string{"tool:data:*"}, Roles: []string{"publisher"}})
	revoked := d.createKey(t, adminclient.KeySpec{Subject: "bob"})
	if _, err := d.client.RevokeKey(context.Background(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(k.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		stdin      string
		args       []string
		code       int
		stdout     []string // substrings of stdout
		stderrLine string   // exact stderr, when set
	}{
		{name: "allowed", args: []string{"verify", k.Secret}, code: exitOK,
			stdout: []string{"allow:", "true", "alice", "publisher", k.ID}},
		{name: "allowed scope after token", args: []string{"verify", k.Secret, "--scope", "tool:data:read"}, code: exitOK,
			stdout: []string{"grant:", "tool:data:*"}},
		{name: "token file", args: []string{"verify", "--token-file", tokenFile, "--scope", "tool:data:read"}, code: exitOK},
		{name: "token stdin", stdin: k.Secret + "\n", args: []string{"verify", "--token-stdin"}, code: exitOK},
		{name: "forbidden scope", args: []string{"verify", "--scope", "tool:admin:write", k.Secret}, code: exitRefused,
			stdout: []string{"false", "forbidden"}, stderrLine: "verifyctl: the credential does not grant this scope\n"},
		{name: "revoked", args: []string{"verify", revoked.Secret}, code: exitRefused,
			stdout: []string{"revoked"}, stderrLine: "verifyctl: the credential has been revoked\n"},
		{name: "token starting with dash", args: []string{"verify", "-dGhpcyBpcyBub3QgYSByZWFsIGtleQ", "--scope", "a:b"}, code: exitRefused,
			stderrLine: "verifyctl: the credential is not known\n"},
		{name: "unknown json", args: []string{"verify", "-o", "json", "no-such-key-imported-style-0123"}, code: exitRefused,
			stdout: []string{`"allow": false`, `"status": "unknown"`, `"code": "UNAUTHORIZED"`}},
		{name: "invalid scope", args: []string{"verify", k.Secret, "--scope", "a::b"}, code: exitUsage,
			stderrLine: "verifyctl: the requested scope is not a valid scope\n"},
		{name: "invalid scope json", args: []string{"verify", k.Secret, "--scope", "a::b", "-o", "json"}, code: exitUsage,
			stdout: []string{`"status": "invalid_scope"`}},
		{name: "no token", args: []string{"verify"}, code: exitUsage},
		{name: "two tokens", args: []string{"verify", k.Secret, "--token-stdin"}, stdin: "x", code: exitUsage},
		{name: "empty stdin", args: []string{"verify", "--token-stdin"}, code: exitUsage},
		{name: "missing token file", args: []string{"verify", "--token-file", filepath.Join(t.TempDir(), "nope")}, code: exitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := d.anon(t, tc.stdin, tc.args...)
			r.want(t, tc.code)
			for _, want := range tc.stdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
			if tc.stderrLine != "" && r.stderr != tc.stderrLine {
				t.Errorf("stderr = %q, want %q", r.stderr, tc.stderrLine)
			}
		})
	}
}

func TestAdminKey(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	t.Run("missing", func(t *testing.T) {
		for _, args := range [][]string{
			{"keys", "list"},
			{"keys", "create", "--subject", "alice"},
			{"keys", "import", "--subject", "alice", "--secret-stdin"},
			{"keys", "get", "AAAAAAAAAAAAAAAAAAAAAA"},
			{"keys", "revoke", "AAAAAAAAAAAAAAAAAAAAAA"},
			{"keys", "rotate", "AAAAAAAAAAAAAAAAAAAAAA"},
		} {
			r := d.anon(t, "some-secret-on-stdin-0123", args...)
			r.want(t, exitUsage)
			if !strings.Contains(r.stderr, "no admin key: set VERIFYD_ADMIN_KEY") {
				t.Errorf("%q: stderr = %q", args, r.stderr)
			}
		}
		if n := d.Connections(); n != 0 {
			t.Errorf("daemon saw %d requests without an admin key, want 0", n)
		}
	})
	t.Run("wrong", func(t *testing.T) {
		r := runBinary(t, invocation{
			env:  []string{"VERIFYD_ADDR=" + d.URL, "VERIFYD_ADMIN_KEY=not-the-key"},
			args: []string{"keys", "list"},
		})
		r.want(t, exitRefused)
		if r.stderr != "verifyctl: a valid admin key is required in the X-Admin-Key header\n" || strings.Contains(r.stderr, "not-the-key") {
			t.Errorf("stderr = %q", r.stderr)
		}
	})
	t.Run("flag overrides env", func(t *testing.T) {
		r := runBinary(t, invocation{
			env:  []string{"VERIFYD_ADDR=" + d.URL, "VERIFYD_ADMIN_KEY=not-the-key"},
			args: []string{"keys", "list", "--admin-key", testAdminKey},
		})
		r.want(t, exitOK)
	})
	t.Run("addr flag without scheme", func(t *testing.T) {
		r := runBinary(t, invocation{
			env:  []string{"VERIFYD_ADMIN_KEY=" + testAdminKey},
			args: []string{"--addr", strings.TrimPrefix(d.URL, "http://"), "keys", "list"},
		})
		r.want(t, exitOK)
	})
}

func TestDaemonTrouble(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedAddr := closed.URL
	closed.Close()

	serve := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	tests := []struct {
		name   string
		addr   string
		args   []string
		code   int
		stderr string // substring
	}{
		{"unreachable admin", closedAddr, []string{"keys", "list"}, exitUnavailable, "connection refused"},
		{"unreachable verify", closedAddr, []string{"verify", "tok"}, exitUnavailable, "connection refused"},
		{"bad gateway", serve(502, "<html>bad gateway</html>"), []string{"keys", "list"}, exitUnavailable, "daemon answered 502 Bad Gateway"},
		{"unavailable", serve(503, `{"code":"SERVICE_UNAVAILABLE","error":"service_unavailable","message":"store closed"}`),
			[]string{"keys", "get", "abc"}, exitUnavailable, "verifyctl: store closed"},
		{"verify unavailable", serve(503, `{"allow":false,"status":"unavailable","code":"SERVICE_UNAVAILABLE","error":"service_unavailable","message":"no policy"}`),
			[]string{"verify", "tok"}, exitUnavailable, "verifyctl: no policy"},
		{"garbage", serve(200, "hello"), []string{"keys", "list"}, exitUnavailable, "undecodable answer"},
		{"rate limited", serve(429, `{"code":"RATE_LIMITED","error":"rate_limited","message":"slow down"}`),
			[]string{"keys", "list"}, exitRefused, "verifyctl: slow down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, invocation{
				env:  []string{"VERIFYD_ADDR=" + tc.addr, "VERIFYD_ADMIN_KEY=" + testAdminKey},
				args: tc.args,
			})
			r.want(t, tc.code)
			if !strings.Contains(r.stderr, tc.stderr) || !strings.HasPrefix(r.stderr, "verifyctl: ") {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tc.stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	tests := []struct {
		name   string
		args   []string
		stderr string // substring
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"keys alone", []string{"keys"}, "keys needs a subcommand"},
		{"unknown keys command", []string{"keys", "burn"}, `unknown command "keys burn"`},
		{"bad output", []string{"-o", "yaml", "keys", "list"}, "output must be table or json"},
		{"unknown flag", []string{"keys", "list", "--color"}, "unknown flag --color"},
		{"unknown flag after id", []string{"keys", "get", "abc", "-colour=red"}, "unknown flag -colour=red"},
		{"unknown global flag", []string{"--colour", "keys", "list"}, "flag provided but not defined: -colour"},
		{"flag without value", []string{"keys", "list", "--subject"}, "flag needs an argument: -subject"},
		{"missing id", []string{"keys", "get"}, "usage: verifyctl keys get ID"},
		{"extra argument", []string{"keys", "revoke", "a", "b"}, "usage: verifyctl keys revoke ID"},
		{"bad id", []string{"keys", "get", "../../etc"}, "key id"},
		{"no subject", []string{"keys", "create"}, "--subject is required"},
		{"bad project role", []string{"keys", "create", "--subject", "a", "--project-role", "p1"}, "want project=role"},
		{"duplicate meta", []string{"keys", "create", "--subject", "a", "--meta", "k=1", "--meta", "k=2"}, `metadata key "k" given twice`},
		{"negative expiry", []string{"keys", "create", "--subject", "a", "--expires-in", "-1h"}, "--expires-in must not be negative"},
		{"bad duration", []string{"keys", "create", "--subject", "a", "--expires-in", "30d"}, "invalid value"},
		{"negative grace", []string{"keys", "rotate", "abc", "--grace", "-1m"}, "--grace must not be negative"},
		{"import without source", []string{"keys", "import", "--subject", "a"}, "exactly one of --secret-file and --secret-stdin"},
		{"import two sources", []string{"keys", "import", "--subject", "a", "--secret-file", "f", "--secret-stdin"}, "exactly one of"},
		{"bad scope from daemon", []string{"keys", "create", "--subject", "a", "--scope", "a:**"}, `scope "a:**": more than one '*' in a segment`},
		{"bad addr", []string{"--addr", "ftp://x", "keys", "list"}, "scheme must be http or https"},
		{"zero timeout", []string{"--timeout", "0s", "keys", "list"}, "--timeout must be positive"},
		{"help unknown", []string{"help", "nope"}, `no help for unknown command "nope"`},
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

func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"help", []string{"help"}, []string{"keys create", "verify", "Exit status", "VERIFYD_ADMIN_KEY", "visible to other", "shown only once"}},
		{"-h", []string{"-h"}, []string{"Commands:"}},
		{"keys -h", []string{"keys", "--help"}, []string{"keys rotate"}},
		{"help keys", []string{"help", "keys"}, []string{"keys revoke"}},
		{"command -h", []string{"keys", "create", "-h"}, []string{"verifyctl keys create --subject S", "--project-role P=R"}},
		{"help command", []string{"help", "keys", "import"}, []string{"--secret-stdin", "never from the command line"}},
		{"help verify", []string{"help", "verify"}, []string{"--token-file", "Prefer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, invocation{env: []string{"VERIFYD_ADMIN_KEY=" + testAdminKey}, args: tc.args})
			r.want(t, exitOK)
			for _, want := range tc.want {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("help lacks %q", want)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runBinary(t, invocation{args: []string{"version"}})
	r.want(t, exitOK)
	if !strings.HasPrefix(r.stdout, "verifyctl ") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("version = %q", r.stdout)
	}
}
