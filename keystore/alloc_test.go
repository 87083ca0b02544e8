//go:build !race

package keystore

import (
	"testing"
	"time"
)

func TestAllocations(t *testing.T) {
	s := openMem(t, nil)
	mustCreate(t, s, testRecord(id(1), "a"))
	d := Sum("a")
	e := mustLookup(t, s, d)
	s.WaitCache()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s.Touch(e, now)
	unknown := Sum("unknown")
	mustLookup(t, s, unknown)
	s.WaitCache()

	tests := []struct {
		name string
		fn   func()
	}{
		{"Sum", func() { _ = Sum("vk_0123456789abcdefghijklmnopqrstuvwxyz") }},
		{"Lookup cache hit", func() {
			if got, err := s.Lookup(d); got != e || err != nil {
				t.Fatalf("Lookup = %p, %v; want the cached entry %p", got, err, e)
			}
		}},
		{"Lookup negative cache hit", func() {
			if got, err := s.Lookup(unknown); got != nil || err != nil {
				t.Fatalf("Lookup(unknown) = %v, %v", got, err)
			}
		}},
		{"Touch within granularity", func() { s.Touch(e, now.Add(time.Second)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tc.fn); n != 0 {
				t.Errorf("%v allocations per run, want 0", n)
			}
		})
	}
}
