//go:build !race

package ipc

import (
	"runtime"
	"testing"
)

// mallocs returns the heap allocations of the whole process during fn.
func mallocs(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs
}

// TestServerAllocations counts the heap allocations of the whole process
// while a live connection verifies a cached credential, pipelined and one
// at a time, and checks that the socket path allocates nothing per
// request: the count may not exceed a small fixed overhead (runtime and
// test machinery) plus what Verifier.Verify itself is allowed.
//
// Verify's own rate on a cache hit is not zero but at most 1/64 per call:
// keystore's ristretto cache records accesses in stripes of 64
// (BufferItems) and allocates a new stripe each time it hands a full one
// to its policy (ristretto ring.go, ringStripe.Push). The test logs Verify's
// rate measured alone, for comparison.
func TestServerAllocations(t *testing.T) {
	const (
		overhead        = 100
		ristrettoStripe = 64
	)
	e := newEnv(t, nil)
	c := e.dial()
	for i := range uint64(50) { // fill the caches (ristretto's Set is asynchronous)
		c.verify(i, e.token, "orders:publish")
	}
	const calls = 20000
	base := mallocs(func() {
		for range calls {
			if r := e.v.Verify(e.token, "orders:publish"); !r.Allowed() {
				t.Fatal(r.Reason)
			}
		}
	})
	perVerify := float64(base) / calls
	t.Logf("Verifier.Verify alone: %d allocations in %d calls, %.4f per call", base, calls, perVerify)

	for _, tc := range []struct {
		name          string
		depth, rounds int
	}{
		{"depth=1", 1, 5000},
		{"depth=64", 64, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var batch []byte
			for i := range uint64(tc.depth) {
				batch = AppendVerify(batch, i, e.token, "orders:publish")
			}
			round := func() {
				c.send(batch)
				for range tc.depth {
					f := c.mustNext()
					if f.Header.Opcode != OpVerifyResult || Status(f.Body[0]) != StatusOK {
						t.Fatalf("got %v", f.Header.Opcode)
					}
				}
			}
			for range 10 {
				round()
			}
			requests := tc.depth * tc.rounds
			n := mallocs(func() {
				for range tc.rounds {
					round()
				}
			})
			t.Logf("%d requests over the socket: %d allocations in the process, %.4f per request (Verify alone: %.4f)",
				requests, n, float64(n)/float64(requests), perVerify)
			if limit := uint64(requests/ristrettoStripe + overhead); n > limit {
				t.Fatalf("%d allocations for %d requests (%.4f per request); want at most %d: one per %d for ristretto, plus a fixed %d",
					n, requests, float64(n)/float64(requests), limit, ristrettoStripe, overhead)
			}
		})
	}
}
