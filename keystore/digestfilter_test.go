package keystore

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// digestOf returns a digest derived from n, for filter tests.
func digestOf(n int) Digest {
	return sha256.Sum256(binary.LittleEndian.AppendUint64(nil, uint64(n)))
}

// A full filter holds everything added and passes few digests it never saw.
func TestDigestFilterFalsePositives(t *testing.T) {
	f := newDigestFilter(50_000)
	for i := range f.capacity {
		d := digestOf(i)
		f.add(&d)
	}
	for i := range f.capacity {
		if d := digestOf(i); !f.mayContain(&d) {
			t.Fatalf("digest %d was added and is not in the filter", i)
		}
	}
	const probes = 1_000_000
	passed := 0
	for i := range probes {
		if d := digestOf(f.capacity + i); f.mayContain(&d) {
			passed++
		}
	}
	// About 1 in 1 000 expected at capacity (filterBitsPerDigest).
	if rate := float64(passed) / probes; rate > 1.0/500 {
		t.Errorf("%d of %d unknown digests passed a full filter (%.5f)", passed, probes, rate)
	}
}

// Every stored digest is found while the filter grows through several
// rebuilds, after a reopen (the build at Open), and through the
// replication path; unknown digests are ruled out without a store read.
func TestDigestFilterGrowsWithoutLosingDigests(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	start := s.filter.Load().capacity
	const n = 10_000
	tok := func(i int) string { return fmt.Sprint("grow-", i) }
	for lo := 0; lo < n; lo += 500 {
		batch := make([]Record, 0, 500)
		for i := lo; i < lo+500; i++ {
			batch = append(batch, testRecord(id(i), tok(i)))
		}
		if _, err := s.CreateBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if builds := counterValue(t, s.m.filterBuilds); builds < 2 || s.filter.Load().capacity < 2*n {
		t.Fatalf("after %d digests from a capacity of %d: %v builds, capacity %d", n, start, builds, s.filter.Load().capacity)
	}
	feed := feedRecord(t, n, "from-the-feed")
	mustApplyReplicated(t, s, 1, &ChangeSet{Records: []RecordChange{{New: feed}}})

	check := func(s *Store) {
		t.Helper()
		for i := range n {
			if e := mustLookup(t, s, Sum(tok(i))); e == nil {
				t.Fatalf("stored digest %d not found", i)
			}
		}
		if e := mustLookup(t, s, Sum("from-the-feed")); e == nil {
			t.Fatal("the replicated record's digest not found")
		}
		reads := counterValue(t, s.m.reads)
		for i := range 1000 {
			if e := mustLookup(t, s, Sum(fmt.Sprint("never-", i))); e != nil {
				t.Fatalf("unknown digest found: %+v", e)
			}
		}
		if r := counterValue(t, s.m.reads) - reads; r > 5 {
			t.Errorf("%v of 1000 unknown digests read the store", r)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir, nil)
	if c := s.filter.Load().capacity; c < n {
		t.Errorf("filter built at Open has a capacity of %d for %d digests", c, n+1)
	}
	check(s)
}

// Lookups racing writes, and the rebuilds they cause, find every digest
// whose Create has returned.
func TestDigestFilterConcurrentGrowth(t *testing.T) {
	s := openMem(t, nil)
	const n = 6000
	tok := func(i int) string { return fmt.Sprint("race-", i) }
	var created atomic.Int64 // digests 0..created-1 are acknowledged
	var wg sync.WaitGroup
	failed := make(chan string, 1)
	stop := make(chan struct{})
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c := int(created.Load())
				if c == 0 {
					continue
				}
				k := (i*7919 + r) % c
				if e, err := s.Lookup(Sum(tok(k))); err != nil || e == nil {
					select {
					case failed <- fmt.Sprintf("digest %d (acknowledged) not found: %v", k, err):
					default:
					}
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < n && time.Now().Before(deadline); i += 20 {
		batch := make([]Record, 0, 20)
		for j := i; j < i+20; j++ {
			batch = append(batch, testRecord(id(j), tok(j)))
		}
		if _, err := s.CreateBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		created.Store(int64(i + 20))
	}
	close(stop)
	wg.Wait()
	select {
	case msg := <-failed:
		t.Fatal(msg)
	default:
	}
	if counterValue(t, s.m.filterBuilds) == 0 {
		t.Error("no rebuild happened during the writes")
	}
}

// A store whose digest index could not be read whole serves without the
// filter: every digest goes to the caches and Pebble, and writes go on.
func TestDigestFilterDisabled(t *testing.T) {
	s := openMem(t, nil)
	mustCreate(t, s, testRecord(id(1), "before"))
	s.disableDigestFilter(errors.New("injected"))
	if n := s.filter.Load().sizeBytes(); n != 0 {
		t.Fatalf("a disabled filter reports %d bytes", n)
	}
	mustCreate(t, s, testRecord(id(2), "after"))
	for _, tok := range []string{"before", "after"} {
		if e := mustLookup(t, s, Sum(tok)); e == nil {
			t.Errorf("%s: not found without the filter", tok)
		}
	}
	reads := counterValue(t, s.m.reads)
	if e := mustLookup(t, s, Sum("never")); e != nil {
		t.Fatalf("unknown digest found: %+v", e)
	}
	if counterValue(t, s.m.reads) != reads+1 || counterValue(t, s.m.filterRejects) != 0 {
		t.Error("an unknown digest did not read the store with the filter disabled")
	}
}

// A filter shrunk to a smaller size keeps every digest it held.
func TestDigestFilterShrink(t *testing.T) {
	f := newDigestFilter(100_000)
	for i := range 1000 {
		d := digestOf(i)
		f.add(&d)
	}
	g := f.shrink(minFilterWords)
	if len(g.words) != minFilterWords || g.capacity != minFilterWords*64/filterBitsPerDigest || g.added.Load() != 1000 {
		t.Fatalf("shrunk filter: %d words, capacity %d, %d added", len(g.words), g.capacity, g.added.Load())
	}
	for i := range 1000 {
		if d := digestOf(i); !g.mayContain(&d) {
			t.Fatalf("digest %d lost by the shrink", i)
		}
	}
	passed := 0
	for i := range 100_000 {
		if d := digestOf(1000 + i); g.mayContain(&d) {
			passed++
		}
	}
	if passed > 100 {
		t.Errorf("%d of 100000 unknown digests passed the shrunk filter", passed)
	}
}
