package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// The failure tests of SECURITY.md §3.3 that concern the store itself: a
// full disk, a damaged WAL, and a crash during concurrent writes.
// VERIFYD_FAULTS_LONG=1 runs more rounds (make faults does, in CI).

func faultsLong() bool { return os.Getenv("VERIFYD_FAULTS_LONG") == "1" }

// diskFull models a volume that fills up: while on, statfs reports almost
// no space left and every write Pebble attempts fails with ENOSPC.
type diskFull struct {
	mem     *vfs.MemFS
	on      atomic.Bool
	enospcs atomic.Int64 // writes that met ENOSPC
}

func newDiskFull() *diskFull {
	f := &diskFull{mem: vfs.NewMem()}
	f.set(false)
	return f
}

func (f *diskFull) set(full bool) {
	avail := uint64(10 << 30)
	if full {
		avail = 1 << 20
	}
	f.mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: avail, TotalBytes: 20 << 30, UsedBytes: 20<<30 - avail})
	f.on.Store(full)
}

func (f *diskFull) fs() vfs.FS {
	return errorfs.Wrap(f.mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !f.on.Load() {
			return nil
		}
		switch op.Kind {
		case errorfs.OpCreate, errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate, errorfs.OpLink, errorfs.OpReuseForWrite:
			f.enospcs.Add(1)
			return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
		}
		return nil
	}))
}

// TestFaultDiskFull fills the volume under an open store. Pass (SECURITY.md
// §3.3.2): every write fails with an error naming the full disk, and none
// reaches Pebble (whose WAL write failure would stop the process); lookups
// and revocation checks of what was stored keep working; writes succeed
// again once space is freed, without reopening; after a reopen every
// acknowledged write is there and no refused one is. Open on a full volume
// fails at once instead of retrying its recovery flush without end.
func TestFaultDiskFull(t *testing.T) {
	disk := newDiskFull()
	opts := quietOptions()
	opts.FS = disk.fs()
	opts.LastUsedFlushInterval = 5 * time.Millisecond
	opts.LastUsedGranularity = time.Second
	s, err := Open("db", opts)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		mustCreate(t, s, testRecord(id(i), fmt.Sprint("t", i)))
	}
	for i := 0; i < n; i += 4 {
		if _, err := s.Update(ctx, id(i), func(r *Record) error { r.RevokedAt = t0; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	mustRevokeToken(t, s, TokenRevocation{TokenID: "jti-before"})
	mustRevokeSubject(t, s, SubjectRevocation{Subject: "subject-before", NotBefore: t0})
	if err := s.SetMeta(ctx, "m", []byte("before")); err != nil {
		t.Fatal(err)
	}
	// Half the records are in the cache, half will be read from Pebble.
	for i := 0; i < n; i += 2 {
		mustLookup(t, s, Sum(fmt.Sprint("t", i)))
	}
	s.WaitCache()

	disk.set(true)
	refused := map[string]func() error{
		"create": func() error { _, err := s.Create(ctx, testRecord(id(100), "refused")); return err },
		"revoke key": func() error {
			_, err := s.Update(ctx, id(1), func(r *Record) error { r.RevokedAt = t0; return nil })
			return err
		},
		"create batch": func() error { _, err := s.CreateBatch(ctx, []Record{testRecord(id(101), "refused-2")}); return err },
		"revoke jti":   func() error { _, err := s.RevokeToken(ctx, TokenRevocation{TokenID: "jti-refused"}); return err },
		"revoke subject": func() error {
			_, err := s.RevokeSubject(ctx, SubjectRevocation{Subject: "subject-refused", NotBefore: t0})
			return err
		},
		"set meta": func() error { return s.SetMeta(ctx, "m", []byte("refused")) },
		"new meta": func() error {
			_, err := s.Meta(ctx, "new", func() ([]byte, error) { return []byte("refused"), nil })
			return err
		},
	}
	for name, write := range refused {
		err := write()
		if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "nothing was written") || !strings.Contains(err.Error(), "free space") {
			t.Errorf("%s on a full disk: %v, want ErrDiskFull saying nothing was written and what to do", name, err)
		}
	}
	// Reads, uses noted for the last-use writer (which must not write
	// either), and revocation checks.
	for i := range n {
		e := mustLookup(t, s, Sum(fmt.Sprint("t", i)))
		if e == nil || e.Revoked() != (i%4 == 0) {
			t.Fatalf("record %d on a full disk: %+v", i, e)
		}
		s.Touch(e, time.Now())
	}
	if !s.TokenRevoked("jti-before", "", time.Time{}) || !s.TokenRevoked("", "subject-before", t0.Add(-time.Second)) {
		t.Error("a revocation stored before the disk filled is not in effect")
	}
	if s.TokenRevoked("jti-refused", "", time.Time{}) {
		t.Error("a refused revocation is in effect")
	}
	if rs, err := s.List(""); err != nil || len(rs) != n {
		t.Errorf("List on a full disk: %d records, %v", len(rs), err)
	}
	time.Sleep(5 * opts.LastUsedFlushInterval) // flush passes that must skip
	if got := disk.enospcs.Load(); got != 0 {
		t.Errorf("%d writes reached the full disk; the store must refuse them first", got)
	}

	disk.set(false)
	mustCreate(t, s, testRecord(id(200), "after"))
	mustRevokeToken(t, s, TokenRevocation{TokenID: "jti-after"})
	if err := s.Close(); err != nil {
		t.Fatalf("Close after the disk was full: %v", err)
	}

	disk.set(true)
	start := time.Now()
	if _, err := Open("db", opts); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "free space") {
		t.Fatalf("Open on a full volume = %v, want ErrDiskFull", err)
	}
	t.Logf("Open on a full volume refused in %v", time.Since(start))

	disk.set(false)
	s = openMem(t, opts)
	for i := range n {
		if e := mustLookup(t, s, Sum(fmt.Sprint("t", i))); e == nil || e.Revoked() != (i%4 == 0) {
			t.Errorf("record %d after reopening: %+v", i, e)
		}
	}
	for _, tok := range []string{"refused", "refused-2"} {
		if e := mustLookup(t, s, Sum(tok)); e != nil {
			t.Errorf("a refused create is stored: %+v", e)
		}
	}
	if e := mustLookup(t, s, Sum("after")); e == nil {
		t.Error("the create acknowledged after space was freed is lost")
	}
	if !s.TokenRevoked("jti-before", "", time.Time{}) || !s.TokenRevoked("jti-after", "", time.Time{}) || s.TokenRevoked("jti-refused", "", time.Time{}) {
		t.Error("revocations after reopening differ from the acknowledged ones")
	}
	if v, err := s.Meta(ctx, "m", nil); err != nil || string(v) != "before" {
		t.Errorf("meta after reopening = %q, %v; want the acknowledged value", v, err)
	}
}

// walFile returns the path of the live WAL in dir: the highest-numbered
// non-empty .log file.
func walFile(t *testing.T, dir string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var best string
	bestNum := -1
	for _, l := range logs {
		num, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(l), ".log"))
		if fi, serr := os.Stat(l); err == nil && serr == nil && fi.Size() > 0 && num > bestNum {
			best, bestNum = l, num
		}
	}
	if best == "" {
		t.Fatalf("no WAL in %s", dir)
	}
	return best
}

// copyDir copies the files of src into a new directory: what the disk holds
// if the machine stopped now (every acknowledged write is synced).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// snapshotFiles returns the contents of every file in dir.
func snapshotFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

// walWrites opens a store in a new directory, creates n records one by one
// and returns the directory, the live WAL and its size after each
// acknowledged create: record i lies in the WAL between ends[i-1] and
// ends[i]. The store is left open (its files are copied, as a crash would
// leave them).
func walWrites(t *testing.T, n int) (dir, wal string, ends []int64) {
	t.Helper()
	dir = t.TempDir()
	s := openDir(t, dir, nil)
	for i := range n {
		mustCreate(t, s, testRecord(id(i), fmt.Sprint("t", i)))
		fi, err := os.Stat(walFile(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, fi.Size())
	}
	return dir, walFile(t, dir), ends
}

// TestFaultCorruptStore damages the files of a stopped store. Pass
// (SECURITY.md §3.3.3): a WAL whose last record is torn opens and loses
// that record only; a flipped byte inside synced WAL records followed by
// later ones makes Open fail with ErrCorrupt and leaves every file as it
// was; a damaged table makes Open fail with ErrCorrupt, or opens and then
// every lookup answers what is stored or an error, never "unknown" or the
// wrong revocation state, and never stops the process.
func TestFaultCorruptStore(t *testing.T) {
	t.Run("torn tail", func(t *testing.T) {
		const n = 30
		dir, wal, ends := walWrites(t, n)
		rng := rand.New(rand.NewPCG(1, 2))
		for round := range 5 {
			crashed := copyDir(t, dir)
			// Cut inside the last record: the write that was in flight.
			cut := ends[n-2] + 1 + rng.Int64N(ends[n-1]-ends[n-2]-1)
			if err := os.Truncate(filepath.Join(crashed, filepath.Base(wal)), cut); err != nil {
				t.Fatal(err)
			}
			s := openDir(t, crashed, nil)
			for i := range n {
				e := mustLookup(t, s, Sum(fmt.Sprint("t", i)))
				if i < n-1 && e == nil {
					t.Fatalf("round %d (cut at %d of %d): record %d, written before the torn one, is lost", round, cut, ends[n-1], i)
				}
				if i == n-1 && e != nil {
					t.Errorf("round %d: the torn record was replayed", round)
				}
			}
			s.Close()
		}
	})

	t.Run("flipped byte in synced records", func(t *testing.T) {
		// Enough records that damage in the first 32 KiB block of the
		// WAL is followed by whole blocks of later, synced records.
		const n = 250
		dir, wal, ends := walWrites(t, n)
		if ends[n-1] < 3*32<<10 {
			t.Fatalf("the WAL holds %d bytes, want at least three 32 KiB blocks", ends[n-1])
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for round := range 5 {
			crashed := copyDir(t, dir)
			p := filepath.Join(crashed, filepath.Base(wal))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			k := 1 + rng.IntN(20) // a record in the first block
			off := ends[k-1] + rng.Int64N(ends[k]-ends[k-1])
			b[off] ^= 1 << rng.IntN(8)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			before := snapshotFiles(t, crashed)
			for attempt := range 2 { // the failed Open released the lock
				s, err := Open(crashed, quietOptions())
				if !errors.Is(err, ErrCorrupt) {
					if s != nil {
						s.Close()
					}
					t.Fatalf("round %d attempt %d: Open with byte %d of the WAL (record %d) flipped = %v, want ErrCorrupt", round, attempt, off, k, err)
				}
			}
			after := snapshotFiles(t, crashed)
			for name, b := range before {
				if !bytes.Equal(after[name], b) {
					t.Errorf("round %d: the failed Open changed %s", round, name)
				}
			}
			for name := range after {
				if _, ok := before[name]; !ok && name != "LOCK" {
					t.Errorf("round %d: the failed Open created %s", round, name)
				}
			}
		}
	})

	t.Run("damaged table", func(t *testing.T) {
		const n = 200
		dir := t.TempDir()
		s := openDir(t, dir, nil)
		for i := range n {
			mustCreate(t, s, testRecord(id(i), fmt.Sprint("t", i)))
			if i%3 == 0 {
				if _, err := s.Update(ctx, id(i), func(r *Record) error { r.RevokedAt = t0; return nil }); err != nil {
					t.Fatal(err)
				}
			}
		}
		mustRevokeToken(t, s, TokenRevocation{TokenID: "jti-1"})
		if err := s.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
		if len(tables) == 0 {
			t.Fatal("no table after Compact")
		}
		var refused, served, failedReads int
		for _, at := range []float64{0.05, 0.25, 0.5, 0.75, 0.9, 0.99} {
			crashed := copyDir(t, dir)
			for _, table := range tables {
				p := filepath.Join(crashed, filepath.Base(table))
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				off := int(float64(len(b)) * at)
				for i := off; i < off+32 && i < len(b); i++ {
					b[i] ^= 0x5a
				}
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(crashed, quietOptions())
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open with tables damaged at %.0f%% = %v, want ErrCorrupt or a store", at*100, err)
				}
				refused++
				continue
			}
			served++
			for i := range n {
				e, err := s.Lookup(Sum(fmt.Sprint("t", i)))
				switch {
				case err != nil:
					failedReads++
				case e == nil:
					t.Errorf("damage at %.0f%%: record %d reads as unknown", at*100, i)
				case e.Revoked() != (i%3 == 0):
					t.Errorf("damage at %.0f%%: record %d reads with revoked=%v", at*100, i, e.Revoked())
				}
			}
			s.Close()
		}
		t.Logf("damaged tables: %d opens refused as corrupt, %d stores served with %d lookups failing", refused, served, failedReads)
	})
}

// TestFaultCrashDuringWrites runs concurrent writers (creates, key
// revocations, JWT revocations) and crashes the file system at a random
// moment while they run, keeping a random part of the unsynced data. Pass
// (SECURITY.md §3.3.1, in-process): every write acknowledged before the
// crash is in the restarted store; revocations that were in flight may or
// may not be.
func TestFaultCrashDuringWrites(t *testing.T) {
	rounds := 10
	if faultsLong() {
		rounds = 1000
	}
	var acked atomic.Int64
	for round := range rounds {
		seed := uint64(round)
		rng := rand.New(rand.NewPCG(seed, 7))
		fs := vfs.NewCrashableMem()
		opts := quietOptions()
		opts.FS = fs
		s, err := Open("db", opts)
		if err != nil {
			t.Fatal(err)
		}
		const writers, perWriter = 4, 40
		// done[w] holds the writes of writer w acknowledged so far, in order;
		// a create of id(w*1000+i) with token "w-i", and a revocation of the
		// key (even i) or of the jti "jti-w-i" (odd i).
		var mu sync.Mutex
		done := make([][]int, writers)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					select {
					case <-stop:
						return
					default:
					}
					rid := id(w*1000 + i)
					if _, err := s.Create(ctx, testRecord(rid, fmt.Sprintf("%d-%d", w, i))); err != nil {
						t.Errorf("create: %v", err)
						return
					}
					var err error
					if i%2 == 0 {
						_, err = s.Update(ctx, rid, func(r *Record) error { r.RevokedAt = t0; return nil })
					} else {
						_, err = s.RevokeToken(ctx, TokenRevocation{TokenID: fmt.Sprintf("jti-%d-%d", w, i)})
					}
					if err != nil {
						t.Errorf("revoke: %v", err)
						return
					}
					mu.Lock()
					done[w] = append(done[w], i)
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		mu.Lock()
		ackedNow := make([][]int, writers)
		for w := range writers {
			ackedNow[w] = slices.Clone(done[w])
		}
		mu.Unlock()
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		close(stop)
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if t.Failed() {
			return
		}
		opts = quietOptions()
		opts.FS = crashed
		s, err = Open("db", opts)
		if err != nil {
			t.Fatalf("round %d: reopen after the crash: %v", round, err)
		}
		for w, is := range ackedNow {
			for _, i := range is {
				acked.Add(2)
				e := mustLookup(t, s, Sum(fmt.Sprintf("%d-%d", w, i)))
				switch {
				case e == nil:
					t.Errorf("round %d: acknowledged create %d-%d lost", round, w, i)
				case i%2 == 0 && !e.Revoked():
					t.Errorf("round %d: acknowledged revocation of key %d-%d lost", round, w, i)
				case i%2 == 1 && !s.TokenRevoked(fmt.Sprintf("jti-%d-%d", w, i), "", time.Time{}):
					t.Errorf("round %d: acknowledged revocation of jti-%d-%d lost", round, w, i)
				}
			}
		}
		s.Close()
		if t.Failed() {
			return
		}
	}
	t.Logf("%d rounds, %d acknowledged writes checked after a crash, 0 lost", rounds, acked.Load())
}
