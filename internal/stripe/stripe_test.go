package stripe

import (
	"sync"
	"testing"
)

// Adds from many goroutines at once all count, each to its own counter.
func TestConcurrentAdds(t *testing.T) {
	s := New(11)
	const goroutines, each = 16, 10_000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				st := Index()
				s.Add(st, (g+i)%(s.Len()-1), 1)
				s.Add(st, 10, 2)
			}
		})
	}
	wg.Wait()
	var total uint64
	for i := range 10 {
		total += s.Load(i)
	}
	if total != goroutines*each || s.Load(10) != 2*goroutines*each {
		t.Fatalf("counted %d and %d, want %d and %d", total, s.Load(10), goroutines*each, 2*goroutines*each)
	}
}

// Stripes never share a cache line, whatever the alignment of the words.
func TestStripeLayout(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 100} {
		s := New(n)
		if s.stride%lineWords != 0 || s.stride < n+lineWords {
			t.Errorf("New(%d): stride %d words, want a multiple of %d with a line to spare", n, s.stride, lineWords)
		}
		if stripes := len(s.words) / s.stride; stripes&(stripes-1) != 0 || uint32(stripes-1) != s.mask {
			t.Errorf("New(%d): %d stripes, mask %d", n, stripes, s.mask)
		}
	}
}

// An add allocates nothing once the processor has its token.
func TestAddAllocatesNothing(t *testing.T) {
	s := New(4)
	s.Add(Index(), 0, 1)
	if n := testing.AllocsPerRun(1000, func() { s.Add(Index(), 1, 1) }); n != 0 {
		t.Errorf("%v allocations per add", n)
	}
}

// BenchmarkAdd compares a striped add with one atomic counter shared by
// every goroutine, with every processor adding at once.
func BenchmarkAdd(b *testing.B) {
	b.Run("striped", func(b *testing.B) {
		s := New(1)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.Add(Index(), 0, 1)
			}
		})
	})
	b.Run("floor_shared_atomic", func(b *testing.B) {
		s := New(1)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.words[0].Add(1)
			}
		})
	})
}
