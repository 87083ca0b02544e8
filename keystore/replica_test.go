package keystore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// posAt returns the position of revision rev, committed at a fixed time
// that differs per revision.
func posAt(rev uint64) ReplicaPos {
	return ReplicaPos{Revision: rev, CommitTime: time.Unix(1_800_000_000, int64(rev)).UTC()}
}

// feedRecord returns record n, listing the digest of token, as a
// replication feed delivers it: decoded from its encoding.
func feedRecord(t testing.TB, n int, token string) *Record {
	t.Helper()
	r := testRecord(id(n), token)
	r.Version = 1
	return canonical(t, r)
}

// canonical returns r decoded from its encoding.
func canonical(t testing.TB, r Record) *Record {
	t.Helper()
	if err := r.Validate(); err != nil {
		t.Fatalf("invalid test record: %v", err)
	}
	got, err := DecodeRecord(r.AppendEncode(nil))
	if err != nil {
		t.Fatalf("DecodeRecord: %v", err)
	}
	return &got
}

// changed returns a copy of r with fn applied and its version advanced.
func changed(t testing.TB, r *Record, fn func(*Record)) *Record {
	t.Helper()
	c := r.clone()
	fn(&c)
	c.Version++
	return canonical(t, c)
}

func mustApplyReplicated(t testing.TB, s *Store, rev uint64, cs *ChangeSet) []AuditEntry {
	t.Helper()
	audit, err := s.ApplyReplicated(posAt(rev), cs)
	if err != nil {
		t.Fatalf("ApplyReplicated(revision %d): %v", rev, err)
	}
	if got := s.ReplicaPos(); got != posAt(rev) {
		t.Fatalf("ReplicaPos after revision %d = %+v, want %+v", rev, got, posAt(rev))
	}
	return audit
}

func mustFingerprint(t testing.TB, s *Store) Fingerprint {
	t.Helper()
	f, err := s.Fingerprint()
	if err != nil {
		t.Fatalf("Fingerprint: %v", err)
	}
	return f
}

// hasKey reports whether the store's Pebble database holds key.
func hasKey(t testing.TB, s *Store, key []byte) bool {
	t.Helper()
	_, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	closer.Close()
	return true
}

// lookupID returns the ID of the record digest token resolves to, or ""
// when it resolves to none.
func lookupID(t testing.TB, s *Store, token string) string {
	t.Helper()
	e := mustLookup(t, s, Sum(token))
	if e == nil {
		return ""
	}
	return e.Principal().KeyID
}

// pendingAt returns how many access requests are pending at now, and from
// addr, through a Txn that stages nothing.
func pendingAt(t testing.TB, s *Store, addr string, now time.Time) (total, fromAddr int) {
	t.Helper()
	if _, err := s.Apply(ctx, func(tx *Txn) error {
		total, fromAddr = tx.PendingRequests(addr, now)
		return nil
	}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return total, fromAddr
}

func tokenRev(jti string) *TokenRevocation {
	return &TokenRevocation{TokenID: jti, CreatedAt: t0, Creator: "admin"}
}

func subjectRev(subject string, notBefore time.Time) *SubjectRevocation {
	return &SubjectRevocation{Subject: subject, NotBefore: notBefore, CreatedAt: t0, Creator: "admin"}
}

func TestApplyReplicatedRecords(t *testing.T) {
	s := openDir(t, t.TempDir(), nil)
	if got := s.ReplicaPos(); got != (ReplicaPos{}) {
		t.Fatalf("ReplicaPos of a new store = %+v, want zero", got)
	}

	// A created record resolves by its digest.
	r1 := feedRecord(t, 1, "v1")
	mustApplyReplicated(t, s, 3, &ChangeSet{Records: []RecordChange{{New: r1}}})
	if got := lookupID(t, s, "v1"); got != r1.ID {
		t.Fatalf("Lookup of the created record's digest = %q, want %q", got, r1.ID)
	}
	if got, err := s.Get(r1.ID); err != nil || !reflect.DeepEqual(&got, r1) {
		t.Fatalf("Get = %+v, %v\nwant %+v", got, err, r1)
	}
	s.WaitCache()

	// A rotation with grace: both digests resolve.
	r2 := changed(t, r1, func(r *Record) {
		r.PrevDigest, r.PrevNotAfter, r.Digest = r.Digest, r.ExpiresAt.Add(-time.Hour), Sum("v2")
	})
	mustApplyReplicated(t, s, 4, &ChangeSet{Records: []RecordChange{{New: r2}}})
	for _, tok := range []string{"v1", "v2"} {
		if got := lookupID(t, s, tok); got != r1.ID {
			t.Errorf("after rotation with grace, Lookup(%s) = %q, want %q", tok, got, r1.ID)
		}
	}
	s.WaitCache()

	// Rotating again drops the digest that was previous.
	r3 := changed(t, r2, func(r *Record) { r.PrevDigest, r.Digest = r.Digest, Sum("v3") })
	mustApplyReplicated(t, s, 5, &ChangeSet{Records: []RecordChange{{New: r3}}})
	if got := lookupID(t, s, "v1"); got != "" {
		t.Errorf("digest dropped by the rotation resolves to %q", got)
	}
	if hasKey(t, s, digestKey(nil, ptr(Sum("v1")))) {
		t.Error("digest dropped by the rotation is still indexed")
	}
	for _, tok := range []string{"v2", "v3"} {
		if got := lookupID(t, s, tok); got != r1.ID {
			t.Errorf("after the second rotation, Lookup(%s) = %q, want %q", tok, got, r1.ID)
		}
	}

	// A second record, then the deletion of the first: its record, digests,
	// subject entry and last use go.
	other := feedRecord(t, 2, "other")
	mustApplyReplicated(t, s, 6, &ChangeSet{Records: []RecordChange{{New: other}}})
	// A last use as the flusher writes it.
	if err := s.db.Set(lastUsedKey(r1.ID), binary.BigEndian.AppendUint64(nil, uint64(t0.Unix())), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.LastUsed(r1.ID); !ok || err != nil {
		t.Fatalf("LastUsed = %v, %v", ok, err)
	}
	s.WaitCache()
	mustApplyReplicated(t, s, 7, &ChangeSet{Records: []RecordChange{{Old: &Record{ID: r1.ID}}}})
	if _, err := s.Get(r1.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of the deleted record = %v, want ErrNotFound", err)
	}
	for _, tok := range []string{"v2", "v3"} {
		if got := lookupID(t, s, tok); got != "" {
			t.Errorf("digest %s of the deleted record resolves to %q", tok, got)
		}
	}
	for _, k := range [][]byte{digestKey(nil, ptr(Sum("v2"))), digestKey(nil, ptr(Sum("v3"))),
		subjectKey(r1.Subject, r1.ID), recordKey(r1.ID), lastUsedKey(r1.ID)} {
		if hasKey(t, s, k) {
			t.Errorf("key %q of the deleted record is still stored", k)
		}
	}
	if list, err := s.List(r1.Subject); err != nil || len(list) != 1 || list[0].ID != other.ID {
		t.Errorf("List(subject) after the deletion = %v, %v; want only %s", list, err, other.ID)
	}
	if got := lookupID(t, s, "other"); got != other.ID {
		t.Errorf("the other record resolves to %q", got)
	}

	// Deleting a record the replica does not hold changes nothing but the
	// position.
	before := mustFingerprint(t, s)
	mustApplyReplicated(t, s, 8, &ChangeSet{Records: []RecordChange{{Old: &Record{ID: id(99)}}}})
	if after := mustFingerprint(t, s); after.Digest != before.Digest || after.Pos != posAt(8) {
		t.Errorf("deleting an unknown record: fingerprint %+v, was %+v", after, before)
	}
}

// TestApplyReplicatedMovesDigest checks that in one revision a digest can
// pass from a record that drops it to one that takes it: removals are
// staged before additions.
func TestApplyReplicatedMovesDigest(t *testing.T) {
	s := openDir(t, t.TempDir(), nil)
	a := feedRecord(t, 1, "shared")
	mustApplyReplicated(t, s, 1, &ChangeSet{Records: []RecordChange{{New: a}}})
	mustLookup(t, s, Sum("shared"))
	s.WaitCache()
	a2 := changed(t, a, func(r *Record) { r.Digest = Sum("a-new") })
	b := feedRecord(t, 2, "shared")
	mustApplyReplicated(t, s, 2, &ChangeSet{Records: []RecordChange{{New: b}, {New: a2}}})
	if got := lookupID(t, s, "shared"); got != b.ID {
		t.Errorf("the moved digest resolves to %q, want %q", got, b.ID)
	}
	if got := lookupID(t, s, "a-new"); got != a.ID {
		t.Errorf("the new digest resolves to %q, want %q", got, a.ID)
	}
}

func TestApplyReplicatedRevocationsRequestsMetaAudit(t *testing.T) {
	s := openDir(t, t.TempDir(), nil)
	gen := s.RevocationGen()
	issued := t0.Add(-time.Hour)
	mustApplyReplicated(t, s, 1, &ChangeSet{Revocations: []RevocationChange{{Token: tokenRev("jti-1")}}})
	if !s.TokenRevoked("jti-1", "bob", issued) {
		t.Error("the replicated token revocation is not in effect")
	}
	if g := s.RevocationGen(); g <= gen {
		t.Errorf("RevocationGen = %d after a token revocation, was %d", g, gen)
	}
	gen = s.RevocationGen()
	mustApplyReplicated(t, s, 2, &ChangeSet{Revocations: []RevocationChange{{Subject: subjectRev("bob", t0)}}})
	if !s.TokenRevoked("jti-2", "bob", issued) || s.TokenRevoked("jti-2", "bob", t0) {
		t.Error("the replicated subject revocation is not in effect as stated")
	}
	if g := s.RevocationGen(); g <= gen {
		t.Errorf("RevocationGen = %d after a subject revocation, was %d", g, gen)
	}
	tokens, subjects := mustList(t, s)
	if len(tokens) != 1 || tokens[0] != *tokenRev("jti-1") || len(subjects) != 1 || subjects[0] != *subjectRev("bob", t0) {
		t.Errorf("ListRevocations = %+v, %+v", tokens, subjects)
	}

	// An access request is stored and counted pending; a decision and a
	// deletion from the feed take effect.
	req := testRequest(1, "bot-1")
	mustApplyReplicated(t, s, 3, &ChangeSet{Requests: []RequestChange{{New: &req}}})
	if got, err := s.GetRequest(req.ID); err != nil || !reflect.DeepEqual(got, req) {
		t.Errorf("GetRequest = %+v, %v\nwant %+v", got, err, req)
	}
	if total, from := pendingAt(t, s, req.ClientAddr, reqT0); total != 1 || from != 1 {
		t.Errorf("pending = %d, %d from its address; want 1, 1", total, from)
	}
	decided := req
	decided.Status, decided.DecidedAt, decided.DecidedBy = RequestDenied, reqT0.Add(time.Minute), "admin"
	mustApplyReplicated(t, s, 4, &ChangeSet{Requests: []RequestChange{{New: &decided}}})
	if total, _ := pendingAt(t, s, "", reqT0); total != 0 {
		t.Errorf("pending after the denial = %d, want 0", total)
	}
	req2 := testRequest(2, "bot-2")
	mustApplyReplicated(t, s, 5, &ChangeSet{Requests: []RequestChange{{New: &req2}}})
	mustApplyReplicated(t, s, 6, &ChangeSet{Requests: []RequestChange{{Old: &AccessRequest{ID: req2.ID}}}})
	if _, err := s.GetRequest(req2.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRequest of the deleted request = %v, want ErrNotFound", err)
	}
	if total, _ := pendingAt(t, s, "", reqT0); total != 0 {
		t.Errorf("pending after the deletion = %d, want 0", total)
	}

	// Meta values and audit entries.
	audit := mustApplyReplicated(t, s, 7, &ChangeSet{
		Meta:  []MetaChange{{Name: "policy", New: []byte("doc v1")}},
		Audit: []AuditEntry{auditAt(1, "admin:a", "x"), auditAt(2, "admin:a", "y")},
	})
	if v, ok, err := s.GetMeta("policy"); err != nil || !ok || string(v) != "doc v1" {
		t.Errorf("GetMeta = %q, %v, %v", v, ok, err)
	}
	audit2 := mustApplyReplicated(t, s, 8, &ChangeSet{Audit: []AuditEntry{auditAt(3, "admin:b", "z")}})
	if len(audit) != 2 || audit[0].Seq != 1 || audit[1].Seq != 2 || len(audit2) != 1 || audit2[0].Seq != 3 {
		t.Errorf("audit entries as committed = %+v, %+v; want Seq 1, 2, then 3", audit, audit2)
	}
	listed, _, err := s.ListAudit(AuditQuery{OldestFirst: true})
	if err != nil || len(listed) != 3 || listed[2] != audit2[0] {
		t.Errorf("ListAudit = %+v, %v", listed, err)
	}
}

// TestApplyReplicatedIdempotent checks that a change at or before the
// position is skipped, also after a restart.
func TestApplyReplicatedIdempotent(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	r := feedRecord(t, 1, "a")
	req := testRequest(1, "bot")
	change := &ChangeSet{
		Records:     []RecordChange{{New: r}},
		Requests:    []RequestChange{{New: &req}},
		Revocations: []RevocationChange{{Token: tokenRev("jti-1")}},
		Audit:       []AuditEntry{auditAt(1, "admin:a", "a")},
	}
	mustApplyReplicated(t, s, 5, change)
	before := mustFingerprint(t, s)

	// A different change at the same or an earlier revision is skipped.
	gen := s.RevocationGen()
	for _, rev := range []uint64{5, 4, 1} {
		audit, err := s.ApplyReplicated(posAt(rev), &ChangeSet{
			Records:     []RecordChange{{New: feedRecord(t, 2, "b")}, {Old: &Record{ID: r.ID}}},
			Revocations: []RevocationChange{{Token: tokenRev("jti-2")}},
			Audit:       []AuditEntry{auditAt(2, "admin:a", "b")},
		})
		if err != nil || audit != nil {
			t.Errorf("ApplyReplicated(revision %d) at revision 5 = %v, %v; want nil, nil", rev, audit, err)
		}
	}
	if got := mustFingerprint(t, s); got != before {
		t.Errorf("skipped changes changed the fingerprint: %+v, was %+v", got, before)
	}
	if s.TokenRevoked("jti-2", "", time.Time{}) || s.RevocationGen() != gen {
		t.Error("a skipped revocation took effect")
	}
	if got := s.ReplicaPos(); got != posAt(5) {
		t.Errorf("ReplicaPos = %+v, want %+v", got, posAt(5))
	}

	// After a restart the position is kept and the same revision is
	// skipped again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir, nil)
	if got := s.ReplicaPos(); got != posAt(5) {
		t.Fatalf("ReplicaPos after reopening = %+v, want %+v", got, posAt(5))
	}
	if got := mustFingerprint(t, s); got != before {
		t.Errorf("fingerprint after reopening = %+v, was %+v", got, before)
	}
	if audit, err := s.ApplyReplicated(posAt(5), change); err != nil || audit != nil {
		t.Errorf("applying revision 5 again after reopening = %v, %v; want nil, nil", audit, err)
	}
	if got := mustFingerprint(t, s); got != before {
		t.Errorf("applying revision 5 again changed the fingerprint: %+v, was %+v", got, before)
	}
	if listed, _, err := s.ListAudit(AuditQuery{}); err != nil || len(listed) != 1 {
		t.Errorf("audit log after applying again = %d entries, %v; want 1", len(listed), err)
	}
	if total, _ := pendingAt(t, s, "", reqT0); total != 1 {
		t.Errorf("pending after reopening = %d, want 1", total)
	}
	// The next revision applies.
	mustApplyReplicated(t, s, 6, &ChangeSet{Records: []RecordChange{{New: feedRecord(t, 2, "b")}}})
	if got := lookupID(t, s, "b"); got != id(2) {
		t.Errorf("record of revision 6 resolves to %q", got)
	}
}

// TestApplyReplicatedInvalidatesCache checks that a revocation applied
// from the feed is seen by the very next Lookup of a cached digest.
func TestApplyReplicatedInvalidatesCache(t *testing.T) {
	s := openDir(t, t.TempDir(), nil)
	r := feedRecord(t, 1, "tok")
	mustApplyReplicated(t, s, 1, &ChangeSet{Records: []RecordChange{{New: r}}})
	for range 2 {
		if e := mustLookup(t, s, Sum("tok")); e == nil || e.Revoked() {
			t.Fatalf("Lookup before the revocation = %+v", e)
		}
		s.WaitCache()
	}
	revoked := changed(t, r, func(r *Record) { r.RevokedAt = t0 })
	mustApplyReplicated(t, s, 2, &ChangeSet{Records: []RecordChange{{New: revoked}}})
	if e := mustLookup(t, s, Sum("tok")); e == nil || !e.Revoked() {
		t.Errorf("Lookup right after the replicated revocation = %+v, want a revoked entry", e)
	}
}

func TestResync(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	a, b, c := feedRecord(t, 1, "a"), feedRecord(t, 2, "b"), feedRecord(t, 3, "c")
	req := testRequest(1, "bot")
	keptSubject := subjectRev("carol", t0)
	mustApplyReplicated(t, s, 1, &ChangeSet{Records: []RecordChange{{New: a}, {New: b}, {New: c}}})
	mustApplyReplicated(t, s, 2, &ChangeSet{
		Revocations: []RevocationChange{{Token: tokenRev("jti-x")}, {Subject: keptSubject}},
		Requests:    []RequestChange{{New: &req}},
	})
	for _, tok := range []string{"a", "b"} {
		mustLookup(t, s, Sum(tok))
	}
	s.WaitCache()
	gen := s.RevocationGen()

	// The snapshot: B rotated, D new, Y instead of X, carol's revocation
	// kept, no request.
	b2 := changed(t, b, func(r *Record) { r.Digest, r.Name = Sum("b2"), "renamed" })
	d := feedRecord(t, 4, "d")
	snapPos := posAt(40)
	snap := &ChangeSet{
		Records:     []RecordChange{{New: b2}, {New: d}},
		Revocations: []RevocationChange{{Token: tokenRev("jti-y")}, {Subject: keptSubject}},
		Meta:        []MetaChange{{Name: "policy", New: []byte("doc")}},
	}
	if err := s.Resync(snapPos, snap); err != nil {
		t.Fatalf("Resync: %v", err)
	}
	checkResynced := func(t *testing.T, s *Store) {
		t.Helper()
		if got := s.ReplicaPos(); got != snapPos {
			t.Errorf("ReplicaPos = %+v, want %+v", got, snapPos)
		}
		list, err := s.List("")
		if err != nil || len(list) != 2 || !reflect.DeepEqual(&list[0], b2) || !reflect.DeepEqual(&list[1], d) {
			t.Errorf("records = %+v, %v\nwant %+v and %+v", list, err, b2, d)
		}
		for tok, want := range map[string]string{"a": "", "b": "", "c": "", "b2": b.ID, "d": d.ID} {
			if got := lookupID(t, s, tok); got != want {
				t.Errorf("Lookup(%s) = %q, want %q", tok, got, want)
			}
		}
		if s.TokenRevoked("jti-x", "", time.Time{}) || !s.TokenRevoked("jti-y", "", time.Time{}) {
			t.Error("token revocations are not those of the snapshot")
		}
		if !s.TokenRevoked("", "carol", time.Time{}) {
			t.Error("the subject revocation the snapshot kept is gone")
		}
		if tokens, subjects := mustList(t, s); len(tokens) != 1 || tokens[0].TokenID != "jti-y" || len(subjects) != 1 {
			t.Errorf("ListRevocations = %+v, %+v", tokens, subjects)
		}
		if _, err := s.GetRequest(req.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetRequest of a request the snapshot lacks = %v", err)
		}
		if total, _ := pendingAt(t, s, "", reqT0); total != 0 {
			t.Errorf("pending = %d, want 0", total)
		}
		if v, ok, err := s.GetMeta("policy"); err != nil || !ok || string(v) != "doc" {
			t.Errorf("GetMeta = %q, %v, %v", v, ok, err)
		}
	}
	checkResynced(t, s)
	if s.RevocationGen() <= gen {
		t.Error("Resync did not advance the revocation generation")
	}
	f := mustFingerprint(t, s)
	if f.Records != 2 || f.Requests != 0 || f.TokenRevocations != 1 || f.SubjectRevocations != 1 {
		t.Errorf("fingerprint counts = %+v", f)
	}

	// A fresh replica fed the same state change by change agrees.
	fresh := openDir(t, t.TempDir(), nil)
	mustApplyReplicated(t, fresh, 7, &ChangeSet{Records: []RecordChange{{New: b2}, {New: d}}})
	mustApplyReplicated(t, fresh, snapPos.Revision, &ChangeSet{Revocations: []RevocationChange{{Token: tokenRev("jti-y")}, {Subject: keptSubject}}})
	if g := mustFingerprint(t, fresh); g != f {
		t.Errorf("fingerprint after Resync = %+v\nfingerprint of a replica fed the same state = %+v", f, g)
	}

	// The resynced state is durable.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir, nil)
	t.Run("after reopening", func(t *testing.T) { checkResynced(t, s) })
	if g := mustFingerprint(t, s); g != f {
		t.Errorf("fingerprint after reopening = %+v, was %+v", g, f)
	}
}

func TestFingerprint(t *testing.T) {
	fill := func(s *Store) {
		req := testRequest(1, "bot")
		mustApplyReplicated(t, s, 3, &ChangeSet{
			Records:     []RecordChange{{New: feedRecord(t, 1, "a")}, {New: feedRecord(t, 2, "b")}},
			Requests:    []RequestChange{{New: &req}},
			Revocations: []RevocationChange{{Token: tokenRev("jti-1")}, {Subject: subjectRev("bob", t0)}},
		})
	}
	s1, s2 := openMem(t, nil), openDir(t, t.TempDir(), nil)
	if f := mustFingerprint(t, s1); f.Records+f.Requests+f.TokenRevocations+f.SubjectRevocations != 0 || len(f.Digest) != 64 {
		t.Errorf("fingerprint of an empty store = %+v", f)
	}
	fill(s1)
	fill(s2)
	f1, f2 := mustFingerprint(t, s1), mustFingerprint(t, s2)
	want := Fingerprint{Pos: posAt(3), Digest: f1.Digest, Records: 2, Requests: 1, TokenRevocations: 1, SubjectRevocations: 1}
	if f1 != want || f2 != f1 {
		t.Errorf("fingerprints = %+v and %+v, want both %+v", f1, f2, want)
	}

	// Any change of a record, request or revocation changes the digest.
	rename := changed(t, feedRecord(t, 2, "b"), func(r *Record) { r.Name = "x" })
	approved := testRequest(1, "bot")
	approved.Status, approved.DecidedAt, approved.DecidedBy = RequestApproved, reqT0, "admin"
	seen := map[string]bool{f1.Digest: true}
	for i, cs := range []*ChangeSet{
		{Records: []RecordChange{{New: rename}}},
		{Requests: []RequestChange{{New: &approved}}},
		{Revocations: []RevocationChange{{Token: tokenRev("jti-2")}}},
		{Revocations: []RevocationChange{{Subject: subjectRev("bob", t0.Add(time.Hour))}}},
		{Records: []RecordChange{{Old: &Record{ID: id(1)}}}},
	} {
		mustApplyReplicated(t, s1, uint64(4+i), cs)
		f := mustFingerprint(t, s1)
		if seen[f.Digest] {
			t.Errorf("change %d left the fingerprint digest as it was: %+v", i, f)
		}
		seen[f.Digest] = true
	}
	f := mustFingerprint(t, s1)
	if f.Records != 1 || f.Requests != 1 || f.TokenRevocations != 2 || f.SubjectRevocations != 1 {
		t.Errorf("final counts = %+v", f)
	}
}

// feedReplicator is a Replicator standing for the shared log of one
// store: it applies each change set to that store through ApplyReplicated,
// at increasing revisions, as the store's feed would. It can be told to
// fail first.
type feedReplicator struct {
	mu        sync.Mutex
	s         *Store
	rev       uint64
	conflicts int                         // calls still to refuse with ErrConflict
	fail      error                       // returned by every call, when set
	before    func(*feedReplicator) error // run at the next call only, first; its error is returned
	calls     int                         // Replicate calls
	sets      []*ChangeSet                // the change sets received
}

func (f *feedReplicator) Replicate(_ context.Context, cs *ChangeSet) ([]AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.sets = append(f.sets, cs)
	if hook := f.before; hook != nil {
		f.before = nil
		if err := hook(f); err != nil {
			return nil, err
		}
	}
	if f.fail != nil {
		return nil, f.fail
	}
	if f.conflicts > 0 {
		f.conflicts--
		return nil, fmt.Errorf("%w: guard failed", ErrConflict)
	}
	return f.commit(cs)
}

// commit applies cs at the next revision. mu must be held.
func (f *feedReplicator) commit(cs *ChangeSet) ([]AuditEntry, error) {
	f.rev++
	return f.s.ApplyReplicated(ReplicaPos{Revision: f.rev, CommitTime: time.Now().UTC()}, cs)
}

func (f *feedReplicator) stats() (calls int, rev uint64, last *ChangeSet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sets) > 0 {
		last = f.sets[len(f.sets)-1]
	}
	return f.calls, f.rev, last
}

// openReplicated opens a store whose writes go through a feedReplicator.
func openReplicated(t testing.TB) (*Store, *feedReplicator) {
	t.Helper()
	f := &feedReplicator{}
	opts := quietOptions()
	opts.Replicator = f
	f.s = openDir(t, t.TempDir(), opts)
	return f.s, f
}

// TestReplicatedWrites checks that each kind of write goes through the
// Replicator and is in effect once it returns.
func TestReplicatedWrites(t *testing.T) {
	s, f := openReplicated(t)
	calls := 0
	step := func(what string) *ChangeSet {
		t.Helper()
		calls++
		n, rev, last := f.stats()
		if n != calls || rev != uint64(calls) || s.ReplicaPos().Revision != rev {
			t.Fatalf("%s: %d Replicate calls, log at revision %d, replica at %d; want %d each",
				what, n, rev, s.ReplicaPos().Revision, calls)
		}
		return last
	}

	r := mustCreate(t, s, testRecord(id(1), "a"))
	if cs := step("Create"); len(cs.Records) != 1 || cs.Records[0].Old != nil || cs.Records[0].New.ID != r.ID {
		t.Errorf("Create replicated %+v", cs)
	}
	if got := lookupID(t, s, "a"); got != r.ID {
		t.Errorf("created record resolves to %q", got)
	}

	up, err := s.Update(ctx, r.ID, func(r *Record) error { r.Digest = Sum("a2"); return nil })
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if cs := step("Update"); len(cs.Records) != 1 || !reflect.DeepEqual(cs.Records[0].Old, &r) || !reflect.DeepEqual(cs.Records[0].New, &up) {
		t.Errorf("Update replicated %+v", cs)
	}
	if lookupID(t, s, "a") != "" || lookupID(t, s, "a2") != r.ID {
		t.Error("the rotation of Update is not in effect")
	}

	exp := t0.Add(time.Hour)
	mustRevokeToken(t, s, TokenRevocation{TokenID: "jti-1", ExpiresAt: exp, CreatedAt: t0})
	if cs := step("RevokeToken"); len(cs.Revocations) != 1 || cs.Revocations[0].Token == nil || cs.Revocations[0].OldToken != nil {
		t.Errorf("RevokeToken replicated %+v", cs)
	}
	if !s.TokenRevoked("jti-1", "", time.Time{}) {
		t.Error("the replicated token revocation is not in effect")
	}
	// Extending it replaces the one in effect; repeating it writes nothing.
	got := mustRevokeToken(t, s, TokenRevocation{TokenID: "jti-1", ExpiresAt: exp.Add(time.Hour), CreatedAt: t0})
	if cs := step("RevokeToken again"); cs.Revocations[0].OldToken == nil || cs.Revocations[0].OldToken.ExpiresAt != exp ||
		!cs.Revocations[0].Token.ExpiresAt.Equal(got.ExpiresAt) {
		t.Errorf("extending a revocation replicated %+v", cs.Revocations[0])
	}
	mustRevokeToken(t, s, TokenRevocation{TokenID: "jti-1", ExpiresAt: exp, CreatedAt: t0})
	if n, _, _ := f.stats(); n != calls {
		t.Errorf("a revocation that changes nothing was replicated (%d calls, want %d)", n, calls)
	}

	audit, err := s.Apply(ctx, func(tx *Txn) error {
		if _, err := tx.Create(testRecord(id(2), "b")); err != nil {
			return err
		}
		tx.Audit(AuditEntry{Actor: "admin:x", Action: "key.create", Target: id(2), Outcome: "ok"})
		return nil
	})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if cs := step("Apply"); len(cs.Records) != 1 || len(cs.Audit) != 1 || cs.Audit[0].Time.IsZero() {
		t.Errorf("Apply replicated %+v (the audit entry's time must be set before it leaves)", cs)
	}
	if len(audit) != 1 || audit[0].Seq != 1 || audit[0].Time.IsZero() {
		t.Errorf("Apply returned audit entries %+v, want one with Seq 1 and a time", audit)
	}
	if lookupID(t, s, "b") != id(2) {
		t.Error("the record of Apply is not in effect")
	}

	v, err := s.Meta(ctx, "admin_key", func() ([]byte, error) { return []byte("v1"), nil })
	if err != nil || string(v) != "v1" {
		t.Fatalf("Meta = %q, %v", v, err)
	}
	if cs := step("Meta"); len(cs.Meta) != 1 || cs.Meta[0].Name != "admin_key" || cs.Meta[0].Old != nil {
		t.Errorf("Meta replicated %+v", cs)
	}
	v, err = s.Meta(ctx, "admin_key", func() ([]byte, error) { return nil, errors.New("must not run") })
	if err != nil || string(v) != "v1" {
		t.Errorf("Meta of an existing value = %q, %v", v, err)
	}
	if err := s.SetMeta(ctx, "admin_key", []byte("v2")); err != nil {
		t.Fatalf("SetMeta: %v", err)
	}
	if cs := step("SetMeta"); string(cs.Meta[0].Old) != "v1" || string(cs.Meta[0].New) != "v2" {
		t.Errorf("SetMeta replicated %+v", cs)
	}
}

// TestReplicatedWriteConflicts checks that a write meeting a concurrent
// change is built again, a bounded number of times, and that an
// unavailable log is reported as is.
func TestReplicatedWriteConflicts(t *testing.T) {
	s, f := openReplicated(t)
	// Replicate runs on this goroutine, inside each write: the fake's
	// fields may be set directly between writes.
	runs := 0
	create := func(n int) func(*Txn) error {
		return func(tx *Txn) error {
			runs++
			_, err := tx.Create(testRecord(id(n), fmt.Sprint("t", n)))
			return err
		}
	}

	f.conflicts = 2
	if _, err := s.Apply(ctx, create(1)); err != nil {
		t.Fatalf("Apply after 2 conflicts: %v", err)
	}
	if calls, _, _ := f.stats(); runs != 3 || calls != 3 {
		t.Errorf("after 2 conflicts: %d runs of the function, %d Replicate calls; want 3, 3", runs, calls)
	}
	if lookupID(t, s, "t1") != id(1) {
		t.Error("the write that met 2 conflicts is not in effect")
	}

	runs, f.calls, f.conflicts = 0, 0, 1000
	before := mustFingerprint(t, s)
	if _, err := s.Apply(ctx, create(2)); !errors.Is(err, ErrConflict) {
		t.Errorf("Apply that always conflicts = %v, want ErrConflict", err)
	}
	if calls, _, _ := f.stats(); runs != maxAttempts || calls != maxAttempts {
		t.Errorf("a write that always conflicts ran %d times, %d Replicate calls; want %d", runs, calls, maxAttempts)
	}
	if after := mustFingerprint(t, s); after != before {
		t.Error("a write that always conflicted changed the replica")
	}

	unavailable := fmt.Errorf("%w: no leader", ErrUnavailable)
	runs, f.calls, f.conflicts, f.fail = 0, 0, 0, unavailable
	if _, err := s.Apply(ctx, create(3)); err != unavailable {
		t.Errorf("Apply with the log unavailable = %v, want %v as is", err, unavailable)
	}
	if _, err := s.RevokeToken(ctx, TokenRevocation{TokenID: "jti-u"}); err != unavailable {
		t.Errorf("RevokeToken with the log unavailable = %v, want %v as is", err, unavailable)
	}
	if runs != 1 || f.calls != 2 {
		t.Errorf("with the log unavailable: %d runs, %d calls; want 1, 2 (no retry)", runs, f.calls)
	}
	if s.TokenRevoked("jti-u", "", time.Time{}) || lookupID(t, s, "t3") != "" {
		t.Error("a write the log did not take is in effect")
	}
	f.fail = nil

	// A cancelled context stops a write before it leaves.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	f.calls = 0
	if _, err := s.Apply(cctx, create(4)); !errors.Is(err, context.Canceled) || f.calls != 0 {
		t.Errorf("Apply with a cancelled context = %v after %d calls", err, f.calls)
	}
}

// TestReplicatedMetaConcurrentCreator checks that Meta returns the value
// another node stored first.
func TestReplicatedMetaConcurrentCreator(t *testing.T) {
	s, f := openReplicated(t)
	f.before = func(f *feedReplicator) error {
		if _, err := f.commit(&ChangeSet{Meta: []MetaChange{{Name: "admin_key", New: []byte("theirs")}}}); err != nil {
			return err
		}
		return fmt.Errorf("%w: admin_key exists", ErrConflict)
	}
	created := 0
	v, err := s.Meta(ctx, "admin_key", func() ([]byte, error) { created++; return []byte("ours"), nil })
	if err != nil || string(v) != "theirs" {
		t.Errorf("Meta = %q, %v; want the other node's value", v, err)
	}
	if calls, _, _ := f.stats(); created != 1 || calls != 1 {
		t.Errorf("create ran %d times, Replicate %d times; want 1, 1", created, calls)
	}
	if v, _, _ := s.GetMeta("admin_key"); string(v) != "theirs" {
		t.Errorf("stored value = %q", v)
	}
}

// TestReplicatedDigestInUse checks that Create, CreateBatch and Update
// refuse a digest of another record in replicated mode as they do
// locally, before anything reaches the log: the log's order is the
// truth for changes it delivers, so the check must come first.
func TestReplicatedDigestInUse(t *testing.T) {
	s, f := openReplicated(t)
	mustCreate(t, s, testRecord(id(1), "taken"))
	mustCreate(t, s, testRecord(id(2), "free"))
	calls, _, _ := f.stats()
	if _, err := s.Create(ctx, testRecord(id(3), "taken")); !errors.Is(err, ErrDigestInUse) {
		t.Errorf("Create with a digest in use = %v, want ErrDigestInUse", err)
	}
	if _, err := s.CreateBatch(ctx, []Record{testRecord(id(4), "taken")}); !errors.Is(err, ErrDigestInUse) {
		t.Errorf("CreateBatch with a digest in use = %v, want ErrDigestInUse", err)
	}
	if _, err := s.Update(ctx, id(2), func(r *Record) error { r.Digest = Sum("taken"); return nil }); !errors.Is(err, ErrDigestInUse) {
		t.Errorf("Update to a digest in use = %v, want ErrDigestInUse", err)
	}
	if n, _, _ := f.stats(); n != calls {
		t.Errorf("%d refused writes reached the log", n-calls)
	}
	if got := lookupID(t, s, "taken"); got != id(1) {
		t.Errorf("the digest in use resolves to %q, want %q", got, id(1))
	}
}
