package keystore

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// Cached entries of records with the same scope list share its compiled
// grants; another list, or the same patterns in another order, gets its
// own; and every entry still matches its own patterns.
func TestEntriesShareGrantSets(t *testing.T) {
	s := openMem(t, nil)
	same := []string{"tool:data:*", "mailbox:agent-7:read"}
	lists := [][]string{same, slices.Clone(same), {"mailbox:agent-7:read", "tool:data:*"}, {"tool:code:*"}}
	entries := make([]*Entry, len(lists))
	for i, scopes := range lists {
		r := testRecord(id(i+1), "tok-"+id(i+1))
		r.Scopes = scopes
		mustCreate(t, s, r)
		entries[i] = mustLookup(t, s, Sum("tok-"+id(i+1)))
		if entries[i] == nil {
			t.Fatalf("record %d: Lookup returned nil", i+1)
		}
		p := entries[i].Principal()
		if !slices.Equal(p.Scopes, scopes) {
			t.Errorf("record %d: Scopes = %q, want %q", i+1, p.Scopes, scopes)
		}
		for _, sc := range scopes {
			if _, ok := p.Allows(sc); !ok {
				t.Errorf("record %d: Allows(%q) = false", i+1, sc)
			}
		}
	}
	p := func(i int) any { return entries[i].Principal().Grants }
	if p(0) != p(1) {
		t.Error("two records with the same scope list got separate grants")
	}
	if p(0) == p(2) || p(0) == p(3) || p(2) == p(3) {
		t.Error("records with different scope lists share grants")
	}
	if _, ok := entries[3].Principal().Allows("tool:data:read"); ok {
		t.Error("tool:code:* grants tool:data:read")
	}
}

// A grant set no entry holds is collected and leaves the table; one still
// held stays and is handed out again.
func TestGrantSetsAreCollected(t *testing.T) {
	held, err := sharedGrants([]string{"held:scope:read"})
	if err != nil {
		t.Fatal(err)
	}
	before := grantSetCount()
	for i := range 100 {
		if _, err := sharedGrants([]string{"transient:" + id(i) + ":read"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := grantSetCount(); n < before+100 {
		t.Fatalf("%d slots after compiling 100 lists, want at least %d", n, before+100)
	}
	deadline := time.Now().Add(10 * time.Second)
	for grantSetCount() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := grantSetCount(); n > before {
		t.Errorf("%d slots left, want at most %d: unused grant sets were not collected", n, before)
	}
	again, err := sharedGrants([]string{"held:scope:read"})
	if err != nil {
		t.Fatal(err)
	}
	if again != held {
		t.Error("a grant set still held was compiled again")
	}
	runtime.KeepAlive(held)
}

// A list with an invalid pattern is refused and leaves nothing behind.
func TestGrantSetInvalidPattern(t *testing.T) {
	before := grantSetCount()
	if _, err := sharedGrants([]string{"ok:scope", "bad::scope"}); err == nil {
		t.Fatal("an invalid pattern compiled")
	}
	if n := grantSetCount(); n != before {
		t.Errorf("%d slots, want %d", n, before)
	}
}

// grantSetCount returns the number of slots in the grant-set table.
func grantSetCount() int {
	grantSets.Lock()
	defer grantSets.Unlock()
	return len(grantSets.m)
}
