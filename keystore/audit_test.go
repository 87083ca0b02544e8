package keystore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestAuditEntryEncoding(t *testing.T) {
	e := AuditEntry{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Seq: 42, Actor: "admin:0a1b2c3d", Action: "key.revoke", Target: id(1), Outcome: "ok", Detail: "subject=ü"}
	b := e.AppendEncode(nil)
	got, err := DecodeAuditEntry(b)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	for i := range len(b) {
		if _, err := DecodeAuditEntry(b[:i]); err == nil {
			t.Fatalf("truncation to %d bytes decoded", i)
		}
	}
	if _, err := DecodeAuditEntry(append(b, 0)); err == nil {
		t.Fatal("trailing byte decoded")
	}
	if _, err := DecodeAccessRequest(b); err == nil {
		t.Fatal("an audit entry decoded as an access request")
	}
	for name, bad := range map[string]AuditEntry{
		"no actor":      {Action: "a", Outcome: "ok"},
		"no action":     {Actor: "a", Outcome: "ok"},
		"no outcome":    {Actor: "a", Action: "a"},
		"control":       {Actor: "a", Action: "a", Outcome: "ok", Target: "x\ny"},
		"long detail":   {Actor: "a", Action: "a", Outcome: "ok", Detail: strings.Repeat("d", MaxAuditTextLen+1)},
		"before 1970":   {Actor: "a", Action: "a", Outcome: "ok", Time: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)},
		"far in future": {Actor: "a", Action: "a", Outcome: "ok", Time: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidAudit) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
}

func auditAt(sec int, actor, target string) AuditEntry {
	return AuditEntry{Time: time.Unix(int64(1_800_000_000+sec), 0), Actor: actor, Action: "key.revoke", Target: target, Outcome: "ok"}
}

// TestAuditInTheChangesBatch checks that a change and its audit entry are
// committed together: both, or (when the function fails, or the entry is
// invalid) neither.
func TestAuditInTheChangesBatch(t *testing.T) {
	s := openMem(t, nil)
	got, err := s.Apply(ctx, func(tx *Txn) error {
		if _, err := tx.Create(testRecord(id(1), "a")); err != nil {
			return err
		}
		tx.Audit(AuditEntry{Actor: "admin:x", Action: "key.create", Target: id(1), Outcome: "ok"})
		return nil
	})
	if err != nil || len(got) != 1 || got[0].Seq != 1 || got[0].Time.IsZero() || got[0].Time.Location() != time.UTC {
		t.Fatalf("Apply = %+v, %v", got, err)
	}
	if _, err := s.Get(id(1)); err != nil {
		t.Fatal(err)
	}

	failing := errors.New("changed my mind")
	if _, err := s.Apply(ctx, func(tx *Txn) error {
		tx.Create(testRecord(id(2), "b"))
		tx.Audit(AuditEntry{Actor: "admin:x", Action: "key.create", Target: id(2), Outcome: "ok"})
		return failing
	}); err != failing {
		t.Fatalf("Apply with a failing function = %v", err)
	}
	if _, err := s.Apply(ctx, func(tx *Txn) error {
		tx.Create(testRecord(id(3), "c"))
		tx.Audit(AuditEntry{Actor: "admin:x", Action: "key.create", Target: "bad\x00target", Outcome: "ok"})
		return nil
	}); !errors.Is(err, ErrInvalidAudit) {
		t.Fatalf("Apply with an invalid entry = %v", err)
	}
	for _, n := range []int{2, 3} {
		if _, err := s.Get(id(n)); !errors.Is(err, ErrNotFound) {
			t.Errorf("record %d of a failed Apply: %v", n, err)
		}
	}
	entries, next, err := s.ListAudit(AuditQuery{})
	if err != nil || next != nil || len(entries) != 1 || entries[0].Target != id(1) {
		t.Fatalf("log = %+v, %v, %v", entries, next, err)
	}
	// Sequence numbers are not reused after a failed batch.
	later, err := s.Audit(ctx, AuditEntry{Actor: "system", Action: "policy.reload", Outcome: "ok"})
	if err != nil || later[0].Seq != 2 {
		t.Fatalf("next entry = %+v, %v", later, err)
	}
}

func TestTxnRevocationsAndUpdates(t *testing.T) {
	s := openMem(t, nil)
	mustCreate(t, s, testRecord(id(1), "a"))
	gen := s.RevocationGen()
	if _, err := s.Apply(ctx, func(tx *Txn) error {
		if _, err := tx.RevokeToken(TokenRevocation{TokenID: "jti-1", Creator: "admin"}); err != nil {
			return err
		}
		if _, err := tx.Update(id(1), func(r *Record) error { r.RevokedAt = reqT0; return nil }); err != nil {
			return err
		}
		// A second update in the same transaction builds on the first.
		r, err := tx.Update(id(1), func(r *Record) error { r.Name = "renamed"; return nil })
		if err != nil || r.RevokedAt.IsZero() || r.Version != 3 {
			t.Errorf("second update = %+v, %v", r, err)
		}
		tx.Audit(AuditEntry{Actor: "admin:x", Action: "jwt.revoke_token", Target: "jti-1", Outcome: "ok"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !s.TokenRevoked("jti-1", "", time.Time{}) || s.RevocationGen() == gen {
		t.Error("the revocation of a Txn is not in effect")
	}
	if e := mustLookup(t, s, Sum("a")); e == nil || !e.Revoked() {
		t.Errorf("the update of a Txn is not visible: %+v", e)
	}
	// Digests cannot be shared inside a Txn either.
	if _, err := s.Apply(ctx, func(tx *Txn) error {
		if _, err := tx.Create(testRecord(id(2), "same")); err != nil {
			return err
		}
		_, err := tx.Create(testRecord(id(3), "same"))
		return err
	}); !errors.Is(err, ErrDigestInUse) {
		t.Errorf("two records with one digest = %v", err)
	}
}

func TestListAudit(t *testing.T) {
	s := openMem(t, nil)
	var all []AuditEntry
	for i := range 30 {
		actor := "admin:a"
		if i%3 == 0 {
			actor = "subject:alice"
		}
		got, err := s.Audit(ctx, auditAt(i, actor, fmt.Sprint("k", i%5)))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
	}
	list := func(q AuditQuery) ([]AuditEntry, *AuditPos) {
		t.Helper()
		es, next, err := s.ListAudit(q)
		if err != nil {
			t.Fatal(err)
		}
		return es, next
	}
	es, next := list(AuditQuery{})
	if len(es) != 30 || next != nil || es[0].Seq != 30 || es[29].Seq != 1 {
		t.Fatalf("newest first: %d entries, next %v, first %+v", len(es), next, es[0])
	}
	es, _ = list(AuditQuery{OldestFirst: true})
	if !reflect.DeepEqual(es, all) {
		t.Fatal("oldest first differs from the order of writing")
	}
	es, _ = list(AuditQuery{Actor: "subject:alice", Target: "k0"})
	for _, e := range es {
		if e.Actor != "subject:alice" || e.Target != "k0" {
			t.Errorf("filter let through %+v", e)
		}
	}
	if len(es) != 2 { // i = 0 and 15
		t.Errorf("actor and target filter: %d entries, want 2", len(es))
	}
	if es, _ = list(AuditQuery{Since: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}); len(es) != 30 {
		t.Errorf("the widest range: %d entries", len(es))
	}
	es, _ = list(AuditQuery{Since: all[10].Time, Until: all[20].Time, OldestFirst: true})
	if len(es) != 10 || es[0].Seq != all[10].Seq || es[9].Seq != all[19].Seq {
		t.Errorf("since/until: %+v", es)
	}

	// Pages, in both orders, cover everything exactly once.
	for _, oldest := range []bool{false, true} {
		var seen []uint64
		q := AuditQuery{Limit: 7, OldestFirst: oldest}
		for range 10 {
			page, next := list(q)
			for _, e := range page {
				seen = append(seen, e.Seq)
			}
			if next == nil {
				break
			}
			q.After = next
		}
		if len(seen) != 30 {
			t.Fatalf("oldest=%v: pages returned %d entries", oldest, len(seen))
		}
		for i := 1; i < len(seen); i++ {
			if (seen[i] > seen[i-1]) != oldest {
				t.Fatalf("oldest=%v: order broken at %d: %v", oldest, i, seen)
			}
		}
	}
}

func TestListAuditScanBound(t *testing.T) {
	s := openMem(t, nil)
	entries := make([]AuditEntry, MaxAuditScan+5)
	for i := range entries {
		entries[i] = auditAt(i, "admin:a", "k")
	}
	entries[0].Actor = "subject:rare" // the oldest
	if _, err := s.Audit(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	es, next, err := s.ListAudit(AuditQuery{Actor: "subject:rare"})
	if err != nil || len(es) != 0 || next == nil {
		t.Fatalf("first call: %d entries, next %v, %v; want none and a position", len(es), next, err)
	}
	es, next, err = s.ListAudit(AuditQuery{Actor: "subject:rare", After: next})
	if err != nil || len(es) != 1 || next != nil || es[0].Actor != "subject:rare" {
		t.Fatalf("continued call: %+v, next %v, %v", es, next, err)
	}
}

func TestAuditSeqSurvivesReopenAndPurge(t *testing.T) {
	dir := t.TempDir()
	opts := quietOptions()
	opts.AuditRetention = time.Hour
	s := openDir(t, dir, opts)
	now := time.Now()
	old := AuditEntry{Time: now.Add(-2 * time.Hour), Actor: "a", Action: "x", Outcome: "ok"}
	if _, err := s.Audit(ctx, old, old, old); err != nil {
		t.Fatal(err)
	}
	fresh, err := s.Audit(ctx, AuditEntry{Time: now, Actor: "a", Action: "y", Outcome: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.purgeAudit(now); n != 3 {
		t.Fatalf("purge removed %d, want 3", n)
	}
	es, _, _ := s.ListAudit(AuditQuery{})
	if len(es) != 1 || es[0].Seq != fresh[0].Seq {
		t.Fatalf("after purge: %+v", es)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir, opts)
	got, err := s.Audit(ctx, AuditEntry{Actor: "a", Action: "z", Outcome: "ok"})
	if err != nil || got[0].Seq != 5 {
		t.Fatalf("first entry after reopen = %+v, %v; want Seq 5", got, err)
	}
}

// TestCrashKeepsAcknowledgedAudit crashes the file system after
// acknowledged Applies and checks that each change is there with its entry.
func TestCrashKeepsAcknowledgedAudit(t *testing.T) {
	for seed := range uint64(3) {
		fs := vfs.NewCrashableMem()
		opts := quietOptions()
		opts.FS = fs
		s, err := Open("db", opts)
		if err != nil {
			t.Fatal(err)
		}
		const n = 10
		for i := range n {
			if _, err := s.Apply(ctx, func(tx *Txn) error {
				if _, err := tx.Create(testRecord(id(i), fmt.Sprint("t", i))); err != nil {
					return err
				}
				tx.Audit(AuditEntry{Actor: "admin:x", Action: "key.create", Target: id(i), Outcome: "ok"})
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, seed))})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		opts = quietOptions()
		opts.FS = crashed
		s = openMem(t, opts)
		es, _, err := s.ListAudit(AuditQuery{OldestFirst: true})
		if err != nil || len(es) != n {
			t.Fatalf("seed %d: %d entries after the crash, %v", seed, len(es), err)
		}
		for i, e := range es {
			if _, err := s.Get(e.Target); err != nil || e.Target != id(i) {
				t.Errorf("seed %d: entry %+v: %v", seed, e, err)
			}
		}
	}
}
