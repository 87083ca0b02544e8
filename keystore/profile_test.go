package keystore

import (
	"maps"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// Cached entries of records with the same kind, scopes, roles, project
// roles and rate limit share one profile; records that differ in any of
// them, or list the same patterns in another order, get their own; and
// every entry still reads and matches its own.
func TestEntriesShareProfiles(t *testing.T) {
	s := openMem(t, nil)
	scopes := []string{"tool:data:*", "mailbox:agent-7:read"}
	variants := []func(r *Record){
		func(r *Record) { r.Scopes = scopes },
		func(r *Record) {
			r.Scopes = slices.Clone(scopes)
			r.Metadata = map[string]string{"note": "other metadata"}
		},
		func(r *Record) { r.Scopes = []string{"mailbox:agent-7:read", "tool:data:*"} },
		func(r *Record) { r.Scopes = []string{"tool:code:*"} },
		func(r *Record) { r.Scopes = scopes; r.Kind = KindAPIKey },
		func(r *Record) { r.Scopes = scopes; r.Roles = []string{"consumer"} },
		func(r *Record) { r.Scopes = scopes; r.ProjectRoles = map[string][]string{"p1": {"viewer"}} },
		func(r *Record) { r.Scopes = scopes; r.Metadata = map[string]string{MetaRateLimit: "10/s"} },
	}
	entries := make([]*Entry, len(variants))
	for i, change := range variants {
		r := testRecord(id(i+1), "tok-"+id(i+1))
		r.Subject = "subject-" + id(i+1)
		change(&r)
		mustCreate(t, s, r)
		e := mustLookup(t, s, Sum("tok-"+id(i+1)))
		if e == nil {
			t.Fatalf("record %d: Lookup returned nil", i+1)
		}
		entries[i] = e
		p := e.Principal()
		if p.Subject != r.Subject || p.KeyID != r.ID || !p.ExpiresAt.Equal(r.ExpiresAt) {
			t.Errorf("record %d: Subject, KeyID, ExpiresAt = %q, %q, %v; want %q, %q, %v",
				i+1, p.Subject, p.KeyID, p.ExpiresAt, r.Subject, r.ID, r.ExpiresAt)
		}
		if p.Kind != r.Kind.String() || !slices.Equal(p.Scopes, r.Scopes) || !slices.Equal(p.Roles, r.Roles) ||
			!maps.EqualFunc(p.ProjectRoles, r.ProjectRoles, slices.Equal) || p.RateLimit != r.Metadata[MetaRateLimit] {
			t.Errorf("record %d: profile %+v does not match the record", i+1, *p.Profile)
		}
		for _, sc := range r.Scopes {
			if _, ok := p.Allows(sc); !ok {
				t.Errorf("record %d: Allows(%q) = false", i+1, sc)
			}
		}
	}
	prof := func(i int) any { return entries[i].Principal().Profile }
	if prof(0) != prof(1) {
		t.Error("two records with the same profile (and different subjects and metadata) got separate ones")
	}
	for i := 1; i < len(entries); i++ {
		for j := i + 1; j < len(entries); j++ {
			if prof(i) == prof(j) {
				t.Errorf("records %d and %d differ in their profile but share one", i+1, j+1)
			}
		}
	}
	if _, ok := entries[3].Principal().Allows("tool:data:read"); ok {
		t.Error("tool:code:* grants tool:data:read")
	}
}

// A profile no entry holds is collected and leaves the table; one still
// held stays and is handed out again.
func TestProfilesAreCollected(t *testing.T) {
	rec := func(scope string) *Record {
		r := testRecord("id", "tok")
		r.Scopes = []string{scope}
		return &r
	}
	held, err := sharedProfile(rec("held:scope:read"))
	if err != nil {
		t.Fatal(err)
	}
	before := profileCount()
	for i := range 100 {
		if _, err := sharedProfile(rec("transient:" + id(i) + ":read")); err != nil {
			t.Fatal(err)
		}
	}
	if n := profileCount(); n < before+100 {
		t.Fatalf("%d slots after compiling 100 profiles, want at least %d", n, before+100)
	}
	deadline := time.Now().Add(10 * time.Second)
	for profileCount() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := profileCount(); n > before {
		t.Errorf("%d slots left, want at most %d: unused profiles were not collected", n, before)
	}
	again, err := sharedProfile(rec("held:scope:read"))
	if err != nil {
		t.Fatal(err)
	}
	if again != held {
		t.Error("a profile still held was compiled again")
	}
	runtime.KeepAlive(held)
}

// A record with an invalid pattern gets no profile and leaves nothing
// behind.
func TestProfileInvalidPattern(t *testing.T) {
	before := profileCount()
	r := testRecord("id", "tok")
	r.Scopes = []string{"ok:scope", "bad::scope"}
	if _, err := sharedProfile(&r); err == nil {
		t.Fatal("an invalid pattern compiled")
	}
	if n := profileCount(); n != before {
		t.Errorf("%d slots, want %d", n, before)
	}
}

// A profile keeps nothing of the record it was made from: changing the
// record's slices and map afterwards changes nothing in it.
func TestProfileDetachedFromRecord(t *testing.T) {
	r := testRecord("id", "tok")
	r.Scopes = []string{"detached:scope:read"}
	p, err := sharedProfile(&r)
	if err != nil {
		t.Fatal(err)
	}
	r.Scopes[0], r.Roles[0], r.ProjectRoles["p1"][0] = "changed:scope", "changed", "changed"
	if p.Scopes[0] != "detached:scope:read" || p.Roles[0] != "publisher" || p.ProjectRoles["p1"][0] != "project_admin" {
		t.Errorf("the profile follows changes to its record: %+v", *p)
	}
}

// profileCount returns the number of slots in the profile table.
func profileCount() int {
	profiles.Lock()
	defer profiles.Unlock()
	return len(profiles.m)
}

// A cached key costs one Entry, and the usual entry (a current digest, not
// revoked) stays within Go's 96-byte size class: what a previous digest or
// a revoked credential needs besides is kept outside it.
func TestEntrySize(t *testing.T) {
	if size := unsafe.Sizeof(Entry{}); size > 96 {
		t.Errorf("Entry is %d bytes, past the 96-byte size class", size)
	}
	s := openMem(t, nil)
	r := testRecord(id(1), "new")
	r.PrevDigest, r.PrevNotAfter = Sum("old"), r.ExpiresAt.Add(-time.Hour)
	mustCreate(t, s, r)
	if e := mustLookup(t, s, Sum("new")); e == nil || e.unusual != nil || !e.NotAfter().Equal(r.ExpiresAt) || e.Revoked() {
		t.Errorf("current digest: entry %+v, want no unusual part", e)
	}
	if e := mustLookup(t, s, Sum("old")); e == nil || e.unusual == nil || !e.NotAfter().Equal(r.PrevNotAfter) || e.Revoked() {
		t.Errorf("previous digest: entry %+v, want NotAfter %v", e, r.PrevNotAfter)
	}
}
