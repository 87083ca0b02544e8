package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/internal/adminclient"
)

func TestPATCommands(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	ctx := context.Background()

	r := d.admin(t, "", "pats", "create", "--subject", "alice", "--name", "ci", "--duration", "48h", "--scope", "d1:clients:create:*", "--scope", "d1:channels:publish:ch-42")
	r.want(t, exitOK)
	token := strings.TrimSuffix(r.stdout, "\n")
	if !strings.HasPrefix(token, "pat_") || strings.ContainsAny(token, " \n") {
		t.Fatalf("stdout = %q, want the token alone", r.stdout)
	}
	for _, want := range []string{"shown only this once", "d1:clients:create:*, d1:channels:publish:ch-42", "domains/d1/channels/ch-42:publish"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, token) {
		t.Error("stderr repeats the token")
	}
	res, err := d.client.Verify(ctx, token, "domains/d1/channels/ch-42:publish")
	if err != nil || !res.Allow {
		t.Fatalf("the printed token: %+v, %v", res, err)
	}
	id := res.KeyID

	r = d.admin(t, "", "pats", "list", "--subject", "alice")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "SCOPES") {
		t.Errorf("pats list:\n%s", r.stdout)
	}
	r = d.admin(t, "", "pats", "add-scope", id, "--scope", "d1:dashboards:view:*", "-o", "json")
	r.want(t, exitOK)
	var p adminclient.PAT
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || len(p.Scopes) != 3 || p.Scopes[2].Operation != "view" {
		t.Errorf("add-scope -o json: %+v, %v\n%s", p, err, r.stdout)
	}
	r = d.admin(t, "", "pats", "remove-scope", id, "--scope", "d1:messages:publish:ch-42")
	r.want(t, exitOK)
	r = d.admin(t, "", "pats", "scopes", id)
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "d1:clients:create:*, d1:dashboards:view:*") || strings.Contains(r.stdout, "ch-42") || !strings.Contains(r.stdout, "domains/d1/dashboards/*:read") {
		t.Errorf("pats scopes:\n%s", r.stdout)
	}
	r = d.admin(t, "", "pats", "get", id)
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "status:") || !strings.Contains(r.stdout, "active") || strings.Contains(r.stdout, token) {
		t.Errorf("pats get:\n%s", r.stdout)
	}

	// Mistakes: usage (2), the daemon's 400 (2), an unknown id (1).
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pats", "create", "--name", "x"}, exitUsage, "--subject is required"},
		{[]string{"pats", "create", "--subject", "a"}, exitUsage, "--name is required"},
		{[]string{"pats", "create", "--subject", "a", "--name", "x", "--scope", "d1:clients"}, exitUsage, "DOMAIN:TYPE:OPERATION:ID"},
		{[]string{"pats", "add-scope", id}, exitUsage, "at least one --scope"},
		{[]string{"pats", "add-scope", id, "--scope", "d1:robots:read:*"}, exitUsage, "unknown entity type"},
		{[]string{"pats", "reset", id, "--duration", "100000h"}, exitUsage, "longer than the maximum"},
		{[]string{"pats", "get", "AAAAAAAAAAAAAAAAAAAAAA"}, exitRefused, "no personal access token"},
		{[]string{"pats"}, exitUsage, "add-scope"},
	} {
		r := d.admin(t, "", tc.args...)
		r.want(t, tc.code)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: stderr lacks %q:\n%s", tc.args, tc.want, r.stderr)
		}
	}

	r = d.admin(t, "", "pats", "reset", id, "--duration", "1h")
	r.want(t, exitOK)
	fresh := strings.TrimSuffix(r.stdout, "\n")
	if res, err := d.client.Verify(ctx, token, ""); err != nil || res.Allow {
		t.Errorf("the old token after reset: %+v, %v", res, err)
	}
	if res, err := d.client.Verify(ctx, fresh, "domains/d1/clients:create"); err != nil || !res.Allow {
		t.Errorf("the reset token: %+v, %v", res, err)
	}
	r = d.admin(t, "", "pats", "revoke", id)
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "revoked") {
		t.Errorf("pats revoke:\n%s", r.stdout)
	}
	if r := d.anon(t, "", "pats", "list"); r.code != exitUsage || !strings.Contains(r.stderr, "no admin key") {
		t.Errorf("pats list without an admin key: %d %s", r.code, r.stderr)
	}
}
