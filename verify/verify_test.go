package verify

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify/credential"
)

// fakeClock is a settable clock for expiry tests.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type fixture struct {
	store *keystore.Store
	v     *Verifier
	m     *Manager
	clock *fakeClock
}

func newFixture(t testing.TB) *fixture {
	return newFixtureWith(t, nil)
}

func newFixtureWith(t testing.TB, opts *keystore.Options) *fixture {
	t.Helper()
	store, err := keystore.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ck, _ := credential.NewChecksumKey()
	minter, err := credential.NewMinter(ck)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	v, err := New(store, minter, &Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, v: v, m: NewManager(store, minter, keystore.Sum("admin-key-for-tests"), clock.Now), clock: clock}
}

func (f *fixture) create(t testing.TB, spec KeySpec) (keystore.Record, string) {
	t.Helper()
	rec, secret, err := f.m.CreateKey(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return rec, secret
}

func TestVerifyReasons(t *testing.T) {
	f := newFixture(t)
	rec, secret := f.create(t, KeySpec{Subject: "alice", Scopes: []string{"tool:data:*"}, Roles: []string{"publisher"}, ExpiresIn: time.Hour})
	cases := []struct {
		name, token, scope string
		want               Reason
	}{
		{"allowed", secret, "tool:data:read", OK},
		{"authenticate only", secret, "", OK},
		{"forbidden", secret, "tool:database:read", Forbidden},
		{"invalid scope", secret, "tool::read", InvalidScope},
		{"malformed", "x", "", Malformed},
		{"forged", "vk_" + strings.Repeat("A", 40), "", Malformed},
		{"unknown", strings.Repeat("q", 43), "", Unknown},
		{"trailing newline", secret + "\n", "", Malformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.v.Verify(tc.token, tc.scope)
			if r.Reason != tc.want {
				t.Fatalf("got %v, want %v", r.Reason, tc.want)
			}
			if (r.Reason == OK || r.Reason == Forbidden) != (r.Principal != nil) {
				t.Fatalf("principal %v with reason %v", r.Principal, r.Reason)
			}
			if r.Reason == OK {
				if r.Principal.Subject != "alice" || r.Principal.KeyID != rec.ID || r.CacheTTL != 5*time.Second || !r.ExpiresAt.Equal(rec.ExpiresAt) {
					t.Errorf("result %+v, principal %+v", r, r.Principal)
				}
				if tc.scope != "" && r.Grant() != "tool:data:*" {
					t.Errorf("grant %q", r.Grant())
				}
			}
		})
	}
}

func TestExpiryAndCacheTTLFollowTheInjectedClock(t *testing.T) {
	f := newFixture(t)
	_, secret := f.create(t, KeySpec{Subject: "a", ExpiresIn: 10 * time.Second})
	if r := f.v.Verify(secret, ""); r.Reason != OK || r.CacheTTL != 5*time.Second {
		t.Fatalf("fresh key: %+v", r)
	}
	f.clock.Advance(7 * time.Second)
	if r := f.v.Verify(secret, ""); r.Reason != OK || r.CacheTTL != 3*time.Second {
		t.Fatalf("near expiry the caller's TTL must shrink: %+v", r)
	}
	f.clock.Advance(3 * time.Second)
	if r := f.v.Verify(secret, ""); r.Reason != Expired {
		t.Fatalf("at expiry: %v", r.Reason)
	}
}

func TestAgentKeysDefaultTo90Days(t *testing.T) {
	f := newFixture(t)
	rec, secret := f.create(t, KeySpec{Subject: "agent-1", Kind: keystore.KindAgent})
	if want := f.clock.Now().Add(DefaultAgentValidity); !rec.ExpiresAt.Equal(want) {
		t.Fatalf("agent key expires %v, want %v", rec.ExpiresAt, want)
	}
	if len(secret) != 43 {
		t.Fatalf("agent secret has %d chars", len(secret))
	}
	f.clock.Advance(DefaultAgentValidity)
	if r := f.v.Verify(secret, ""); r.Reason != Expired {
		t.Fatalf("after 90 days: %v", r.Reason)
	}
}

func TestRotationGraceEnds(t *testing.T) {
	f := newFixture(t)
	rec, old := f.create(t, KeySpec{Subject: "a", Kind: keystore.KindPAT})
	_, fresh, err := f.m.RotateKey(context.Background(), rec.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(fresh, "pat_"+rec.ID+"_") {
		t.Fatalf("rotated PAT %q does not keep its id %s", fresh, rec.ID)
	}
	if r := f.v.Verify(old, ""); r.Reason != OK || !r.ExpiresAt.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("old secret during grace: %+v", r)
	}
	f.clock.Advance(time.Minute)
	if r := f.v.Verify(old, ""); r.Reason != Expired {
		t.Fatalf("old secret after grace: %v", r.Reason)
	}
	if r := f.v.Verify(fresh, ""); r.Reason != OK {
		t.Fatalf("new secret: %v", r.Reason)
	}
}

func TestPATWithAnotherIDIsUnknown(t *testing.T) {
	f := newFixture(t)
	_, a := f.create(t, KeySpec{Subject: "a", Kind: keystore.KindPAT})
	b, _ := f.create(t, KeySpec{Subject: "b", Kind: keystore.KindPAT})
	// a's secret under b's id: a different string, so a different digest.
	spliced := "pat_" + b.ID + a[26:]
	if r := f.v.Verify(spliced, ""); r.Reason != Unknown {
		t.Fatalf("spliced PAT: %v", r.Reason)
	}
}

func TestRevokeIsImmediate(t *testing.T) {
	f := newFixture(t)
	rec, secret := f.create(t, KeySpec{Subject: "a"})
	if r := f.v.Verify(secret, ""); r.Reason != OK {
		t.Fatal(r.Reason)
	}
	if _, err := f.m.RevokeKey(context.Background(), rec.ID); err != nil {
		t.Fatal(err)
	}
	if r := f.v.Verify(secret, ""); r.Reason != Revoked || r.Principal != nil {
		t.Fatalf("after revoke: %+v", r)
	}
	if _, _, err := f.m.RotateKey(context.Background(), rec.ID, 0); !errors.Is(err, ErrRevoked) {
		t.Fatalf("rotating a revoked key: %v", err)
	}
}

func TestUnavailableWhenTheStoreFails(t *testing.T) {
	f := newFixture(t)
	_, secret := f.create(t, KeySpec{Subject: "a"})
	f.store.Close()
	if r := f.v.Verify(secret, ""); r.Reason != Unavailable {
		t.Fatalf("closed store: %v", r.Reason)
	}
}

func TestInvalidSpecsReportEveryProblem(t *testing.T) {
	f := newFixture(t)
	_, _, err := f.m.CreateKey(context.Background(), KeySpec{Kind: keystore.KindImported, Scopes: []string{"a::b", "*"}, Roles: []string{"has space"}, ExpiresIn: -1})
	var se *InvalidSpecError
	if !errors.As(err, &se) || len(se.Problems) != 5 {
		t.Fatalf("got %v", err)
	}
	if recs, _ := f.store.List(""); len(recs) != 0 {
		t.Fatalf("an invalid spec wrote %d records", len(recs))
	}
}

func TestIsAdmin(t *testing.T) {
	f := newFixture(t)
	for key, want := range map[string]bool{"admin-key-for-tests": true, "admin-key-for-test": false, "": false, strings.Repeat("a", 600): false} {
		if got := f.m.IsAdmin(key); got != want {
			t.Errorf("IsAdmin(%.20q) = %v", key, got)
		}
	}
}

func TestReasonTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		if r.String() == "" || seen[r.String()] || r.Message() == "" {
			t.Errorf("reason %d: name %q, message %q", r, r.String(), r.Message())
		}
		seen[r.String()] = true
		if (r == OK) != (r.HTTPStatus() == http.StatusOK) || (r == OK) != (r.ErrorCode() == "") {
			t.Errorf("reason %v: status %d, code %q", r, r.HTTPStatus(), r.ErrorCode())
		}
	}
	if Reason(200).String() != "invalid" {
		t.Error("out-of-range reason")
	}
}

func TestNegativeCacheTTLTellsCallersNotToCache(t *testing.T) {
	f := newFixture(t)
	opts := &Options{CacheTTL: -1, Now: f.clock.Now}
	opts.EnsureDefaults()
	v, err := New(f.store, f.v.minter, opts) // EnsureDefaults twice keeps the meaning
	if err != nil {
		t.Fatal(err)
	}
	_, secret := f.create(t, KeySpec{Subject: "a"})
	if r := v.Verify(secret, ""); r.Reason != OK || r.CacheTTL != 0 {
		t.Fatalf("got %+v", r)
	}
}
