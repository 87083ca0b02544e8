package keystore

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRevocationIsLinearizable runs Lookups of the same digests continuously
// while other goroutines revoke or rotate them. A revoker marks a digest
// done once its Update has returned; a reader loads that mark before its
// Lookup starts, and a Lookup that started after the mark must see the new
// state: a revoked entry, or nothing for a rotated-out digest. The caches
// are warm when the writes happen, so stale entries and late asynchronous
// Sets are in play. Bounded in rounds, reads and time.
func TestRevocationIsLinearizable(t *testing.T) {
	const (
		rounds        = 40
		keys          = 16
		readers       = 4
		revokers      = 2
		warmReads     = 200   // reads per reader before the writes start
		readsAfter    = 500   // reads per reader after the last write returned
		maxReadsRound = 50000 // hard cap per reader and round
	)
	deadline := time.Now().Add(30 * time.Second)
	// A cache smaller than the key set keeps evicting, so that many Lookups
	// read Pebble and fill the cache while the writes happen.
	opts := quietOptions()
	opts.CacheEntries = keys / 4
	s := openMem(t, opts)

	type key struct {
		d      Digest
		id     string
		rotate bool        // rotate the digest out instead of revoking
		done   atomic.Bool // set once the write has returned
	}
	var checked, violations atomic.Int64
	for round := 0; round < rounds && time.Now().Before(deadline); round++ {
		ks := make([]key, keys)
		for i := range ks {
			n := round*keys + i
			tok := fmt.Sprint("stress-", n)
			ks[i].d, ks[i].id, ks[i].rotate = Sum(tok), id(n), i%2 == 1
			mustCreate(t, s, testRecord(ks[i].id, tok))
		}

		var warm sync.WaitGroup
		warm.Add(readers)
		var allDone atomic.Bool
		var wg sync.WaitGroup
		for r := range readers {
			wg.Go(func() {
				after := 0
				for i := 0; i < maxReadsRound && after < readsAfter; i++ {
					if i == warmReads {
						warm.Done()
					}
					if allDone.Load() {
						after++
					}
					k := &ks[(i*5+r)%keys]
					done := k.done.Load() // before the Lookup starts
					e, err := s.Lookup(k.d)
					if err != nil {
						t.Errorf("Lookup: %v", err)
						return
					}
					if !done {
						continue
					}
					checked.Add(1)
					if k.rotate && e != nil || !k.rotate && (e == nil || !e.Revoked()) {
						if violations.Add(1) <= 5 {
							t.Errorf("round %d key %s (rotate %v): Lookup after the write returned %+v, principal %+v",
								round, k.id, k.rotate, e, principalOf(e))
						}
					}
				}
				if warmReads >= maxReadsRound {
					warm.Done()
				}
			})
		}
		warm.Wait()
		var writers sync.WaitGroup
		for w := range revokers {
			writers.Go(func() {
				for i := w; i < keys; i += revokers {
					for range i % 4 {
						runtime.Gosched()
					}
					k := &ks[i]
					_, err := s.Update(ctx, k.id, func(r *Record) error {
						if k.rotate {
							r.Digest = Sum(fmt.Sprint("rotated-", k.id))
						} else {
							r.RevokedAt = time.Now()
						}
						return nil
					})
					if err != nil {
						t.Errorf("Update: %v", err)
					}
					k.done.Store(true)
				}
			})
		}
		writers.Wait()
		allDone.Store(true)
		wg.Wait()
		if t.Failed() {
			break
		}
	}
	if checked.Load() == 0 {
		t.Fatal("no Lookup started after a write returned")
	}
	t.Logf("%d Lookups checked after their write returned, %d violations", checked.Load(), violations.Load())
}

func principalOf(e *Entry) any {
	if e == nil {
		return nil
	}
	return *e.Principal()
}
