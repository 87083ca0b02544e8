package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/ipc"
	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// socketDaemon is the daemon's real socket server over a real verifier and
// store, listening on a socket in a temporary directory.
type socketDaemon struct {
	path string
	mgr  *verify.Manager
}

func newSocketDaemon(t *testing.T, opts ipc.Options) *socketDaemon {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	store, err := keystore.Open(filepath.Join(dir, "db"), &keystore.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ck, err := credential.NewChecksumKey()
	if err != nil {
		t.Fatal(err)
	}
	minter, err := credential.NewMinter(ck)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(store, minter, &verify.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	opts.Verifier = v
	opts.Logger = quiet
	d := &socketDaemon{
		path: filepath.Join(dir, "verifyd.sock"),
		mgr:  verify.NewManager(store, minter, keystore.Sum(testAdminKey), nil),
	}
	srv, err := ipc.Listen(d.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return d
}

// createKey creates a credential and returns its id and secret.
func (d *socketDaemon) createKey(t *testing.T, spec verify.KeySpec) (string, string) {
	t.Helper()
	rec, secret, err := d.mgr.CreateKey(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return rec.ID, secret
}

// closedHTTP returns the address of an HTTP server that is no longer there.
func closedHTTP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()
	return addr
}

func TestVerifySocket(t *testing.T) {
	t.Parallel()
	d := newSocketDaemon(t, ipc.Options{MaxTokenBytes: 512})
	aliceID, alice := d.createKey(t, verify.KeySpec{Subject: "alice", Scopes: []string{"tool:data:*"}, Roles: []string{"publisher"}, ExpiresIn: 24 * time.Hour})
	revokedID, revoked := d.createKey(t, verify.KeySpec{Subject: "bob"})
	if _, err := d.mgr.RevokeKey(context.Background(), revokedID); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(alice+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadHTTP := closedHTTP(t)
	missing := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		name       string
		env        []string
		stdin      string
		args       []string
		code       int
		stdout     []string // substrings of stdout
		notStdout  []string // substrings stdout must not have
		stderrLine string   // exact stderr, when set
		stderr     string   // substring of stderr, when set
	}{
		{name: "allowed", args: []string{"verify", "--socket", d.path, alice}, code: exitOK,
			stdout: []string{"allow:", "true", "alice", "publisher", aliceID, "api_key", "cache ttl:", "5s"}, notStdout: []string{"scopes:"}},
		{name: "allowed scope after token", args: []string{"verify", alice, "--scope", "tool:data:read", "--socket", d.path}, code: exitOK,
			stdout: []string{"grant:", "tool:data:*"}},
		{name: "token file", args: []string{"verify", "--socket=" + d.path, "--token-file", tokenFile, "--scope", "tool:data:read"}, code: exitOK},
		{name: "token stdin", stdin: alice + "\n", args: []string{"verify", "--token-stdin", "--socket", d.path}, code: exitOK},
		{name: "allowed json", args: []string{"verify", "--socket", d.path, alice, "--scope", "tool:data:read", "-o", "json"}, code: exitOK,
			stdout: []string{`"allow": true`, `"status": "ok"`, `"subject": "alice"`, `"key_id": "` + aliceID + `"`, `"grant": "tool:data:*"`, `"cache_ttl_ms": 5000`, `"expires_at": "`, `"roles": [`}},
		{name: "forbidden scope", args: []string{"verify", "--socket", d.path, "--scope", "tool:admin:write", alice}, code: exitRefused,
			stdout: []string{"false", "forbidden"}, notStdout: []string{"alice"}, stderrLine: "verifyctl: the credential does not grant this scope\n"},
		{name: "revoked", args: []string{"verify", "--socket", d.path, revoked}, code: exitRefused,
			stdout: []string{"revoked"}, stderrLine: "verifyctl: the credential has been revoked\n"},
		{name: "unknown json", args: []string{"verify", "--socket", d.path, "-o", "json", "no-such-key-imported-style-0123"}, code: exitRefused,
			stdout: []string{`"allow": false`, `"status": "unknown"`, `"code": "UNAUTHORIZED"`, `"error": "unknown"`}},
		{name: "invalid scope", args: []string{"verify", "--socket", d.path, alice, "--scope", "a::b"}, code: exitUsage,
			stderrLine: "verifyctl: the requested scope is not a valid scope\n"},
		{name: "invalid scope json", args: []string{"verify", "--socket", d.path, alice, "--scope", "a::b", "-o", "json"}, code: exitUsage,
			stdout: []string{`"status": "invalid_scope"`}},
		{name: "token too long", args: []string{"verify", "--socket", d.path, strings.Repeat("x", 513)}, code: exitUsage,
			stderr: "longer than the daemon accepts"},
		{name: "socket from env", env: []string{"VERIFYD_SOCKET=" + d.path, "VERIFYD_ADDR=" + deadHTTP}, args: []string{"verify", alice}, code: exitOK,
			stdout: []string{"alice"}},
		{name: "addr flag wins over env socket", env: []string{"VERIFYD_SOCKET=" + d.path}, args: []string{"verify", "--addr", deadHTTP, alice}, code: exitUnavailable,
			stderr: "connection refused"},
		{name: "socket flag wins over addr flag", args: []string{"verify", "--addr", deadHTTP, "--socket", d.path, alice}, code: exitOK},
		{name: "no socket there", args: []string{"verify", "--socket", missing, alice}, code: exitUnavailable,
			stderr: "verifyctl: socket " + missing + ": "},
		{name: "no token", args: []string{"verify", "--socket", d.path}, code: exitUsage},
		{name: "zero timeout", args: []string{"verify", "--socket", d.path, "--timeout", "0s", alice}, code: exitUsage, stderr: "--timeout must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, invocation{env: tc.env, stdin: tc.stdin, args: tc.args})
			r.want(t, tc.code)
			for _, want := range tc.stdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
			for _, bad := range tc.notStdout {
				if strings.Contains(r.stdout, bad) {
					t.Errorf("stdout has %q:\n%s", bad, r.stdout)
				}
			}
			if tc.stderrLine != "" && r.stderr != tc.stderrLine {
				t.Errorf("stderr = %q, want %q", r.stderr, tc.stderrLine)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tc.stderr)
			}
			for _, secret := range []string{alice, revoked} {
				if strings.Contains(r.stderr, secret) {
					t.Errorf("stderr shows a token: %q", r.stderr)
				}
			}
		})
	}
}

// TestVerifySocketMatchesHTTP checks that a decision printed from the socket
// has the fields, names and values of the same decision over HTTP.
func TestVerifySocketMatchesHTTP(t *testing.T) {
	t.Parallel()
	d := newSocketDaemon(t, ipc.Options{})
	h := newDaemon(t)
	spec := verify.KeySpec{Subject: "alice", Scopes: []string{"tool:data:*"}, Roles: []string{"publisher", "reader"}}
	sockID, sockSecret := d.createKey(t, spec)
	httpKey := h.createKey(t, adminclient.KeySpec{Subject: spec.Subject, Scopes: spec.Scopes, Roles: spec.Roles})
	for _, scope := range []string{"tool:data:read", "", "tool:admin:write"} {
		viaSocket := runBinary(t, invocation{args: []string{"verify", "-o", "json", "--socket", d.path, "--scope", scope, sockSecret}})
		viaHTTP := h.anon(t, "", "verify", "-o", "json", "--scope", scope, httpKey.Secret)
		if viaSocket.code != viaHTTP.code || viaSocket.stderr != viaHTTP.stderr {
			t.Errorf("scope %q: socket exit %d %q, http exit %d %q", scope, viaSocket.code, viaSocket.stderr, viaHTTP.code, viaHTTP.stderr)
		}
		var s, w adminclient.VerifyResult
		if err := json.Unmarshal([]byte(viaSocket.stdout), &s); err != nil {
			t.Fatalf("socket output: %v\n%s", err, viaSocket.stdout)
		}
		if err := json.Unmarshal([]byte(viaHTTP.stdout), &w); err != nil {
			t.Fatalf("http output: %v\n%s", err, viaHTTP.stdout)
		}
		if s.KeyID != sockID && s.Allow {
			t.Errorf("key id %q, want %q", s.KeyID, sockID)
		}
		s.KeyID, w.KeyID = "", ""
		w.Scopes, w.Reason, w.Matched = nil, "", nil // not carried by the socket protocol
		sb, _ := json.Marshal(s)
		wb, _ := json.Marshal(w)
		if string(sb) != string(wb) {
			t.Errorf("scope %q:\nsocket %s\nhttp   %s", scope, sb, wb)
		}
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	d := newSocketDaemon(t, ipc.Options{MaxInFlight: 64, IdleTimeout: time.Minute})
	missing := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{name: "table", args: []string{"ping", "--socket", d.path}, code: exitOK,
			stdout: []string{"socket:", d.path, "round trip:", "protocol version:", "max in flight:", "64", "max frame bytes:", "16384", "max token bytes:", "8192", "max scope bytes:", "1024", "idle timeout:", "1m0s"}},
		{name: "env", env: []string{"VERIFYD_SOCKET=" + d.path}, args: []string{"ping"}, code: exitOK, stdout: []string{"round trip:"}},
		{name: "missing socket", args: []string{"ping", "--socket", missing}, code: exitUnavailable, stderr: "verifyctl: socket " + missing + ": "},
		{name: "no socket", args: []string{"ping"}, code: exitUsage, stderr: "no socket: pass --socket PATH or set VERIFYD_SOCKET"},
		{name: "extra argument", args: []string{"ping", "--socket", d.path, "x"}, code: exitUsage, stderr: "usage: verifyctl ping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, invocation{env: tc.env, args: tc.args})
			r.want(t, tc.code)
			for _, want := range tc.stdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tc.stderr)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		r := runBinary(t, invocation{args: []string{"ping", "--socket", d.path, "-o", "json"}})
		r.want(t, exitOK)
		var p pingResult
		if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		want := pingResult{Socket: d.path, RoundTripUS: p.RoundTripUS, Version: 1, MaxFrameBytes: 16384, MaxInFlight: 64, MaxTokenBytes: 8192, MaxScopeBytes: 1024, IdleTimeoutMS: 60000}
		if p != want || p.RoundTripUS <= 0 {
			t.Errorf("got %+v, want %+v", p, want)
		}
	})
}

// TestPingUnresponsive checks that ping gives up after --timeout when the
// socket accepts but never answers.
func TestPingUnresponsive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	start := time.Now()
	r := runBinary(t, invocation{args: []string{"ping", "--socket", path, "--timeout", "200ms"}})
	r.want(t, exitUnavailable)
	if !strings.Contains(r.stderr, "verifyctl: socket "+path+": ") {
		t.Errorf("stderr = %q", r.stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ping took %v with --timeout 200ms", d)
	}
}

func TestHelpSocket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"ping", "VERIFYD_SOCKET"}},
		{[]string{"help", "ping"}, []string{"verifyctl ping [--socket PATH]", "round-trip", "$VERIFYD_SOCKET"}},
		{[]string{"help", "verify"}, []string{"--socket PATH", "Unix socket"}},
	} {
		r := runBinary(t, invocation{args: tc.args})
		r.want(t, exitOK)
		for _, want := range tc.want {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%q lacks %q", tc.args, want)
			}
		}
	}
}
