package keystore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// openDir opens the store in dir on the real disk, closed at the end of the
// test unless the test closed it.
func openDir(t testing.TB, dir string, opts *Options) *Store {
	t.Helper()
	if opts == nil {
		opts = quietOptions()
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustRevokeToken(t testing.TB, s *Store, r TokenRevocation) TokenRevocation {
	t.Helper()
	got, err := s.RevokeToken(ctx, r)
	if err != nil {
		t.Fatalf("RevokeToken(%s): %v", r.TokenID, err)
	}
	return got
}

func mustRevokeSubject(t testing.TB, s *Store, r SubjectRevocation) SubjectRevocation {
	t.Helper()
	got, err := s.RevokeSubject(ctx, r)
	if err != nil {
		t.Fatalf("RevokeSubject(%s): %v", r.Subject, err)
	}
	return got
}

func mustList(t testing.TB, s *Store) ([]TokenRevocation, []SubjectRevocation) {
	t.Helper()
	tokens, subjects, err := s.ListRevocations()
	if err != nil {
		t.Fatalf("ListRevocations: %v", err)
	}
	return tokens, subjects
}

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestRevocationsPersist(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	future := time.Now().Add(time.Hour).UTC()
	tok := mustRevokeToken(t, s, TokenRevocation{TokenID: "jti-1", ExpiresAt: future, Creator: "admin"})
	forever := mustRevokeToken(t, s, TokenRevocation{TokenID: "jti-2", CreatedAt: t0})
	sub := mustRevokeSubject(t, s, SubjectRevocation{Subject: "alice", NotBefore: t0, Creator: "admin"})
	if tok.CreatedAt.IsZero() || tok.CreatedAt.Location() != time.UTC || forever.CreatedAt != t0 {
		t.Errorf("CreatedAt = %v, %v; want the current time and t0, in UTC", tok.CreatedAt, forever.CreatedAt)
	}
	wantTokens, wantSubjects := mustList(t, s)
	if len(wantTokens) != 2 || wantTokens[0] != tok || wantTokens[1] != forever || len(wantSubjects) != 1 || wantSubjects[0] != sub {
		t.Fatalf("ListRevocations = %+v, %+v", wantTokens, wantSubjects)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close, memory still answers and writes are refused.
	if !s.TokenRevoked("jti-1", "", time.Time{}) {
		t.Error("TokenRevoked after Close forgot a revocation")
	}
	if _, err := s.RevokeToken(ctx, TokenRevocation{TokenID: "x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("RevokeToken after Close = %v, want ErrClosed", err)
	}
	if _, err := s.RevokeSubject(ctx, SubjectRevocation{Subject: "x", NotBefore: t0}); !errors.Is(err, ErrClosed) {
		t.Errorf("RevokeSubject after Close = %v, want ErrClosed", err)
	}
	if _, _, err := s.ListRevocations(); !errors.Is(err, ErrClosed) {
		t.Errorf("ListRevocations after Close = %v, want ErrClosed", err)
	}

	opts := quietOptions()
	opts.ErrorIfNotExists = true
	s = openDir(t, dir, opts)
	tokens, subjects := mustList(t, s)
	if !reflect.DeepEqual(tokens, wantTokens) || !reflect.DeepEqual(subjects, wantSubjects) {
		t.Errorf("after reopen: %+v, %+v\nwant %+v, %+v", tokens, subjects, wantTokens, wantSubjects)
	}
	if !s.TokenRevoked("jti-1", "bob", t0) || !s.TokenRevoked("", "alice", t0.Add(-time.Second)) {
		t.Error("revocations not in effect after reopen")
	}
}

func TestRevokeSubjectIsMonotonic(t *testing.T) {
	s := openDir(t, t.TempDir(), nil)
	first := mustRevokeSubject(t, s, SubjectRevocation{Subject: "alice", NotBefore: t0, CreatedAt: t0, Creator: "a"})
	gen := s.RevocationGen()
	writes := counterValue(t, s.m.writeRevocation)

	// An earlier time changes nothing and writes nothing.
	got := mustRevokeSubject(t, s, SubjectRevocation{Subject: "alice", NotBefore: t0.Add(-time.Hour), Creator: "b"})
	if got != first {
		t.Errorf("earlier not_before returned %+v, want the stored %+v", got, first)
	}
	got = mustRevokeSubject(t, s, SubjectRevocation{Subject: "alice", NotBefore: t0, Creator: "c"})
	if got != first {
		t.Errorf("equal not_before returned %+v, want the stored %+v", got, first)
	}
	if counterValue(t, s.m.writeRevocation) != writes || s.RevocationGen() != gen {
		t.Error("a revocation that changed nothing was written")
	}
	if !s.TokenRevoked("", "alice", t0.Add(-time.Minute)) || s.TokenRevoked("", "alice", t0) {
		t.Error("not_before moved backwards")
	}

	// A later time replaces it, creator and creation time included.
	later := t0.Add(time.Hour)
	got = mustRevokeSubject(t, s, SubjectRevocation{Subject: "alice", NotBefore: later, CreatedAt: later, Creator: "d"})
	if want := (SubjectRevocation{Subject: "alice", NotBefore: later, CreatedAt: later, Creator: "d"}); got != want {
		t.Errorf("later not_before returned %+v, want %+v", got, want)
	}
	if !s.TokenRevoked("", "alice", t0) || s.RevocationGen() != gen+1 {
		t.Error("the later not_before is not in effect")
	}
	_, subjects := mustList(t, s)
	if len(subjects) != 1 || subjects[0] != got {
		t.Errorf("ListRevocations = %+v", subjects)
	}
}

func TestRevokeTokenIsIdempotent(t *testing.T) {
	s := openDir(t, t.TempDir(), nil)
	exp := t0.Add(time.Hour)
	first := mustRevokeToken(t, s, TokenRevocation{TokenID: "j", ExpiresAt: exp, CreatedAt: t0, Creator: "a"})
	tests := []struct {
		name      string
		expiresAt time.Time
		want      time.Time // ExpiresAt in effect afterwards
		write     bool
	}{
		{"same expiry", exp, exp, false},
		{"earlier expiry", exp.Add(-time.Minute), exp, false},
		{"later expiry", exp.Add(time.Minute), exp.Add(time.Minute), true},
		{"forever", time.Time{}, time.Time{}, true},
		{"expiry after forever", exp.Add(time.Hour), time.Time{}, false},
		{"forever again", time.Time{}, time.Time{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gen, writes := s.RevocationGen(), counterValue(t, s.m.writeRevocation)
			got := mustRevokeToken(t, s, TokenRevocation{TokenID: "j", ExpiresAt: tc.expiresAt, CreatedAt: t0.Add(time.Hour), Creator: "b"})
			want := first
			want.ExpiresAt = tc.want
			if got != want {
				t.Errorf("RevokeToken = %+v, want %+v (the first creation and creator kept)", got, want)
			}
			wrote := counterValue(t, s.m.writeRevocation) != writes
			if wrote != tc.write || (s.RevocationGen() != gen) != tc.write {
				t.Errorf("wrote %v (gen %d -> %d), want %v", wrote, gen, s.RevocationGen(), tc.write)
			}
			if tokens, _ := mustList(t, s); len(tokens) != 1 || tokens[0] != got {
				t.Errorf("ListRevocations = %+v", tokens)
			}
		})
	}
}

func TestTokenRevoked(t *testing.T) {
	s := openDir(t, t.TempDir(), nil)
	nb := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	mustRevokeToken(t, s, TokenRevocation{TokenID: "revoked-jti"})
	mustRevokeSubject(t, s, SubjectRevocation{Subject: "alice", NotBefore: nb})
	tests := []struct {
		name     string
		jti      string
		subject  string
		issuedAt time.Time
		want     bool
	}{
		{"jti revoked", "revoked-jti", "bob", nb, true},
		{"jti revoked, no subject", "revoked-jti", "", time.Time{}, true},
		{"other jti", "other-jti", "bob", nb, false},
		{"no jti", "", "bob", nb, false},
		{"jti is case-sensitive", "REVOKED-JTI", "bob", nb, false},
		{"iat before not_before", "", "alice", nb.Add(-time.Second), true},
		{"iat just before not_before", "", "alice", nb.Add(-time.Nanosecond), true},
		{"iat at not_before", "", "alice", nb, false},
		{"iat after not_before", "", "alice", nb.Add(time.Second), false},
		{"no iat, subject revoked", "", "alice", time.Time{}, true},
		{"no iat, subject not revoked", "", "bob", time.Time{}, false},
		{"subject is case-sensitive", "", "Alice", nb.Add(-time.Hour), false},
		{"subject prefix", "", "alic", nb.Add(-time.Hour), false},
		{"unrevoked jti, revoked subject", "fresh-jti", "alice", nb.Add(-time.Hour), true},
		{"unrevoked jti, fresh token of revoked subject", "fresh-jti", "alice", nb.Add(time.Hour), false},
		{"empty everything", "", "", time.Time{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.TokenRevoked(tc.jti, tc.subject, tc.issuedAt); got != tc.want {
				t.Errorf("TokenRevoked(%q, %q, %v) = %v, want %v", tc.jti, tc.subject, tc.issuedAt, got, tc.want)
			}
		})
	}
}

func TestRevocationGen(t *testing.T) {
	s := openMem(t, nil)
	g := s.RevocationGen()
	if g == 0 {
		t.Fatal("RevocationGen is zero")
	}
	steps := []struct {
		name string
		do   func()
		bump bool
	}{
		{"token", func() { mustRevokeToken(t, s, TokenRevocation{TokenID: "a", ExpiresAt: t0}) }, true},
		{"token again", func() { mustRevokeToken(t, s, TokenRevocation{TokenID: "a", ExpiresAt: t0}) }, false},
		{"token extended", func() { mustRevokeToken(t, s, TokenRevocation{TokenID: "a", ExpiresAt: t0.Add(time.Hour)}) }, true},
		{"subject", func() { mustRevokeSubject(t, s, SubjectRevocation{Subject: "s", NotBefore: t0}) }, true},
		{"subject earlier", func() { mustRevokeSubject(t, s, SubjectRevocation{Subject: "s", NotBefore: t0.Add(-1)}) }, false},
		{"invalid", func() { s.RevokeToken(ctx, TokenRevocation{}) }, false},
		{"key write", func() { mustCreate(t, s, testRecord(id(1), "k")) }, false},
	}
	for _, st := range steps {
		st.do()
		next := s.RevocationGen()
		if (next > g) != st.bump || next < g {
			t.Errorf("%s: generation %d -> %d, want a bump: %v", st.name, g, next, st.bump)
		}
		g = next
	}
}

func TestRevocationValidation(t *testing.T) {
	s := openMem(t, nil)
	long := strings.Repeat("x", MaxRevocationIDLen)
	// The longest accepted values are accepted.
	mustRevokeToken(t, s, TokenRevocation{TokenID: long})
	mustRevokeSubject(t, s, SubjectRevocation{Subject: long, NotBefore: t0})
	mustRevokeToken(t, s, TokenRevocation{TokenID: "Zoë/€"})

	tokens := []struct {
		name string
		r    TokenRevocation
		want string
	}{
		{"empty jti", TokenRevocation{}, "jti is empty"},
		{"long jti", TokenRevocation{TokenID: long + "x"}, "jti is 1025 bytes, more than 1024"},
		{"invalid UTF-8", TokenRevocation{TokenID: "a\xffb"}, "jti must be UTF-8 without control characters"},
		{"control", TokenRevocation{TokenID: "a\nb"}, "jti must be UTF-8"},
		{"NUL", TokenRevocation{TokenID: "a\x00b"}, "jti must be UTF-8"},
		{"C1 control", TokenRevocation{TokenID: "a\u0085b"}, "jti must be UTF-8"},
		{"expiry out of range", TokenRevocation{TokenID: "a", ExpiresAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "expires_at is outside"},
		{"creator", TokenRevocation{TokenID: "a", Creator: strings.Repeat("c", MaxTextLen+1)}, "creator"},
	}
	for _, tc := range tokens {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.RevokeToken(ctx, tc.r)
			var re *RevocationError
			if !errors.Is(err, ErrInvalidRevocation) || !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RevokeToken = %v, want a *RevocationError naming %q", err, tc.want)
			}
		})
	}
	subjects := []struct {
		name string
		r    SubjectRevocation
		want []string
	}{
		{"empty", SubjectRevocation{}, []string{"subject is empty", "not_before is required"}},
		{"long", SubjectRevocation{Subject: long + "x", NotBefore: t0}, []string{"subject is 1025 bytes"}},
		{"control", SubjectRevocation{Subject: "a\tb", NotBefore: t0}, []string{"subject must be UTF-8 without control characters"}},
		{"no not_before", SubjectRevocation{Subject: "a"}, []string{"not_before is required"}},
		{"not_before out of range", SubjectRevocation{Subject: "a", NotBefore: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"not_before is outside"}},
	}
	for _, tc := range subjects {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.RevokeSubject(ctx, tc.r)
			if !errors.Is(err, ErrInvalidRevocation) {
				t.Fatalf("RevokeSubject = %v, want ErrInvalidRevocation", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	tokensNow, subjectsNow := mustList(t, s)
	if len(tokensNow) != 2 || len(subjectsNow) != 1 {
		t.Errorf("invalid revocations were stored: %d tokens, %d subjects", len(tokensNow), len(subjectsNow))
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.RevokeToken(canceled, TokenRevocation{TokenID: "late"}); err == nil || s.TokenRevoked("late", "", time.Time{}) {
		t.Errorf("RevokeToken with a canceled context = %v", err)
	}
}

func TestRevocationEncoding(t *testing.T) {
	tok := TokenRevocation{TokenID: "jti-ü", ExpiresAt: time.Date(2026, 6, 1, 0, 0, 0, 5, time.UTC), CreatedAt: t0, Creator: "admin"}
	sub := SubjectRevocation{Subject: "alice@example.com", NotBefore: t0, CreatedAt: t0.Add(time.Second)}
	tb, sb := tok.AppendEncode(nil), sub.AppendEncode(nil)
	if got, err := DecodeTokenRevocation(tb); err != nil || got != tok {
		t.Errorf("DecodeTokenRevocation = %+v, %v; want %+v", got, err, tok)
	}
	if got, err := DecodeSubjectRevocation(sb); err != nil || got != sub {
		t.Errorf("DecodeSubjectRevocation = %+v, %v; want %+v", got, err, sub)
	}
	// Each decoder refuses the other's encoding.
	if _, err := DecodeTokenRevocation(sb); err == nil {
		t.Error("DecodeTokenRevocation accepted a subject revocation")
	}
	if _, err := DecodeSubjectRevocation(tb); err == nil {
		t.Error("DecodeSubjectRevocation accepted a token revocation")
	}
	// The result does not alias the input.
	buf := bytes.Clone(tb)
	got, _ := DecodeTokenRevocation(buf)
	clear(buf)
	if got != tok {
		t.Error("decoded revocation aliases its input")
	}

	zeroTime := binary.LittleEndian.AppendUint64([]byte{1, revocationToken, 1, 'a', 1}, uint64(time.Time{}.Unix()))
	zeroTime = append(zeroTime, 0, 0, 0, 0)
	bad := []struct {
		name, reason string
		b            []byte
	}{
		{"empty", "truncated", nil},
		{"version", "unknown format version 2", append([]byte{2}, tb[1:]...)},
		{"type", "revocation type 9", append([]byte{1, 9}, tb[2:]...)},
		{"truncated", "truncated", tb[:len(tb)-1]},
		{"trailing", "trailing bytes", append(bytes.Clone(tb), 0)},
		{"non-minimal length", "non-minimal uvarint", []byte{1, revocationToken, 0x81, 0x00}},
		{"invalid UTF-8", "invalid UTF-8", []byte{1, revocationToken, 1, 0xff, 0, 0, 0}},
		{"time tag", "invalid time tag", []byte{1, revocationToken, 1, 'a', 2}},
		{"zero time set", "zero time encoded as set", zeroTime},
		{"nanoseconds", "time out of range", append(append([]byte{1, revocationToken, 1, 'a', 1}, make([]byte, 8)...), 0xff, 0xff, 0xff, 0xff)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeTokenRevocation(tc.b)
			var de *DecodeError
			if !errors.As(err, &de) || !strings.Contains(de.Reason, tc.reason) || r != (TokenRevocation{}) {
				t.Fatalf("DecodeTokenRevocation = %+v, %v; want a *DecodeError %q and no value", r, err, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "keystore: decode token revocation: ") {
				t.Errorf("error = %q", err)
			}
		})
	}
}

func TestRevocationPurge(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	now := time.Now()
	old := now.Add(-RevocationRetention - time.Minute)
	recent := now.Add(-RevocationRetention + time.Hour)
	mustRevokeToken(t, s, TokenRevocation{TokenID: "old", ExpiresAt: old})
	mustRevokeToken(t, s, TokenRevocation{TokenID: "recent", ExpiresAt: recent})
	mustRevokeToken(t, s, TokenRevocation{TokenID: "forever"})
	mustRevokeSubject(t, s, SubjectRevocation{Subject: "alice", NotBefore: old})
	// Purging is not revoking: an expired revocation is in effect until purged.
	if !s.TokenRevoked("old", "", time.Time{}) {
		t.Fatal("an expired revocation was not in effect before its purge")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// At Open.
	s = openDir(t, dir, nil)
	ids := func() []string {
		tokens, _ := mustList(t, s)
		var out []string
		for _, r := range tokens {
			out = append(out, r.TokenID)
		}
		return out
	}
	if got := ids(); !reflect.DeepEqual(got, []string{"forever", "recent"}) {
		t.Errorf("after reopen: %v, want [forever recent]", got)
	}
	if s.TokenRevoked("old", "", time.Time{}) || !s.TokenRevoked("recent", "", time.Time{}) {
		t.Error("wrong revocations in effect after the purge at Open")
	}
	if _, subjects := mustList(t, s); len(subjects) != 1 {
		t.Error("a subject revocation was purged")
	}

	// In passes: each bounded, store and memory.
	for i := range purgeBatch + 10 {
		mustRevokeToken(t, s, TokenRevocation{TokenID: fmt.Sprint("bulk-", i), ExpiresAt: recent})
	}
	later := now.Add(2 * time.Hour)
	if n := s.purgeRevocations(later); n != purgeBatch {
		t.Errorf("first pass purged %d, want %d", n, purgeBatch)
	}
	if n := s.purgeRevocations(later); n != 11 {
		t.Errorf("second pass purged %d, want the remaining 11", n)
	}
	if n := s.purgeRevocations(later); n != 0 {
		t.Errorf("third pass purged %d", n)
	}
	if got := ids(); !reflect.DeepEqual(got, []string{"forever"}) {
		t.Errorf("after the passes: %v, want [forever]", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir, nil)
	var n int
	if err := s.scan(prefixTokenRevocation, func(_, _ []byte) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("%d token revocations stored after the purge (%v), want 1", n, err)
	}
}

func TestRevocationPurgeInBackground(t *testing.T) {
	opts := quietOptions()
	opts.LastUsedFlushInterval = time.Millisecond
	s := openMem(t, opts)
	mustRevokeToken(t, s, TokenRevocation{TokenID: "old", ExpiresAt: time.Now().Add(-RevocationRetention - time.Second)})
	mustRevokeToken(t, s, TokenRevocation{TokenID: "kept"})
	deadline := time.Now().Add(10 * time.Second)
	for s.TokenRevoked("old", "", time.Time{}) {
		if time.Now().After(deadline) {
			t.Fatal("the background purge did not forget an expired revocation in 10s")
		}
		time.Sleep(time.Millisecond)
	}
	if !s.TokenRevoked("kept", "", time.Time{}) {
		t.Error("the background purge forgot a revocation kept forever")
	}
}

func TestCorruptRevocationRefusesOpen(t *testing.T) {
	for _, tc := range []struct {
		name       string
		key, value []byte
	}{
		{"garbage", []byte("jx"), []byte("garbage")},
		{"key and value disagree", []byte("jx"), (&TokenRevocation{TokenID: "y"}).AppendEncode(nil)},
		{"subject value under a token key", []byte("jx"), (&SubjectRevocation{Subject: "x", NotBefore: t0}).AppendEncode(nil)},
		{"subject garbage", []byte("nalice"), []byte{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			opts := quietOptions()
			opts.FS = fs
			s, err := Open("db", opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.db.Set(tc.key, tc.value, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open("db", opts)
			if !errors.Is(err, ErrCorrupt) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open with a corrupt revocation = %v, want ErrCorrupt", err)
			}
			// The failed Open released the store: once the value is gone,
			// it opens again.
			db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: pebbleLogger{opts.Logger}})
			if err != nil {
				t.Fatalf("the failed Open left the store locked: %v", err)
			}
			if err := db.Delete(tc.key, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			db.Close()
			openMem(t, opts)
		})
	}
}

// TestCrashKeepsAcknowledgedRevocations crashes the file system after a
// series of acknowledged revocations, keeping a random part of the unsynced
// data, and checks that every one of them is in effect after the restart.
func TestCrashKeepsAcknowledgedRevocations(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			opts := quietOptions()
			opts.FS = fs
			s, err := Open("db", opts)
			if err != nil {
				t.Fatal(err)
			}
			const n = 20
			for i := range n {
				mustRevokeToken(t, s, TokenRevocation{TokenID: fmt.Sprint("jti-", i)})
				mustRevokeSubject(t, s, SubjectRevocation{Subject: fmt.Sprint("subject-", i%5), NotBefore: t0.Add(time.Duration(i) * time.Hour)})
			}
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, seed))})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			opts = quietOptions()
			opts.FS = crashed
			s = openMem(t, opts)
			for i := range n {
				if !s.TokenRevoked(fmt.Sprint("jti-", i), "", time.Time{}) {
					t.Errorf("jti-%d not revoked after the crash", i)
				}
			}
			for i := range 5 {
				// The last not_before acknowledged for subject-i is t0 + (15+i)h.
				last := t0.Add(time.Duration(15+i) * time.Hour)
				if !s.TokenRevoked("", fmt.Sprint("subject-", i), last.Add(-time.Second)) || s.TokenRevoked("", fmt.Sprint("subject-", i), last) {
					t.Errorf("subject-%d: the acknowledged not_before %v is not the one in effect", i, last)
				}
			}
		})
	}
}

// TestRevocationIsLinearizableWithCachedDecisions runs checks of the same
// tokens continuously while writers revoke them, the checks going through a
// decision cache shared by all readers and stamped with RevocationGen, as a
// verifier's cache would be. A writer marks a token done once its revoke
// call has returned; a reader loads that mark before its check starts, and
// a check that started after the mark must find the token revoked, whether
// from the cache or not. Readers fill the cache late on purpose, so that
// stale decisions land in it after the revocation. Bounded in rounds, reads
// and time.
func TestRevocationIsLinearizableWithCachedDecisions(t *testing.T) {
	const (
		rounds        = 30
		tokens        = 32
		readers       = 4
		writers       = 2
		warmReads     = 200
		readsAfter    = 500
		maxReadsRound = 50000
	)
	deadline := time.Now().Add(30 * time.Second)
	s := openDir(t, t.TempDir(), nil)

	type decision struct {
		gen     uint64
		revoked bool
	}
	type token struct {
		jti, subject string
		iat          time.Time
		bySubject    bool        // revoke the subject instead of the jti
		done         atomic.Bool // set once the revoke call has returned
	}
	var (
		cacheMu sync.Mutex
		cache   = map[string]decision{}
	)
	check := func(tk *token) bool {
		gen := s.RevocationGen()
		cacheMu.Lock()
		d, ok := cache[tk.jti]
		cacheMu.Unlock()
		if ok && d.gen == gen {
			return d.revoked
		}
		revoked := s.TokenRevoked(tk.jti, tk.subject, tk.iat)
		runtime.Gosched() // let writers overtake the fill
		cacheMu.Lock()
		cache[tk.jti] = decision{gen, revoked}
		cacheMu.Unlock()
		return revoked
	}

	var checked, violations atomic.Int64
	issued := time.Now().Add(-time.Hour)
	for round := 0; round < rounds && time.Now().Before(deadline); round++ {
		ts := make([]token, tokens)
		for i := range ts {
			ts[i].jti = fmt.Sprintf("r%d-jti-%d", round, i)
			ts[i].subject = fmt.Sprintf("r%d-subject-%d", round, i)
			ts[i].iat = issued
			ts[i].bySubject = i%2 == 1
		}
		var warm sync.WaitGroup
		warm.Add(readers)
		var allDone atomic.Bool
		var wg sync.WaitGroup
		for r := range readers {
			wg.Go(func() {
				after := 0
				warmed := false
				for i := 0; i < maxReadsRound && after < readsAfter; i++ {
					if i == warmReads {
						warm.Done()
						warmed = true
					}
					if allDone.Load() {
						after++
					}
					tk := &ts[(i*5+r)%tokens]
					done := tk.done.Load() // before the check starts
					revoked := check(tk)
					if !done {
						continue
					}
					checked.Add(1)
					if !revoked && violations.Add(1) <= 5 {
						t.Errorf("round %d: %s (by subject %v) not revoked by a check that started after the revoke returned", round, tk.jti, tk.bySubject)
					}
				}
				if !warmed {
					warm.Done()
				}
			})
		}
		warm.Wait()
		var ws sync.WaitGroup
		for w := range writers {
			ws.Go(func() {
				for i := w; i < tokens; i += writers {
					for range i % 4 {
						runtime.Gosched()
					}
					tk := &ts[i]
					var err error
					if tk.bySubject {
						_, err = s.RevokeSubject(ctx, SubjectRevocation{Subject: tk.subject, NotBefore: time.Now()})
					} else {
						_, err = s.RevokeToken(ctx, TokenRevocation{TokenID: tk.jti, ExpiresAt: time.Now().Add(time.Hour)})
					}
					if err != nil {
						t.Errorf("revoke: %v", err)
					}
					tk.done.Store(true)
				}
			})
		}
		ws.Wait()
		allDone.Store(true)
		wg.Wait()
		if t.Failed() {
			break
		}
	}
	if checked.Load() == 0 {
		t.Fatal("no check started after a revocation returned")
	}
	t.Logf("%d checks after their revocation returned, %d violations", checked.Load(), violations.Load())
}

func TestRevocationMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := quietOptions()
	opts.Registerer = reg
	s := openMem(t, opts)
	mustRevokeToken(t, s, TokenRevocation{TokenID: "a"})
	mustRevokeToken(t, s, TokenRevocation{TokenID: "b"})
	mustRevokeToken(t, s, TokenRevocation{TokenID: "b"})
	mustRevokeSubject(t, s, SubjectRevocation{Subject: "s", NotBefore: t0})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()+labels(m)] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for name, want := range map[string]float64{
		`verifyd_keystore_revocations{kind="token"}`:     2,
		`verifyd_keystore_revocations{kind="subject"}`:   1,
		`verifyd_keystore_writes_total{op="revocation"}`: 3,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, ",") + "}"
}
