package keystore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var ctx = context.Background()

func quietOptions() *Options {
	return &Options{Logger: slog.New(slog.DiscardHandler), CacheEntries: 1 << 12, NegativeEntries: 1 << 10}
}

// openMem opens a store on a fresh in-memory file system, closed at the end
// of the test.
func openMem(t testing.TB, opts *Options) *Store {
	t.Helper()
	if opts == nil {
		opts = quietOptions()
	}
	if opts.FS == nil {
		opts.FS = vfs.NewMem()
	}
	s, err := Open("db", opts)
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

// id returns a 22-character ID derived from n.
func id(n int) string {
	return fmt.Sprintf("id%020d", n)
}

func mustCreate(t testing.TB, s *Store, r Record) Record {
	t.Helper()
	got, err := s.Create(ctx, r)
	if err != nil {
		t.Fatalf("Create(%s): %v", r.ID, err)
	}
	return got
}

func mustLookup(t testing.TB, s *Store, d Digest) *Entry {
	t.Helper()
	e, err := s.Lookup(d)
	if err != nil {
		t.Fatalf("Lookup(%v): %v", d, err)
	}
	return e
}

func TestOptions(t *testing.T) {
	var o Options
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults are invalid: %v", err)
	}
	if o.CacheEntries != 1<<20 || o.NegativeEntries != 1<<16 || o.NegativeTTL != 10*time.Second ||
		o.LastUsedFlushInterval != 10*time.Second || o.LastUsedGranularity != time.Minute {
		t.Errorf("unexpected defaults: %+v", o)
	}
	bad := Options{CacheEntries: -1, NegativeEntries: -1, NegativeTTL: -1, LastUsedFlushInterval: -1,
		LastUsedGranularity: time.Millisecond, LastUsedQueue: -1, BlockCacheBytes: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted invalid options")
	}
	for _, field := range []string{"CacheEntries", "NegativeEntries", "NegativeTTL", "LastUsedFlushInterval",
		"LastUsedGranularity", "LastUsedQueue", "BlockCacheBytes"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("Validate error does not mention %s: %v", field, err)
		}
	}
	if _, err := Open("db", &Options{FS: vfs.NewMem(), NegativeTTL: -1}); err == nil {
		t.Error("Open accepted invalid options")
	}
	if _, err := Open("missing", &Options{FS: vfs.NewMem(), ErrorIfNotExists: true, Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("Open with ErrorIfNotExists created a store")
	}
}

func TestCreateGetLookup(t *testing.T) {
	s := openMem(t, nil)
	in := testRecord(id(1), "token-1")
	in.CreatedAt = time.Time{}
	in.Version = 99
	before := time.Now()
	got := mustCreate(t, s, in)
	if got.Version != 1 {
		t.Errorf("Version = %d, want 1", got.Version)
	}
	if got.CreatedAt.Before(before.Truncate(time.Second)) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want the current time in UTC", got.CreatedAt)
	}
	stored, err := s.Get(in.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(stored, got) {
		t.Fatalf("Get = %+v\nCreate returned %+v", stored, got)
	}
	if _, err := s.Get(id(2)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}

	e := mustLookup(t, s, Sum("token-1"))
	if e == nil {
		t.Fatal("Lookup of a created digest returned nil")
	}
	p := e.Principal()
	if p.Subject != in.Subject || p.Kind != "pat" || p.KeyID != in.ID || !p.ExpiresAt.Equal(in.ExpiresAt) ||
		!reflect.DeepEqual(p.Roles, in.Roles) || !reflect.DeepEqual(p.ProjectRoles, in.ProjectRoles) ||
		!reflect.DeepEqual(p.Scopes, in.Scopes) {
		t.Errorf("Principal = %+v, want the record's fields", p)
	}
	if g, ok := p.Allows("tool:data:read"); !ok || g != "tool:data:*" {
		t.Errorf("Allows(tool:data:read) = %q, %v", g, ok)
	}
	if _, ok := p.Allows("tool:database:read"); ok {
		t.Error("Allows(tool:database:read) granted")
	}
	if !e.NotAfter().Equal(in.ExpiresAt) || e.Revoked() {
		t.Errorf("NotAfter, Revoked = %v, %v", e.NotAfter(), e.Revoked())
	}
	s.WaitCache()
	if again := mustLookup(t, s, Sum("token-1")); again != e {
		t.Error("second Lookup was not served from the cache")
	}
	if e := mustLookup(t, s, Sum("token-2")); e != nil {
		t.Errorf("Lookup(unknown) = %+v, want nil", e)
	}
	s.WaitCache()
	if e := mustLookup(t, s, Sum("token-2")); e != nil {
		t.Errorf("cached Lookup(unknown) = %+v, want nil", e)
	}
}

func TestCreateErrors(t *testing.T) {
	s := openMem(t, nil)
	first := testRecord(id(1), "a")
	first.PrevDigest, first.PrevNotAfter = Sum("a-old"), time.Now().Add(time.Hour)
	mustCreate(t, s, first)

	dupID := testRecord(id(1), "b")
	dupDigest := testRecord(id(2), "a")
	dupPrev := testRecord(id(3), "a-old")
	prevClash := testRecord(id(4), "c")
	prevClash.PrevDigest, prevClash.PrevNotAfter = Sum("a"), time.Now().Add(time.Hour)
	invalid := testRecord(id(5), "d")
	invalid.Scopes = []string{"bad scope"}
	tests := []struct {
		name string
		rec  Record
		want error
	}{
		{"id taken", dupID, ErrExists},
		{"digest taken", dupDigest, ErrDigestInUse},
		{"digest is another's previous digest", dupPrev, ErrDigestInUse},
		{"previous digest taken", prevClash, ErrDigestInUse},
		{"invalid", invalid, ErrInvalidRecord},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Create(ctx, tc.rec); !errors.Is(err, tc.want) {
				t.Fatalf("Create = %v, want %v", err, tc.want)
			}
			// Nothing changed: the first record and its digests are intact,
			// the rejected record's new digests resolve to nothing.
			if r, err := s.Get(id(1)); err != nil || r.Version != 1 || r.Digest != Sum("a") {
				t.Fatalf("first record after rejected Create: %+v, %v", r, err)
			}
			if tc.rec.ID != id(1) {
				if _, err := s.Get(tc.rec.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("rejected record stored: %v", err)
				}
			}
			for _, tok := range []string{"a", "a-old"} {
				if e := mustLookup(t, s, Sum(tok)); e == nil || e.Principal().KeyID != id(1) {
					t.Errorf("Lookup(%s) after rejected Create = %+v", tok, e)
				}
			}
			for _, tok := range []string{"b", "c", "d"} {
				if e := mustLookup(t, s, Sum(tok)); e != nil {
					t.Errorf("Lookup(%s) = %+v, want nil", tok, e)
				}
			}
		})
	}
	if recs, err := s.List(""); err != nil || len(recs) != 1 {
		t.Errorf("List after rejected creates = %d records, %v", len(recs), err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Create(canceled, testRecord(id(6), "e")); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a canceled context = %v", err)
	}
	if _, err := s.Get(id(6)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Create with a canceled context stored the record: %v", err)
	}
}

func TestUpdate(t *testing.T) {
	s := openMem(t, nil)
	mustCreate(t, s, testRecord(id(1), "a"))
	mustCreate(t, s, testRecord(id(2), "b"))
	mustLookup(t, s, Sum("a"))
	s.WaitCache()

	boom := errors.New("boom")
	tests := []struct {
		name string
		id   string
		fn   func(*Record) error
		want error
	}{
		{"fn error", id(1), func(r *Record) error { r.RevokedAt = time.Now(); return boom }, boom},
		{"id changed", id(1), func(r *Record) error { r.ID = id(9); return nil }, ErrIDChanged},
		{"invalid result", id(1), func(r *Record) error { r.RevokedAt = time.Now(); r.Scopes = []string{""}; return nil }, ErrInvalidRecord},
		{"digest in use", id(1), func(r *Record) error { r.Digest = Sum("b"); return nil }, ErrDigestInUse},
		{"unknown id", id(3), func(r *Record) error { return nil }, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Update(ctx, tc.id, tc.fn); !errors.Is(err, tc.want) {
				t.Fatalf("Update = %v, want %v", err, tc.want)
			}
			if r, err := s.Get(id(1)); err != nil || r.Version != 1 || r.Revoked() || r.Digest != Sum("a") {
				t.Fatalf("record after failed Update: %+v, %v", r, err)
			}
			if e := mustLookup(t, s, Sum("a")); e == nil || e.Revoked() {
				t.Fatalf("Lookup after failed Update = %+v", e)
			}
		})
	}

	revokedAt := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	got, err := s.Update(ctx, id(1), func(r *Record) error {
		r.RevokedAt = revokedAt
		r.Roles = append(r.Roles, "extra")
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got.Version != 2 || !got.RevokedAt.Equal(revokedAt) || len(got.Roles) != 3 {
		t.Errorf("Update returned %+v", got)
	}
	if stored, _ := s.Get(id(1)); !reflect.DeepEqual(stored, got) {
		t.Errorf("Get = %+v\nUpdate returned %+v", stored, got)
	}
	if e := mustLookup(t, s, Sum("a")); e == nil || !e.Revoked() {
		t.Errorf("Lookup after revoke = %+v, want a revoked entry", e)
	}
	got, err = s.Update(ctx, id(1), func(r *Record) error { r.Name = "renamed"; return nil })
	if err != nil || got.Version != 3 {
		t.Errorf("second Update = %+v, %v; want Version 3", got, err)
	}
}

func TestRotation(t *testing.T) {
	s := openMem(t, nil)
	expires := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	r := testRecord(id(1), "v1")
	r.ExpiresAt = expires
	mustCreate(t, s, r)
	mustLookup(t, s, Sum("v1"))
	s.WaitCache()

	// Without grace: the old digest stops resolving at once.
	if _, err := s.Update(ctx, id(1), func(r *Record) error { r.Digest = Sum("v2"); return nil }); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if e := mustLookup(t, s, Sum("v1")); e != nil {
		t.Errorf("old digest after rotation without grace = %+v, want nil", e)
	}
	if e := mustLookup(t, s, Sum("v2")); e == nil || !e.NotAfter().Equal(expires) {
		t.Errorf("new digest = %+v, want NotAfter %v", e, expires)
	}

	// With grace: both resolve; the previous one until the earlier of its
	// grace and the expiry.
	tests := []struct {
		name      string
		grace     time.Time
		wantPrevT time.Time
	}{
		{"grace before expiry", expires.Add(-time.Hour), expires.Add(-time.Hour)},
		{"grace after expiry", expires.Add(time.Hour), expires},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prev, next := fmt.Sprintf("g%d", i), fmt.Sprintf("g%d", i+1)
			if i == 0 {
				prev = "v2"
			}
			if _, err := s.Update(ctx, id(1), func(r *Record) error {
				r.PrevDigest, r.PrevNotAfter, r.Digest = r.Digest, tc.grace, Sum(next)
				return nil
			}); err != nil {
				t.Fatalf("rotate with grace: %v", err)
			}
			if e := mustLookup(t, s, Sum(prev)); e == nil || !e.NotAfter().Equal(tc.wantPrevT) {
				t.Errorf("previous digest = %+v, want NotAfter %v", e, tc.wantPrevT)
			}
			if e := mustLookup(t, s, Sum(next)); e == nil || !e.NotAfter().Equal(expires) {
				t.Errorf("current digest = %+v, want NotAfter %v", e, expires)
			}
		})
	}
	// Rotating again drops the digest that was previous: only two digests
	// are ever indexed.
	if e := mustLookup(t, s, Sum("v2")); e != nil {
		t.Errorf("digest two rotations old = %+v, want nil", e)
	}
	// Ending the grace unindexes the previous digest.
	if _, err := s.Update(ctx, id(1), func(r *Record) error {
		r.PrevDigest, r.PrevNotAfter = Digest{}, time.Time{}
		return nil
	}); err != nil {
		t.Fatalf("end grace: %v", err)
	}
	if e := mustLookup(t, s, Sum("g1")); e != nil {
		t.Errorf("previous digest after the grace ended = %+v, want nil", e)
	}
	if _, ok, err := s.digestID(ptr(Sum("g1"))); ok || err != nil {
		t.Errorf("previous digest still indexed: %v, %v", ok, err)
	}
	if e := mustLookup(t, s, Sum("g2")); e == nil {
		t.Error("current digest lost")
	}
	// The freed digest may be used by another record.
	mustCreate(t, s, testRecord(id(2), "v1"))
}

func ptr[T any](v T) *T { return &v }

func TestStaleDigestIndex(t *testing.T) {
	s := openMem(t, nil)
	mustCreate(t, s, testRecord(id(1), "a"))
	// An index entry pointing at a record that does not list the digest,
	// and one pointing at no record at all, resolve to nothing.
	var kb [33]byte
	if err := s.db.Set(digestKey(kb[:0], ptr(Sum("stale"))), []byte(id(1)), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(digestKey(kb[:0], ptr(Sum("orphan"))), []byte(id(7)), nil); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"stale", "orphan"} {
		if e := mustLookup(t, s, Sum(tok)); e != nil {
			t.Errorf("Lookup(%s) = %+v, want nil", tok, e)
		}
	}
}

func TestList(t *testing.T) {
	s := openMem(t, nil)
	subjects := map[string]string{id(3): "bob", id(1): "alice", id(2): "bob", id(4): "bobby", id(5): "bo"}
	for i := 5; i >= 1; i-- {
		r := testRecord(id(i), fmt.Sprint(i))
		r.Subject = subjects[id(i)]
		mustCreate(t, s, r)
	}
	ids := func(recs []Record) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}
	check := func(subject string, want ...string) {
		t.Helper()
		recs, err := s.List(subject)
		if err != nil {
			t.Fatalf("List(%q): %v", subject, err)
		}
		if got := ids(recs); !reflect.DeepEqual(got, want) {
			t.Errorf("List(%q) = %v, want %v", subject, got, want)
		}
	}
	check("", id(1), id(2), id(3), id(4), id(5))
	check("bob", id(2), id(3))
	check("bo", id(5))
	check("carol")
	if _, err := s.Update(ctx, id(2), func(r *Record) error { r.Subject = "carol"; return nil }); err != nil {
		t.Fatal(err)
	}
	check("bob", id(3))
	check("carol", id(2))
	if recs, _ := s.List("carol"); recs[0].Version != 2 {
		t.Errorf("List returned a stale record: %+v", recs[0])
	}
}

func TestMeta(t *testing.T) {
	s := openMem(t, nil)
	calls := 0
	create := func() ([]byte, error) { calls++; return []byte("k1"), nil }
	for range 3 {
		v, err := s.Meta(ctx, "checksum_key", create)
		if err != nil || string(v) != "k1" {
			t.Fatalf("Meta = %q, %v", v, err)
		}
		v[0] = 'X' // the caller owns the slice
	}
	if calls != 1 {
		t.Errorf("create called %d times, want 1", calls)
	}
	boom := errors.New("boom")
	if _, err := s.Meta(ctx, "other", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("Meta with failing create = %v", err)
	}
	if v, err := s.Meta(ctx, "other", func() ([]byte, error) { return []byte("v"), nil }); err != nil || string(v) != "v" {
		t.Errorf("Meta after failed create = %q, %v", v, err)
	}
	if err := s.SetMeta(ctx, "checksum_key", []byte("k2")); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Meta(ctx, "checksum_key", create); string(v) != "k2" || calls != 1 {
		t.Errorf("Meta after SetMeta = %q (create calls %d)", v, calls)
	}
	for _, name := range []string{"", "a\x00b", strings.Repeat("n", MaxMetaNameLen+1)} {
		if err := s.SetMeta(ctx, name, nil); err == nil {
			t.Errorf("SetMeta(%q) accepted an invalid name", name)
		}
	}
	if err := s.SetMeta(ctx, "big", make([]byte, MaxMetaValueLen+1)); err == nil {
		t.Error("SetMeta accepted an oversized value")
	}
}

func TestTouchLastUsed(t *testing.T) {
	opts := quietOptions()
	opts.LastUsedFlushInterval = time.Millisecond
	opts.LastUsedQueue = 8
	s := openMem(t, opts)
	mustCreate(t, s, testRecord(id(1), "a"))
	if _, ok, err := s.LastUsed(id(1)); ok || err != nil {
		t.Fatalf("LastUsed before any use = %v, %v", ok, err)
	}
	if _, _, err := s.LastUsed(id(2)); !errors.Is(err, ErrNotFound) {
		t.Errorf("LastUsed(unknown) = %v, want ErrNotFound", err)
	}
	e := mustLookup(t, s, Sum("a"))
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	waitFor := func(want time.Time) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; i < 10000 && time.Now().Before(deadline); i++ {
			got, ok, err := s.LastUsed(id(1))
			if err != nil {
				t.Fatal(err)
			}
			if ok && got.Equal(want) {
				return
			}
			time.Sleep(time.Millisecond)
		}
		got, _, _ := s.LastUsed(id(1))
		t.Fatalf("LastUsed = %v, want %v", got, want)
	}
	s.Touch(e, t0)
	waitFor(t0)
	s.Touch(e, t0.Add(59*time.Second)) // within the granularity: not noted
	s.Touch(e, t0.Add(-time.Hour))     // earlier: not noted
	s.Touch(e, t0.Add(2*time.Minute))
	waitFor(t0.Add(2 * time.Minute))
	s.Touch(e, t0.Add(2*time.Minute+30*time.Second))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.lastUsed.Load(); got != t0.Add(2*time.Minute).Unix() {
		t.Errorf("entry's last use = %v", time.Unix(got, 0))
	}
	// After Close nothing drains the queue: a full queue drops and counts.
	for i := range opts.LastUsedQueue + 1 {
		s.Touch(e, t0.Add(time.Duration(i+10)*time.Hour))
	}
	if got := counterValue(t, s.m.lastUsedDropped); got != 1 {
		t.Errorf("dropped notes = %v, want 1", got)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	opts := quietOptions()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := mustCreate(t, s, testRecord(id(1), "a"))
	if _, err := s.Meta(ctx, "admin", func() ([]byte, error) { return []byte("digest"), nil }); err != nil {
		t.Fatal(err)
	}
	used := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s.Touch(mustLookup(t, s, Sum("a")), used)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	for _, call := range []func() error{
		func() error { _, err := s.Lookup(Sum("a")); return err },
		func() error { _, err := s.Get(id(1)); return err },
		func() error { _, err := s.List(""); return err },
		func() error { _, _, err := s.LastUsed(id(1)); return err },
		func() error { _, err := s.Create(ctx, testRecord(id(2), "b")); return err },
		func() error { _, err := s.Update(ctx, id(1), func(*Record) error { return nil }); return err },
		func() error { return s.SetMeta(ctx, "x", nil) },
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("call after Close = %v, want ErrClosed", err)
		}
	}

	opts.ErrorIfNotExists = true
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if got, err := s.Get(id(1)); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Get after reopen = %+v, %v", got, err)
	}
	if e := mustLookup(t, s, Sum("a")); e == nil {
		t.Error("Lookup after reopen found nothing")
	}
	if got, ok, err := s.LastUsed(id(1)); !ok || err != nil || !got.Equal(used) {
		t.Errorf("LastUsed after reopen = %v, %v, %v; want %v", got, ok, err, used)
	}
	if v, err := s.Meta(ctx, "admin", func() ([]byte, error) { return nil, errors.New("called") }); err != nil || string(v) != "digest" {
		t.Errorf("Meta after reopen = %q, %v", v, err)
	}
}

// TestCrashKeepsAcknowledgedWrites crashes the file system after a series of
// acknowledged writes, keeping a random part of the unsynced data, and
// checks that every acknowledged write survived.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
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
				mustCreate(t, s, testRecord(id(i), fmt.Sprint("t", i)))
				if i%2 == 0 {
					if _, err := s.Update(ctx, id(i), func(r *Record) error { r.RevokedAt = time.Now(); return nil }); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := s.SetMeta(ctx, "m", []byte("v")); err != nil {
				t.Fatal(err)
			}
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, seed))})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			opts = quietOptions()
			opts.FS = crashed
			s = openMem(t, opts)
			for i := range n {
				e := mustLookup(t, s, Sum(fmt.Sprint("t", i)))
				if e == nil || e.Revoked() != (i%2 == 0) {
					t.Errorf("record %d after crash: %+v", i, e)
				}
			}
			if v, err := s.Meta(ctx, "m", func() ([]byte, error) { return nil, errors.New("lost") }); err != nil || string(v) != "v" {
				t.Errorf("meta after crash = %q, %v", v, err)
			}
		})
	}
}

// A digest unknown a moment ago resolves as soon as the Create that
// stores it returns: one never stored (which the digest filter rules out)
// and one freed by a rotation (which the negative cache held).
func TestUnknownDigestSeesCreate(t *testing.T) {
	s := openMem(t, nil)
	for i := range 50 {
		tok := fmt.Sprint("new", i)
		if e := mustLookup(t, s, Sum(tok)); e != nil {
			t.Fatalf("Lookup before Create = %+v", e)
		}
		s.WaitCache()
		mustCreate(t, s, testRecord(id(i), tok))
		if e := mustLookup(t, s, Sum(tok)); e == nil {
			t.Fatalf("Lookup right after Create of %s returned nil", tok)
		}
		// Free tok again, have the negative cache hold it, and store it
		// in another record.
		if _, err := s.Update(ctx, id(i), func(r *Record) error { r.Digest = Sum(tok + "-rotated"); return nil }); err != nil {
			t.Fatal(err)
		}
		hits := counterValue(t, s.m.negHits)
		for range 2 {
			if e := mustLookup(t, s, Sum(tok)); e != nil {
				t.Fatalf("Lookup of a rotated-away digest = %+v", e)
			}
			s.WaitCache()
		}
		if counterValue(t, s.m.negHits) != hits+1 {
			t.Fatalf("the rotated-away digest of %s was not negatively cached", tok)
		}
		mustCreate(t, s, testRecord(id(100+i), tok))
		if e := mustLookup(t, s, Sum(tok)); e == nil || e.Principal().KeyID != id(100+i) {
			t.Fatalf("Lookup right after the second Create of %s = %+v", tok, e)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := quietOptions()
	opts.Registerer = reg
	s := openMem(t, opts)
	// "a" is rotated away: it stays in the digest filter and reaches the
	// negative cache; "b" was never stored, and the filter rules it out.
	mustCreate(t, s, testRecord(id(1), "a"))
	if _, err := s.Update(ctx, id(1), func(r *Record) error { r.Digest = Sum("a2"); return nil }); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		mustLookup(t, s, Sum("a2"))
		mustLookup(t, s, Sum("a"))
		mustLookup(t, s, Sum("b"))
		s.WaitCache()
	}
	for _, tc := range []struct {
		c    prometheus.Metric
		want float64
	}{
		{s.m.hits, 1}, {s.m.negHits, 1}, {s.m.misses, 5}, {s.m.negMisses, 2}, {s.m.reads, 2},
		{s.m.filterRejects, 2}, {s.m.filterBuilds, 0}, {s.m.writeCreate, 1}, {s.m.writeUpdate, 1},
	} {
		if got := counterValue(t, tc.c); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.c.Desc(), got, tc.want)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, f := range families {
		series[f.GetName()] = len(f.GetMetric())
	}
	for name, want := range map[string]int{
		"verifyd_keystore_cache_hits_total": 2, "verifyd_keystore_cache_misses_total": 2,
		"verifyd_keystore_cache_evictions_total": 2, "verifyd_keystore_cache_entries": 2,
		"verifyd_keystore_writes_total": 7, "verifyd_keystore_store_reads_total": 1,
		"verifyd_keystore_store_read_errors_total": 1, "verifyd_keystore_last_used_dropped_total": 1,
		"verifyd_keystore_revocations": 2, "verifyd_keystore_digest_filter_rejects_total": 1,
		"verifyd_keystore_digest_filter_builds_total": 1, "verifyd_keystore_digest_filter_bytes": 1,
	} {
		if series[name] != want {
			t.Errorf("%s: %d series, want %d", name, series[name], want)
		}
	}
	if _, err := Open("db2", &Options{FS: vfs.NewMem(), Registerer: reg}); err == nil {
		t.Error("a second store registered the same metrics")
	}
}

// counterValue returns the current value of c.
func counterValue(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
