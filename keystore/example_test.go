package keystore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/verifyd/verifyd/keystore"
)

func Example() {
	ctx := context.Background()
	s, err := keystore.Open("db", &keystore.Options{FS: vfs.NewMem()})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	const token = "dGhpcyBpcyBub3QgYSByZWFsIHRva2VuIGF0IGFsbCE" // shown once to its owner, never stored
	_, err = s.Create(ctx, keystore.Record{
		ID:      "QUJDREVGR0hJSktMTU5PUA",
		Kind:    keystore.KindAgent,
		Subject: "agent-7",
		Scopes:  []string{"mailbox:agent-7:*"},
		Digest:  keystore.Sum(token),
	})
	if err != nil {
		log.Fatal(err)
	}

	e, err := s.Lookup(keystore.Sum(token))
	if err != nil {
		log.Fatal(err)
	}
	_, ok := e.Principal().Allows("mailbox:agent-7:read")
	fmt.Println(e.Principal().Subject, e.Principal().Kind, ok, e.Revoked())

	if _, err := s.Update(ctx, "QUJDREVGR0hJSktMTU5PUA", func(r *keystore.Record) error {
		r.RevokedAt = time.Now()
		return nil
	}); err != nil {
		log.Fatal(err)
	}
	e, _ = s.Lookup(keystore.Sum(token))
	fmt.Println("revoked:", e.Revoked())
	// Output:
	// agent-7 agent true false
	// revoked: true
}

func ExampleDigest_String() {
	d := keystore.Sum("secret")
	fmt.Println(d) // safe to log: a prefix of the digest only
	// Output: 2bb80d53
}

func ExampleStore_RevokeSubject() {
	ctx := context.Background()
	s, err := keystore.Open("db", &keystore.Options{FS: vfs.NewMem()})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	notBefore := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if _, err := s.RevokeSubject(ctx, keystore.SubjectRevocation{Subject: "alice", NotBefore: notBefore}); err != nil {
		log.Fatal(err)
	}
	if _, err := s.RevokeToken(ctx, keystore.TokenRevocation{TokenID: "0b7c9f2e"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.TokenRevoked("", "alice", notBefore.Add(-time.Second))) // issued before
	fmt.Println(s.TokenRevoked("", "alice", notBefore))                   // issued at not-before
	fmt.Println(s.TokenRevoked("", "alice", time.Time{}))                 // no iat
	fmt.Println(s.TokenRevoked("0b7c9f2e", "bob", notBefore))             // revoked jti

	// An earlier not-before leaves the revocation in effect as it is.
	r, _ := s.RevokeSubject(ctx, keystore.SubjectRevocation{Subject: "alice", NotBefore: notBefore.Add(-time.Hour)})
	fmt.Println(r.NotBefore.Format(time.RFC3339))
	// Output:
	// true
	// false
	// true
	// true
	// 2026-05-01T12:00:00Z
}
