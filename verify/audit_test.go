package verify

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
)

func TestAdminActor(t *testing.T) {
	a := AdminActor(keystore.Sum("admin-key-1"))
	if !regexp.MustCompile(`^admin:[0-9a-f]{8}$`).MatchString(a) || a != AdminActor(keystore.Sum("admin-key-1")) {
		t.Fatalf("AdminActor = %q, not stable or not admin:<8 hex>", a)
	}
	if a == AdminActor(keystore.Sum("admin-key-2")) {
		t.Error("two admin keys share an actor")
	}
	d := keystore.Sum("admin-key-1")
	if strings.Contains(a, d.String()) {
		t.Error("the actor shows a prefix of the admin key's digest")
	}
	if got := ActorFrom(context.Background()); got != ActorSystem {
		t.Errorf("ActorFrom without an actor = %q", got)
	}
}

// TestEveryActionIsAudited runs every Manager action, successful and
// failing, and checks the audit trail: one entry per action, in order, with
// the actor, target and outcome, the same entries handed to the sink, and
// no secret anywhere.
func TestEveryActionIsAudited(t *testing.T) {
	f, sink := newRequestFixture(t, RequestOptions{})
	admin := f.m.AdminActor()
	ctx := WithActor(context.Background(), admin)
	var secrets []string

	rec, secret, err := f.m.CreateKey(ctx, KeySpec{Subject: "alice", Scopes: []string{"tool:*"}})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, secret)
	const imported = "legacy-secret-0123456789"
	imp, err := f.m.ImportKey(ctx, KeySpec{Subject: "legacy", Secret: imported})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, imported)
	_, rotated, err := f.m.RotateKey(ctx, rec.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, rotated)
	if _, err := f.m.RevokeKey(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.m.RotateKey(ctx, rec.ID, 0); err == nil {
		t.Fatal("rotating a revoked key succeeded")
	}
	if _, err := f.m.ImportKey(ctx, KeySpec{Subject: "legacy", Secret: imported}); err == nil {
		t.Fatal("importing a secret twice succeeded")
	}
	// An operator pastes a secret where an id is due: not recorded.
	if _, err := f.m.RevokeKey(ctx, secret); err == nil {
		t.Fatal("revoking a secret as an id succeeded")
	}
	if _, _, err := f.m.CreateKey(ctx, KeySpec{Subject: ""}); err == nil {
		t.Fatal("a key without subject was created")
	}
	jwtLike := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	if _, err := f.m.RevokeJWT(ctx, JWTRevocation{TokenID: jwtLike}, "admin"); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, jwtLike)
	if _, err := f.m.RevokeJWT(ctx, JWTRevocation{Subject: "bob"}, "admin"); err != nil {
		t.Fatal(err)
	}
	tk := f.ask(t, AccessSpec{AgentID: "bot-1"})
	secrets = append(secrets, tk.Token)
	a, err := f.m.ApproveRequest(ctx, tk.Token, Grant{})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, a.Secret)
	if _, err := f.m.DenyRequest(ctx, tk.Request.ID); err == nil {
		t.Fatal("denying an approved request succeeded")
	}
	if _, err := f.m.RevokeAgent(ctx, "bot-1"); err != nil {
		t.Fatal(err)
	}
	reload := WithActor(context.Background(), "system:sighup")
	if err := f.m.Audit(reload, ActionPolicyReload, "/etc/verifyd/policy.yaml", OutcomeOK, "changed mode=rbac"); err != nil {
		t.Fatal(err)
	}

	want := []struct{ actor, action, target, outcome string }{
		{admin, ActionKeyCreate, rec.ID, OutcomeOK},
		{admin, ActionKeyImport, imp.ID, OutcomeOK},
		{admin, ActionKeyRotate, rec.ID, OutcomeOK},
		{admin, ActionKeyRevoke, rec.ID, OutcomeOK},
		{admin, ActionKeyRotate, rec.ID, OutcomeConflict},
		{admin, ActionKeyImport, "", OutcomeConflict},
		{admin, ActionKeyRevoke, "", OutcomeNotFound},
		{admin, ActionKeyCreate, "", OutcomeInvalid},
		{admin, ActionJWTRevokeToken, "sha256:" + keystore.Sum(jwtLike).String(), OutcomeOK},
		{admin, ActionJWTRevokeSubject, "bob", OutcomeOK},
		{admin, ActionRequestApprove, tk.Request.ID, OutcomeOK},
		{admin, ActionRequestDeny, tk.Request.ID, OutcomeConflict},
		{admin, ActionAgentRevoke, "bot-1", OutcomeOK},
		{"system:sighup", ActionPolicyReload, "/etc/verifyd/policy.yaml", OutcomeOK},
	}
	got, next, err := f.m.AuditLog(keystore.AuditQuery{OldestFirst: true})
	if err != nil || next != nil {
		t.Fatal(next, err)
	}
	if len(got) != len(want) {
		for _, e := range got {
			t.Logf("%+v", e)
		}
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		e := got[i]
		if e.Actor != w.actor || e.Action != w.action || e.Outcome != w.outcome || e.Target != w.target {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
		if !e.Time.Equal(f.clock.Now()) {
			t.Errorf("entry %d time %v, want the Manager's clock", i, e.Time)
		}
		for _, s := range secrets {
			if strings.Contains(e.Actor+e.Action+e.Target+e.Outcome+e.Detail, s) {
				t.Errorf("entry %d holds a secret: %+v", i, e)
			}
		}
	}
	if !strings.Contains(got[10].Detail, a.Key.ID) {
		t.Errorf("approval detail %q does not name the key", got[10].Detail)
	}
	if !reflect.DeepEqual(sink.all(), got) {
		t.Errorf("the sink received other entries than the store holds:\n%+v\n%+v", sink.all(), got)
	}
}

func TestAuditText(t *testing.T) {
	for in, want := range map[string]string{
		"plain-id_01":            "plain-id_01",
		"ü":                      "ü",
		"a\nb":                   `"a\nb"`,
		"\xff":                   `"\xff"`,
		strings.Repeat("x", 300): `"` + strings.Repeat("x", 256) + `"...`,
	} {
		if got := auditText(in); got != want {
			t.Errorf("auditText(%q) = %q, want %q", in, got, want)
		}
		e := keystore.AuditEntry{Actor: "a", Action: "x", Outcome: "ok", Target: auditTarget(in)}
		if err := e.Validate(); err != nil {
			t.Errorf("an entry with target %q is invalid: %v", in, err)
		}
	}
	for _, tok := range []string{"vk_abc", "pat_x_y", "eyJ.eyJ.sig"} {
		if got := auditTarget(tok); !strings.HasPrefix(got, "sha256:") {
			t.Errorf("auditTarget(%q) = %q", tok, got)
		}
	}
}

func TestReloadOutcome(t *testing.T) {
	if ReloadOutcome(nil) != OutcomeOK || ReloadOutcome(&rbac.PolicyError{}) != OutcomeInvalid || ReloadOutcome(context.Canceled) != OutcomeError {
		t.Error("ReloadOutcome classifies wrongly")
	}
}
