package keystore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// benchStore opens a store in a temporary directory holding n records,
// flushed and compacted so that reads go through sstables (and their bloom
// filters) rather than the memtable.
func benchStore(b *testing.B, n int) (*Store, []Digest) {
	b.Helper()
	opts := quietOptions()
	opts.CacheEntries = int64(2 * n)
	s, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ds := make([]Digest, n)
	batch := s.db.NewBatch()
	var kb [33]byte
	for i := range ds {
		r := testRecord(id(i), fmt.Sprint("bench-", i))
		r.Version = 1
		ds[i] = r.Digest
		if err := batch.Set(recordKey(r.ID), r.AppendEncode(nil), nil); err != nil {
			b.Fatal(err)
		}
		if err := batch.Set(digestKey(kb[:0], &ds[i]), []byte(r.ID), nil); err != nil {
			b.Fatal(err)
		}
		if err := batch.Set(subjectKey(r.Subject, r.ID), nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		b.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
		b.Fatal(err)
	}
	// The records went around the write path: read the digest filter
	// again, as Open would have.
	f, err := s.buildDigestFilter(0)
	if err != nil {
		b.Fatal(err)
	}
	s.filter.Store(f)
	return s, ds
}

// unknownDigest returns a distinct digest for each i that no record uses.
func unknownDigest(i int) Digest {
	var d Digest
	binary.LittleEndian.PutUint64(d[:], uint64(i))
	d[31] = 0xa5
	return d
}

func BenchmarkLookup(b *testing.B) {
	const n = 10000
	s, ds := benchStore(b, n)

	b.Run("cache_hit", func(b *testing.B) {
		d := ds[0]
		if e, err := s.Lookup(d); e == nil || err != nil {
			b.Fatalf("Lookup = %v, %v", e, err)
		}
		s.cache.Wait()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Lookup(d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("store_hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			d := &ds[i%n]
			i++
			s.shard(d).Add(1) // invalidate whatever the cache holds
			if e, err := s.Lookup(*d); e == nil || err != nil {
				b.Fatalf("Lookup = %v, %v", e, err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) { // ruled out by the digest filter
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if e, err := s.Lookup(unknownDigest(i)); e != nil || err != nil {
				b.Fatalf("Lookup = %v, %v", e, err)
			}
		}
	})
	b.Run("cache_hit_parallel", func(b *testing.B) {
		for _, d := range ds[:64] {
			s.Lookup(d)
		}
		s.cache.Wait()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := s.Lookup(ds[i%64]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkDigestIndex compares the two ways of reading the digest index:
// DB.Get (which skips the bottom level's bloom filters) and an iterator with
// UseL6Filters and SeekPrefixGE (what Lookup uses).
func BenchmarkDigestIndex(b *testing.B) {
	const n = 10000
	s, ds := benchStore(b, n)
	reads := []struct {
		name string
		read func(*Digest) (string, bool, error)
	}{
		{"get", s.digestIDGet},
		{"iter", s.digestID},
	}
	for _, r := range reads {
		b.Run(r.name+"/hit", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok, err := r.read(&ds[i%n]); !ok || err != nil {
					b.Fatalf("read = %v, %v", ok, err)
				}
				i++
			}
		})
		b.Run(r.name+"/miss", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				d := unknownDigest(i)
				if _, ok, err := r.read(&d); ok || err != nil {
					b.Fatalf("read = %v, %v", ok, err)
				}
			}
		})
	}
}

// digestIDGet is digestID done with DB.Get, for comparison.
func (s *Store) digestIDGet(d *Digest) (string, bool, error) {
	var kb [33]byte
	v, closer, err := s.db.Get(digestKey(kb[:0], d))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	id := string(v)
	closer.Close()
	return id, true, nil
}

func BenchmarkRecordCodec(b *testing.B) {
	r := testRecord(id(1), "a")
	enc := r.AppendEncode(nil)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = r.AppendEncode(buf[:0])
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := DecodeRecord(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTouch(b *testing.B) {
	s := openMem(b, nil)
	mustCreate(b, s, testRecord(id(1), "a"))
	e := mustLookup(b, s, Sum("a"))
	b.Run("noop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Touch(e, benchNow)
		}
	})
}

var benchNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
