package mqtt

import (
	"fmt"
	"sync"
	"testing"
)

func TestBindings(t *testing.T) {
	b := newBindings(3)
	if _, ok := b.get("alice", "c1"); ok {
		t.Fatal("an empty table has a binding")
	}
	b.put("alice", "c1", "t1")
	if tok, ok := b.get("alice", "c1"); !ok || tok != "t1" {
		t.Fatalf("get = %q, %v", tok, ok)
	}
	if tok, ok := b.only("alice"); !ok || tok != "t1" {
		t.Fatalf("only = %q, %v", tok, ok)
	}
	b.put("alice", "c1", "t1b") // the client logs in again
	if tok, _ := b.get("alice", "c1"); tok != "t1b" || b.len() != 1 {
		t.Fatalf("after a new login: %q, %d bindings", tok, b.len())
	}
	b.put("alice", "c2", "t2")
	if _, ok := b.only("alice"); ok {
		t.Fatal("only answers for a username with two clients")
	}
	if tok, _ := b.get("alice", "c2"); tok != "t2" {
		t.Fatalf("c2 = %q", tok)
	}
	if _, ok := b.get("bob", "c1"); ok {
		t.Fatal("bob has alice's binding")
	}
	b.put("bob", "b1", "tb")
	if tok, ok := b.only("bob"); !ok || tok != "tb" {
		t.Fatalf("only(bob) = %q, %v", tok, ok)
	}
	// c1 is the least recently used now: the next client evicts it.
	if b.put("carol", "k1", "tc") != true {
		t.Fatal("the first eviction is not reported")
	}
	if _, ok := b.get("alice", "c1"); ok {
		t.Fatal("the least recently used binding was kept")
	}
	for _, k := range [][2]string{{"alice", "c2"}, {"bob", "b1"}, {"carol", "k1"}} {
		if _, ok := b.get(k[0], k[1]); !ok {
			t.Errorf("%v was evicted", k)
		}
	}
	if b.len() != 3 {
		t.Fatalf("%d bindings, want 3", b.len())
	}
	if _, ok := b.only("bob"); ok {
		t.Fatal("only answers after an eviction")
	}
	if b.put("dave", "d1", "td") {
		t.Fatal("a second eviction is reported as the first")
	}
}

// TestBindingsConcurrent: the table stays bounded and consistent under
// concurrent use (run with -race).
func TestBindingsConcurrent(t *testing.T) {
	b := newBindings(50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				user, client := fmt.Sprintf("u%d", i%20), fmt.Sprintf("c%d-%d", g, i%40)
				b.put(user, client, user+client)
				if tok, ok := b.get(user, client); ok && tok != user+client {
					t.Errorf("get(%s, %s) = %q", user, client, tok)
				}
				b.only(user)
			}
		}()
	}
	wg.Wait()
	if n := b.len(); n != 50 {
		t.Fatalf("%d bindings, want 50", n)
	}
	n := 0
	for _, clients := range b.byUser {
		n += len(clients)
	}
	if n != 50 {
		t.Fatalf("the index holds %d bindings, the list 50", n)
	}
}
