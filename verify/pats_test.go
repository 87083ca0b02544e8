package verify

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify/credential"
)

func (f *fixture) createPAT(t *testing.T, spec PATSpec) (keystore.Record, string) {
	t.Helper()
	rec, secret, err := f.m.CreatePAT(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return rec, secret
}

// scopesOf returns the tuples of PAT id as stored.
func (f *fixture) scopesOf(t *testing.T, id string) ([]PATScope, []string) {
	t.Helper()
	rec, err := f.store.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := PATScopes(&rec)
	if err != nil {
		t.Fatal(err)
	}
	return sc, rec.Scopes
}

func TestCreatePAT(t *testing.T) {
	f := newFixture(t)
	scopes := []PATScope{
		{"d1", "clients", "create", "*"},
		{"d1", "channels", "publish", "ch-42"},
		{"d1", "messages", "publish", "ch-42"}, // the same pattern as the channel's
		{"d1", "dashboards", "view", "*"},
		{"d1", "clients", "create", "*"}, // a repeat
	}
	rec, secret := f.createPAT(t, PATSpec{Subject: "user-1", Name: "ci", Description: "pipeline", Scopes: scopes, Creator: "subject:user-1"})
	if id, ok := credential.PATID(secret); !ok || id != rec.ID {
		t.Fatalf("secret %q does not embed id %s", secret, rec.ID)
	}
	if rec.Kind != keystore.KindPAT || rec.Name != "ci" || rec.Creator != "subject:user-1" {
		t.Errorf("record = %+v", rec)
	}
	if got := rec.ExpiresAt.Sub(rec.CreatedAt); got != DefaultPATDuration {
		t.Errorf("validity = %v, want %v", got, DefaultPATDuration)
	}
	wantPatterns := []string{"domains/d1/clients:create", "domains/d1/channels/ch-42:publish", "domains/d1/dashboards/*:read"}
	if !slices.Equal(rec.Scopes, wantPatterns) {
		t.Errorf("patterns = %q, want %q", rec.Scopes, wantPatterns)
	}
	got, _ := f.scopesOf(t, rec.ID)
	if want := scopes[:4]; !reflect.DeepEqual(got, want) {
		t.Errorf("tuples = %v, want %v (as given, in order, without the repeat)", got, want)
	}

	for _, tc := range []struct{ scope, want string }{
		{"domains/d1/clients:create", "ok"},
		{"domains/d1/channels/ch-42:publish", "ok"},
		{"domains/d1/dashboards/db-9:read", "ok"},
		{"domains/d1/channels/ch-43:publish", "forbidden"},
		{"domains/d2/clients:create", "forbidden"},
	} {
		if r := f.v.Verify(secret, tc.scope); r.Reason.String() != tc.want {
			t.Errorf("%s: %v, want %s", tc.scope, r.Reason, tc.want)
		}
	}
}

func TestCreatePATInvalid(t *testing.T) {
	f := newFixture(t)
	f.m.SetPATMaxDuration(48 * time.Hour)
	for _, tc := range []struct {
		name string
		spec PATSpec
		want []string
	}{
		{"no name", PATSpec{Subject: "u"}, []string{"name is required"}},
		{"no subject", PATSpec{Name: "n"}, []string{"subject is required"}},
		{"too long", PATSpec{Subject: "u", Name: "n", Duration: 49 * time.Hour}, []string{"longer than the maximum of 48h0m0s"}},
		{"default longer than the maximum", PATSpec{Subject: "u", Name: "n"}, []string{"duration 720h0m0s is longer"}},
		{"negative", PATSpec{Subject: "u", Name: "n", Duration: -time.Hour}, []string{"duration must be positive"}},
		{"bad tuples", PATSpec{Subject: "u", Name: "n", Duration: time.Hour, Scopes: []PATScope{
			{"d1", "clients", "read", "*"}, {"d1", "things", "read", "*"}, {"d1", "clients", "publish", "*"}, {"", "clients", "read", ""},
		}}, []string{"scopes[1]: PAT scope", "unknown entity type", "scopes[2]: PAT scope", "operation not valid for clients", "scopes[3]: optional_domain_id, entity_id required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.m.CreatePAT(context.Background(), tc.spec)
			var ie *InvalidSpecError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an InvalidSpecError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if l, err := f.m.ListPATs(""); err != nil || len(l) != 0 {
		t.Errorf("PATs after refused creations: %d, %v", len(l), err)
	}
}

func TestPATOwnership(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mine, _ := f.createPAT(t, PATSpec{Subject: "alice", Name: "a"})
	theirs, _ := f.createPAT(t, PATSpec{Subject: "bob", Name: "b"})
	key, _ := f.create(t, KeySpec{Subject: "alice"}) // not a PAT

	if l, _ := f.m.ListPATs("alice"); len(l) != 1 || l[0].ID != mine.ID {
		t.Errorf("ListPATs(alice) = %v", l)
	}
	if l, _ := f.m.ListPATs(""); len(l) != 2 {
		t.Errorf("ListPATs() lists %d, want the 2 PATs and not the API key", len(l))
	}
	if _, err := f.m.GetPAT("alice", mine.ID); err != nil {
		t.Error(err)
	}
	if _, err := f.m.GetPAT("", theirs.ID); err != nil {
		t.Error(err)
	}
	sc := []PATScope{{"d1", "clients", "read", "*"}}
	calls := map[string]func(id string) error{
		"get":    func(id string) error { _, err := f.m.GetPAT("alice", id); return err },
		"add":    func(id string) error { _, err := f.m.AddPATScopes(ctx, "alice", id, sc); return err },
		"remove": func(id string) error { _, err := f.m.RemovePATScopes(ctx, "alice", id, sc); return err },
		"revoke": func(id string) error { _, err := f.m.RevokePAT(ctx, "alice", id); return err },
		"reset":  func(id string) error { _, _, err := f.m.ResetPAT(ctx, "alice", id, 0); return err },
	}
	for name, call := range calls {
		for _, id := range []string{theirs.ID, key.ID, "no-such-id"} {
			if err := call(id); !errors.Is(err, keystore.ErrNotFound) {
				t.Errorf("%s %s as alice: %v, want ErrNotFound", name, id, err)
			}
		}
	}
	for _, id := range []string{theirs.ID, key.ID} {
		r, err := f.store.Get(id)
		if err != nil || r.Version != 1 {
			t.Errorf("record %s changed: version %d, %v", id, r.Version, err)
		}
	}
}

func TestPATScopeChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rec, secret := f.createPAT(t, PATSpec{Subject: "u", Name: "n", Scopes: []PATScope{{"d1", "clients", "create", "*"}}})
	const publish = "domains/d1/channels/ch-42:publish"
	// Cache the denial, then add: the next verification sees the change.
	if r := f.v.Verify(secret, publish); r.Reason != Forbidden {
		t.Fatalf("before add: %v", r.Reason)
	}
	added := []PATScope{{"d1", "messages", "publish", "ch-42"}, {"d1", "channels", "publish", "ch-42"}, {"d1", "dashboards", "view", "db-1"}}
	got, err := f.m.AddPATScopes(ctx, "u", rec.ID, added)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.v.Verify(secret, publish); r.Reason != OK {
		t.Fatalf("after add: %v", r.Reason)
	}
	if want := []string{"domains/d1/clients:create", publish, "domains/d1/dashboards/db-1:read"}; !slices.Equal(got.Scopes, want) {
		t.Errorf("patterns after add = %q, want %q", got.Scopes, want)
	}
	// Adding again changes no tuple.
	if _, err := f.m.AddPATScopes(ctx, "u", rec.ID, added[:1]); err != nil {
		t.Fatal(err)
	}
	tuples, _ := f.scopesOf(t, rec.ID)
	if want := append([]PATScope{{"d1", "clients", "create", "*"}}, added...); !reflect.DeepEqual(tuples, want) {
		t.Errorf("tuples = %v, want %v", tuples, want)
	}

	// An invalid tuple among valid ones: 400-class error, nothing changes.
	before, _ := f.store.Get(rec.ID)
	_, err = f.m.AddPATScopes(ctx, "u", rec.ID, []PATScope{{"d1", "groups", "read", "*"}, {"d1", "groups", "fly", "*"}})
	var ie *InvalidSpecError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "scopes[1]") {
		t.Fatalf("invalid add: %v", err)
	}
	if after, _ := f.store.Get(rec.ID); after.Version != before.Version {
		t.Error("an invalid add wrote the record")
	}
	for _, empty := range [][]PATScope{nil, {}} {
		if _, err := f.m.AddPATScopes(ctx, "u", rec.ID, empty); !errors.As(err, &ie) {
			t.Errorf("add of no scope: %v", err)
		}
	}

	// Removing the channel's publish removes the grant, and the messages
	// tuple that gave the same pattern; a cached allow ends at once.
	if r := f.v.Verify(secret, publish); r.Reason != OK {
		t.Fatal(r.Reason)
	}
	got, err = f.m.RemovePATScopes(ctx, "u", rec.ID, []PATScope{{"d1", "channels", "publish", "ch-42"}, {"d9", "clients", "read", "*"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.v.Verify(secret, publish); r.Reason != Forbidden {
		t.Errorf("after remove: %v, want forbidden", r.Reason)
	}
	tuples, patterns := f.scopesOf(t, rec.ID)
	if want := []PATScope{{"d1", "clients", "create", "*"}, {"d1", "dashboards", "view", "db-1"}}; !reflect.DeepEqual(tuples, want) {
		t.Errorf("tuples after remove = %v, want %v", tuples, want)
	}
	if want := []string{"domains/d1/clients:create", "domains/d1/dashboards/db-1:read"}; !slices.Equal(patterns, want) || !slices.Equal(got.Scopes, want) {
		t.Errorf("patterns after remove = %q, want %q", patterns, want)
	}

	// A revoked PAT's scopes are not changed.
	if _, err := f.m.RevokePAT(ctx, "u", rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.AddPATScopes(ctx, "u", rec.ID, added); !errors.Is(err, ErrRevoked) {
		t.Errorf("add to a revoked PAT: %v", err)
	}
	if r := f.v.Verify(secret, ""); r.Reason != Revoked {
		t.Errorf("revoked PAT verifies %v", r.Reason)
	}
}

// TestPATScopesChunked fills a PAT with the most tuples it holds, long
// enough to need many metadata entries, and reads them back exactly.
func TestPATScopesChunked(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	long := strings.Repeat("e", 150)
	var scopes []PATScope
	for i := range MaxPATScopes {
		scopes = append(scopes, PATScope{"dom-" + fmt.Sprint(i%3), "channels", "subscribe", fmt.Sprintf("%s-%03d", long, i)})
	}
	rec, _ := f.createPAT(t, PATSpec{Subject: "u", Name: "n", Scopes: scopes[:100]})
	if _, err := f.m.AddPATScopes(ctx, "u", rec.ID, scopes[100:]); err != nil {
		t.Fatal(err)
	}
	got, patterns := f.scopesOf(t, rec.ID)
	if !reflect.DeepEqual(got, scopes) || len(patterns) != MaxPATScopes {
		t.Fatalf("read back %d tuples and %d patterns, want %d exactly", len(got), len(patterns), MaxPATScopes)
	}
	r, _ := f.store.Get(rec.ID)
	if len(r.Metadata) < 2 {
		t.Errorf("%d metadata entries: the test does not exercise chunking", len(r.Metadata))
	}
	for k, v := range r.Metadata {
		if len(v) > keystore.MaxMetadataValLen {
			t.Errorf("entry %s is %d bytes", k, len(v))
		}
	}
	// One more is refused, and changes nothing.
	_, err := f.m.AddPATScopes(ctx, "u", rec.ID, []PATScope{{"d1", "clients", "read", "*"}})
	var ie *InvalidSpecError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "at most 256") {
		t.Errorf("257th scope: %v", err)
	}
	if got2, _ := f.scopesOf(t, rec.ID); !reflect.DeepEqual(got2, scopes) {
		t.Error("the refused add changed the tuples")
	}
}

func TestResetPAT(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rec, old := f.createPAT(t, PATSpec{Subject: "u", Name: "n", Duration: time.Hour, Scopes: []PATScope{{"d1", "clients", "read", "*"}}})
	if r := f.v.Verify(old, "domains/d1/clients/c1:read"); r.Reason != OK {
		t.Fatal(r.Reason)
	}
	f.clock.Advance(2 * time.Hour) // expired
	if r := f.v.Verify(old, ""); r.Reason != Expired {
		t.Fatalf("old secret after its expiry: %v", r.Reason)
	}
	got, secret, err := f.m.ResetPAT(ctx, "u", rec.ID, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := credential.PATID(secret); !ok || id != rec.ID || secret == old {
		t.Fatalf("new secret %q for id %s", secret, rec.ID)
	}
	if want := f.clock.Now().Add(3 * time.Hour); !got.ExpiresAt.Equal(want) {
		t.Errorf("expires %v, want %v", got.ExpiresAt, want)
	}
	if r := f.v.Verify(secret, "domains/d1/clients/c1:read"); r.Reason != OK {
		t.Errorf("new secret: %v", r.Reason)
	}
	if r := f.v.Verify(old, ""); r.Reason != Unknown {
		t.Errorf("old secret after reset: %v, want unknown", r.Reason)
	}
	// Reset again, with the new secret cached: it stops at once.
	_, third, err := f.m.ResetPAT(ctx, "u", rec.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.v.Verify(secret, ""); r.Reason != Unknown {
		t.Errorf("second secret after reset: %v", r.Reason)
	}
	if r := f.v.Verify(third, ""); r.Reason != OK {
		t.Errorf("third secret: %v", r.Reason)
	}
	if _, _, err := f.m.ResetPAT(ctx, "u", rec.ID, DefaultPATMaxDuration+time.Second); err == nil {
		t.Error("reset beyond the maximum accepted")
	}
	if _, err := f.m.RevokePAT(ctx, "u", rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.m.ResetPAT(ctx, "u", rec.ID, 0); !errors.Is(err, ErrRevoked) {
		t.Errorf("reset of a revoked PAT: %v", err)
	}
	// Revoking twice succeeds and keeps the first time.
	a, _ := f.store.Get(rec.ID)
	f.clock.Advance(time.Minute)
	b, err := f.m.RevokePAT(ctx, "", rec.ID)
	if err != nil || !b.RevokedAt.Equal(a.RevokedAt) {
		t.Errorf("second revoke: %v, revoked at %v then %v", err, a.RevokedAt, b.RevokedAt)
	}
}

func TestPATScopesUnreadable(t *testing.T) {
	f := newFixture(t)
	// Metadata named like the tuples, written through the keys API.
	rec, _ := f.create(t, KeySpec{Subject: "u", Kind: keystore.KindPAT, Scopes: []string{"tool:x"}, Metadata: map[string]string{"pat.scopes.0": "not a tuple"}})
	if _, err := PATScopes(&rec); !errors.Is(err, ErrPATScopesUnreadable) {
		t.Errorf("PATScopes: %v", err)
	}
	if _, err := f.m.AddPATScopes(context.Background(), "u", rec.ID, []PATScope{{"d1", "clients", "read", "*"}}); !errors.Is(err, ErrPATScopesUnreadable) {
		t.Errorf("add: %v", err)
	}
	// A PAT created with patterns only has no tuples; adding keeps its pattern.
	plain, _ := f.create(t, KeySpec{Subject: "u", Kind: keystore.KindPAT, Scopes: []string{"tool:x"}})
	got, err := f.m.AddPATScopes(context.Background(), "u", plain.ID, []PATScope{{"d1", "clients", "read", "*"}})
	if err != nil || !slices.Equal(got.Scopes, []string{"tool:x", "domains/d1/clients/*:read"}) {
		t.Errorf("add to a PAT of patterns: %q, %v", got.Scopes, err)
	}
}
