package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verifyd/verifyd/ipc"
	"github.com/verifyd/verifyd/verify"
)

// TestSocketEndToEnd drives the real daemon's Unix socket with the Go
// client and with verifyctl, and checks that its answers agree with HTTP.
func TestSocketEndToEnd(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	admin := d.adminKey()
	var alice, bob keyAnswer
	d.ctlJSON(admin, &alice, "keys", "create", "--subject", "alice", "--scope", "tool:data:*", "--role", "publisher")
	d.ctlJSON(admin, &bob, "keys", "create", "--subject", "bob", "--kind", "agent", "--scope", "mailbox:bob:*")

	if fi, err := os.Stat(d.socket); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket file: %v %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ipc.Dial(ctx, d.socket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		token, scope string
		want         verify.Reason
	}{
		{alice.Secret, "tool:data:read", verify.OK},
		{alice.Secret, "tool:admin:read", verify.Forbidden},
		{bob.Secret, "mailbox:bob:inbox", verify.OK},
		{bob.Secret, "mailbox:alice:inbox", verify.Forbidden},
		{"vk_" + strings.Repeat("A", 40), "", verify.Malformed},
		{alice.Secret, "tool::read", verify.InvalidScope},
	}
	// Many goroutines at once over the client's pipelined connections.
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				tc := cases[(g+i)%len(cases)]
				r, err := c.Verify(ctx, tc.token, tc.scope)
				if err != nil || r.Status != tc.want {
					t.Errorf("Verify(%.8s..., %q) = %v, %v; want %v", tc.token, tc.scope, r.Status, err, tc.want)
					return
				}
			}
		}()
	}
	wg.Wait()
	r, err := c.Verify(ctx, alice.Secret, "tool:data:read")
	if h := d.verifyHTTP(alice.Secret, "tool:data:read"); err != nil || r.Subject != h.Subject || r.Kind != h.Kind || r.KeyID != h.KeyID ||
		len(r.Roles) != 1 || r.Roles[0] != "publisher" || r.Grant != "tool:data:*" || r.CacheTTL <= 0 {
		t.Errorf("socket answer %+v (%v) disagrees with HTTP %+v", r, err, h)
	}

	// verifyctl over the socket: same exit codes as over HTTP.
	tokenFile := filepath.Join(t.TempDir(), "alice.key")
	os.WriteFile(tokenFile, []byte(alice.Secret), 0o600)
	out, code := d.ctl(admin, "verify", "--socket", d.socket, "--token-file", tokenFile, "--scope", "tool:data:read", "-o", "json")
	var v struct {
		Allow   bool   `json:"allow"`
		Subject string `json:"subject"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !v.Allow || v.Subject != "alice" {
		t.Errorf("verifyctl verify --socket: exit %d: %s", code, out)
	}
	if _, code := d.ctl(admin, "verify", "--socket", d.socket, "--token-file", tokenFile, "--scope", "tool:admin:read"); code != 1 {
		t.Errorf("verifyctl verify --socket, forbidden: exit %d, want 1", code)
	}
	if out, code := d.ctl(admin, "ping", "--socket", d.socket); code != 0 || !strings.Contains(out, "max") {
		t.Errorf("verifyctl ping: exit %d: %s", code, out)
	}

	// SIGTERM: the daemon stops cleanly and removes its socket.
	if code := d.terminate(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if _, err := os.Stat(d.socket); !os.IsNotExist(err) {
		t.Errorf("socket file left after a clean stop: %v", err)
	}
}
