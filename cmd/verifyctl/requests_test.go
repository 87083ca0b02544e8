package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/internal/adminclient"
)

func TestRequestsAndAudit(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	ctx := context.Background()
	ask := func(agent string) adminclient.AccessTicket {
		t.Helper()
		tk, err := d.client.RequestAccess(ctx, adminclient.AccessRequestSpec{AgentID: agent, Name: "the " + agent})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	first, second := ask("bot-1"), ask("bot-2")

	r := d.admin(t, "", "requests", "list")
	r.want(t, exitOK)
	for _, want := range []string{"ID", "AGENT", first.RequestID, "bot-1", second.RequestID, "pending"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("requests list lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, first.RequestToken) {
		t.Fatal("requests list shows a request token")
	}

	// Approve: the key alone on stdout, details on stderr.
	r = d.admin(t, "", "requests", "approve", first.RequestID, "--scope", "mailbox:bot-1:*", "--expires-in", "720h")
	r.want(t, exitOK)
	key := strings.TrimSpace(r.stdout)
	if len(key) != 43 || !strings.Contains(r.stderr, "shown only this once") || !strings.Contains(r.stderr, "mailbox:bot-1:*") {
		t.Fatalf("requests approve: stdout %q, stderr:\n%s", r.stdout, r.stderr)
	}
	if v, err := d.client.Verify(ctx, key, "mailbox:bot-1:read"); err != nil || !v.Allow || v.Subject != "bot-1" {
		t.Fatalf("the approved key: %+v, %v", v, err)
	}
	r = d.admin(t, "", "requests", "approve", first.RequestID)
	r.want(t, exitRefused)
	if !strings.Contains(r.stderr, "approved") {
		t.Errorf("approving twice says:\n%s", r.stderr)
	}
	r = d.admin(t, "", "requests", "deny", second.RequestID, "-o", "json")
	r.want(t, exitOK)
	var denied adminclient.AccessRequest
	if err := json.Unmarshal([]byte(r.stdout), &denied); err != nil || denied.Status != adminclient.RequestDenied {
		t.Fatalf("requests deny -o json: %v\n%s", err, r.stdout)
	}
	r = d.admin(t, "", "requests", "get", second.RequestID)
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "denied") || !strings.Contains(r.stdout, "the bot-2") {
		t.Errorf("requests get:\n%s", r.stdout)
	}
	d.admin(t, "", "requests", "list", "--status", "bogus").want(t, exitUsage)
	d.admin(t, "", "requests", "approve").want(t, exitUsage)
	d.admin(t, "", "requests", "approve", "x/y").want(t, exitUsage)
	d.admin(t, "", "requests", "deny", strings.Repeat("A", 22)).want(t, exitRefused)

	r = d.admin(t, "", "agents", "revoke", "bot-1")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "revoked 1 live keys of bot-1") {
		t.Errorf("agents revoke:\n%s", r.stdout)
	}
	d.admin(t, "", "agents", "revoke", "nobody").want(t, exitRefused)

	// The audit trail names every action, newest first, and no secret.
	r = d.admin(t, "", "audit")
	r.want(t, exitOK)
	for _, want := range []string{"ACTOR", "request.approve", "request.deny", "agent.revoke", "conflict", "not_found"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("audit lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, secret := range []string{key, first.RequestToken, second.RequestToken} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatal("audit printed a secret")
		}
	}
	r = d.admin(t, "", "audit", "--action", "request.approve", "--oldest-first", "-o", "json")
	r.want(t, exitOK)
	var page adminclient.AuditPage
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Entries) != 2 ||
		page.Entries[0].Outcome != "ok" || page.Entries[1].Outcome != "conflict" || !strings.HasPrefix(page.Entries[0].Actor, "admin:") {
		t.Fatalf("audit --action -o json: %v\n%s", err, r.stdout)
	}
	r = d.admin(t, "", "audit", "--limit", "2")
	r.want(t, exitOK)
	if !strings.Contains(r.stderr, "--cursor ") {
		t.Errorf("a partial page names no cursor:\n%s", r.stderr)
	}
	r = d.admin(t, "", "audit", "--all", "--limit", "1", "-o", "json")
	r.want(t, exitOK)
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Entries) != 6 || page.NextCursor != "" {
		t.Errorf("audit --all: %v, %d entries\n%s", err, len(page.Entries), r.stdout)
	}
	d.admin(t, "", "audit", "--limit", "0", "--since", "yesterday").want(t, exitUsage)
	d.admin(t, "", "audit", "--all", "--cursor", "x").want(t, exitUsage)
	d.anon(t, "", "audit").want(t, exitUsage)
}
