package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type revocationAnswer struct {
	JTI       string    `json:"jti"`
	Subject   string    `json:"subject"`
	ExpiresAt time.Time `json:"expires_at"`
	NotBefore time.Time `json:"not_before"`
	CreatedAt time.Time `json:"created_at"`
	Creator   string    `json:"creator"`
}

type revocationList struct {
	Tokens   []revocationAnswer `json:"tokens"`
	Subjects []revocationAnswer `json:"subjects"`
}

// TestJWTRevocationsSurviveRestart revokes JWTs by jti and by subject with
// verifyctl, kills the daemon with SIGKILL right after the acknowledgements,
// and checks after the restart that every acknowledged revocation is listed
// as it was acknowledged; then once more across a clean stop.
func TestJWTRevocationsSurviveRestart(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir)
	admin := d.adminKey()
	start := time.Now().Add(-time.Second)

	var byJTI, expiring, forever, bySubject, earlier revocationAnswer
	d.ctlJSON(admin, &byJTI, "revoke", "jwt", "--jti", "0b7c9f2e-jti", "--expires-at", "2030-01-01T00:00:00Z")
	d.ctlJSON(admin, &expiring, "revoke", "jwt", "--jti", "kept-forever", "--expires-at", "1893456000")
	d.ctlJSON(admin, &forever, "revoke", "jwt", "--jti", "kept-forever") // no expiry: kept forever
	d.ctlJSON(admin, &bySubject, "revoke", "jwt", "--subject", "alice@example.com")
	d.ctlJSON(admin, &earlier, "revoke", "jwt", "--subject", "alice@example.com", "--not-before", "1700000000")
	if byJTI.JTI != "0b7c9f2e-jti" || !byJTI.ExpiresAt.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) || byJTI.Creator != "admin" {
		t.Errorf("revoke by jti answered %+v", byJTI)
	}
	if expiring.ExpiresAt.IsZero() || !forever.ExpiresAt.IsZero() || forever.CreatedAt != expiring.CreatedAt {
		t.Errorf("revoking again without an expiry answered %+v, want it kept forever", forever)
	}
	if bySubject.Subject != "alice@example.com" || bySubject.NotBefore.Before(start) || bySubject.NotBefore.After(time.Now().Add(time.Second)) {
		t.Errorf("revoke by subject answered %+v, want not_before now", bySubject)
	}
	if earlier != bySubject {
		t.Errorf("an earlier not_before answered %+v, want the revocation in effect %+v", earlier, bySubject)
	}
	var want revocationList
	d.ctlJSON(admin, &want, "revocations", "list")
	if len(want.Tokens) != 2 || len(want.Subjects) != 1 || want.Tokens[0] != byJTI || want.Tokens[1] != forever || want.Subjects[0] != bySubject {
		t.Fatalf("list before the restart: %+v", want)
	}
	d.kill()

	d = startDaemon(t, dataDir)
	var got revocationList
	d.ctlJSON(admin, &got, "revocations", "list")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after kill -9: %+v\nwant %+v", got, want)
	}
	out, code := d.ctl(admin, "revocations", "list")
	if code != 0 || !strings.Contains(out, "0b7c9f2e-jti") || !strings.Contains(out, "alice@example.com") {
		t.Errorf("revocations list (table) exited %d:\n%s", code, out)
	}
	// Revocations stay monotonic across the restart.
	earlier = revocationAnswer{}
	d.ctlJSON(admin, &earlier, "revoke", "jwt", "--subject", "alice@example.com", "--not-before", "1700000000")
	if earlier != bySubject {
		t.Errorf("an earlier not_before after the restart answered %+v, want %+v", earlier, bySubject)
	}
	if _, code := d.ctl("vk_wrong-admin-key-000000000000000000000000000", "revocations", "list"); code == 0 {
		t.Error("revocations list with a wrong admin key succeeded")
	}
	if code := d.terminate(); code != 0 {
		t.Errorf("verifyd exited %d after SIGTERM:\n%s", code, d.output())
	}

	d = startDaemon(t, dataDir)
	got = revocationList{}
	d.ctlJSON(admin, &got, "revocations", "list")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after a clean restart: %+v\nwant %+v", got, want)
	}
}
