package keystore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// A digestFilter is a Bloom filter over every digest the store indexes, in
// memory, so that a Lookup of an unknown digest (a flood of random
// well-formed keys) is answered without touching the negative cache or
// Pebble. It has no false negatives: every indexed digest is in it (see
// Store.noteDigests). A false positive only costs the lookup it would have
// cost without the filter. Removed digests stay in it until the next build.
//
// It is blocked: the four bits of a digest lie in one 64-bit word, so a
// test reads one word. A digest is a SHA-256, uniformly distributed and
// beyond a client's control, so its bytes serve as the hash: bytes 24-31
// choose the word and bytes 20-22 the bits, bytes neither the caches' key
// hashes (bytes 0-15) nor the generation shards (bytes 16-17) use.
type digestFilter struct {
	words    []atomic.Uint64
	mask     uint64       // len(words) - 1, a power of two minus one
	capacity int          // digests it holds before it is rebuilt larger
	added    atomic.Int64 // digests added, removed ones included
}

const (
	// filterBitsPerDigest is the filter's size per digest when full: with
	// four bits in a 64-bit word, about one unknown digest in 1 000 then
	// passes it (measured: TestDigestFilterFalsePositives).
	filterBitsPerDigest = 32
	minFilterWords      = 1 << 10 // 8 KiB, 2048 digests
)

// newDigestFilter returns an empty filter with room for at least 2n
// digests.
func newDigestFilter(n int) *digestFilter {
	return emptyDigestFilter(filterWords(n))
}

// filterWords returns the number of words of a filter with room for at
// least 2n digests.
func filterWords(n int) int {
	words := minFilterWords
	for words*64/filterBitsPerDigest < 2*n {
		words *= 2
	}
	return words
}

// emptyDigestFilter returns an empty filter of words words, a power of two.
func emptyDigestFilter(words int) *digestFilter {
	return &digestFilter{
		words:    make([]atomic.Uint64, words),
		mask:     uint64(words - 1),
		capacity: words * 64 / filterBitsPerDigest,
	}
}

// probe returns the word index and bit mask of d.
func (f *digestFilter) probe(d *Digest) (uint64, uint64) {
	h := binary.LittleEndian.Uint32(d[20:24])
	bits := uint64(1)<<(h&63) | uint64(1)<<(h>>6&63) | uint64(1)<<(h>>12&63) | uint64(1)<<(h>>18&63) // 24 bits: bytes 20-22
	return binary.LittleEndian.Uint64(d[24:32]) & f.mask, bits
}

// add puts d in the filter. It is safe to call concurrently with
// mayContain and with itself.
func (f *digestFilter) add(d *Digest) {
	f.set(d)
	f.added.Add(1)
}

// set puts d in the filter without counting it.
func (f *digestFilter) set(d *Digest) {
	i, bits := f.probe(d)
	f.words[i].Or(bits)
}

// mayContain reports false when d was certainly never added. A nil filter
// (see disableDigestFilter) contains every digest.
func (f *digestFilter) mayContain(d *Digest) bool {
	if f == nil {
		return true
	}
	i, bits := f.probe(d)
	return f.words[i].Load()&bits == bits
}

// sizeBytes returns the memory the filter's bits take.
func (f *digestFilter) sizeBytes() int {
	if f == nil {
		return 0
	}
	return len(f.words) * 8
}

// buildDigestFilter reads the whole digest index into a new filter with
// room for twice the digests it holds, and for at least 2*hint. It reads
// the index once unless it holds more than buildFilterDigests (or hint)
// digests: the filter starts that large and is folded down to size after.
// Writes must be excluded (mu held, or Open), so that none lands between
// the read and the filter's publication.
func (s *Store) buildDigestFilter(hint int) (*digestFilter, error) {
	n := max(hint, buildFilterDigests)
	for {
		f := newDigestFilter(n)
		full, err := s.fillDigestFilter(f)
		if err != nil {
			return nil, err
		}
		if !full {
			if w := filterWords(max(int(f.added.Load()), hint)); w < len(f.words) {
				f = f.shrink(w)
			}
			return f, nil
		}
		n = 2 * f.capacity // read again into one four times as large
	}
}

// buildFilterDigests is the number of digests buildDigestFilter makes room
// for before it knows how many there are: a million (a 4 MiB filter while
// it reads).
const buildFilterDigests = 1 << 19

// shrink returns f folded down to words words (a smaller power of two),
// with every digest f holds: a digest's word index is its bits under the
// mask, so the words that share those bits fold onto one. f must not be in
// use.
func (f *digestFilter) shrink(words int) *digestFilter {
	g := emptyDigestFilter(words)
	for i := range f.words {
		g.words[i&(words-1)].Or(f.words[i].Load())
	}
	g.added.Store(f.added.Load())
	return g
}

// fillDigestFilter adds every indexed digest to f, reading the index in
// as many parts at once as there are processors (at most 8): digests are
// spread evenly over their first byte. full reports that f reached its
// capacity first.
func (s *Store) fillDigestFilter(f *digestFilter) (full bool, err error) {
	parts := min(runtime.GOMAXPROCS(0), 8)
	fulls, errs := make([]bool, parts), make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		lower, upper := []byte{prefixDigest, byte(i * 256 / parts)}, []byte{prefixDigest, byte((i + 1) * 256 / parts)}
		if i == 0 {
			lower = []byte{prefixDigest}
		}
		if i == parts-1 {
			upper = prefixEnd([]byte{prefixDigest})
		}
		wg.Go(func() { fulls[i], errs[i] = s.fillDigestRange(f, lower, upper) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	return slices.Contains(fulls, true), nil
}

// fillDigestRange adds the indexed digests of keys in [lower, upper) to f.
func (s *Store) fillDigestRange(f *digestFilter, lower, upper []byte) (full bool, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return false, fmt.Errorf("keystore: read digest index: %w", err)
	}
	defer it.Close()
	// The parts count into f.added a chunk at a time, so as not to contend
	// for it: f may take up to a chunk per part beyond its capacity.
	const chunk = 1024
	var d Digest
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 1+len(d) {
			return false, fmt.Errorf("%w: digest index key %x", ErrCorrupt, k)
		}
		if n++; n == chunk {
			if f.added.Add(chunk) > int64(f.capacity) {
				return true, nil
			}
			n = 0
		}
		copy(d[:], k[1:])
		f.set(&d)
	}
	if f.added.Add(int64(n)) > int64(f.capacity) {
		return true, nil
	}
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("keystore: read digest index: %w", err)
	}
	return false, nil
}

// noteDigests adds to the digest filter every digest the records of cs
// index anew, before cs is committed: a Lookup that starts once the write
// returned finds them in the filter. When they would fill it, the filter
// is first rebuilt from the index, larger and without the digests removed
// since the last build. mu must be held.
func (s *Store) noteDigests(cs *ChangeSet) {
	var added []Digest
	for _, c := range cs.Records {
		added = append(added, addedDigests(c.Old, c.New)...)
	}
	if len(added) == 0 {
		return
	}
	f := s.filter.Load()
	if f == nil {
		return
	}
	if n := int(f.added.Load()) + len(added); n > f.capacity {
		nf, err := s.buildDigestFilter(n)
		if err != nil {
			s.disableDigestFilter(err)
			return
		}
		s.filter.Store(nf)
		s.m.filterBuilds.Inc()
		f = nf
	}
	for i := range added {
		f.add(&added[i])
	}
}

// disableDigestFilter stops filtering lookups when the digest index could
// not be read whole: every lookup then goes to the caches and Pebble, as
// without a filter, and the damage surfaces in the lookups that meet it
// rather than stopping the store. It lasts until the next Open.
func (s *Store) disableDigestFilter(err error) {
	s.filter.Store(nil)
	s.log.Error("digest filter disabled: the digest index could not be read; unknown keys now cost a store read each until restart",
		slog.Any("err", err))
}
