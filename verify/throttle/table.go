package throttle

import (
	"sync"
	"sync/atomic"
)

// Geometry of the fixed tables: numShards shards, each a lock and an
// array of sets of `ways` entries. A key has exactly one set; a new key
// that finds its set full takes the place of the least useful entry in
// it. Nothing is allocated after newFailTable and newBucketTable.
const (
	numShards = 64
	ways      = 8
)

// setsPerShard returns the number of sets each shard needs for at least
// entries entries: a power of two, so that a set is picked with a mask.
func setsPerShard(entries int) uint64 {
	sets := uint64(1)
	for sets*numShards*ways < uint64(entries) {
		sets <<= 1
	}
	return sets
}

// A failEntry counts one key's failures. Times are nanoseconds on the
// limiter's monotonic clock, which never reads 0.
type failEntry struct {
	key   uint64 // 0: a free slot
	start int64  // when the current window began
	until int64  // end of the cool-down; not after now when there is none
	count uint32 // failures in the current window
}

// failTable counts failures per key and holds the keys in cool-down. It
// is safe for concurrent use.
type failTable struct {
	threshold uint32
	window    int64
	cooldown  int64
	sets      uint64 // per shard, a power of two
	shards    [numShards]failShard
	// maxUntil is the latest cool-down end ever set, or 0 once it has
	// passed: while it is 0 or past, no key is in cool-down and blocked
	// answers without a lock.
	maxUntil atomic.Int64
}

type failShard struct {
	mu      sync.Mutex  // guards entries
	entries []failEntry // sets * ways
	_       [40]byte    // keeps neighbouring shards' locks off one cache line
}

func newFailTable(entries int, threshold int, window, cooldown int64) *failTable {
	t := &failTable{threshold: uint32(threshold), window: window, cooldown: cooldown, sets: setsPerShard(entries)}
	for i := range t.shards {
		t.shards[i].entries = make([]failEntry, t.sets*ways)
	}
	return t
}

// set returns the shard of key, locked, and its set. The caller unlocks
// the shard.
func (t *failTable) set(key uint64) (*failShard, []failEntry) {
	sh := &t.shards[key%numShards]
	i := ((key / numShards) & (t.sets - 1)) * ways
	sh.mu.Lock()
	return sh, sh.entries[i : i+ways]
}

// blocked reports whether key is in cool-down at now, and until when.
func (t *failTable) blocked(key uint64, now int64) (until int64, ok bool) {
	m := t.maxUntil.Load()
	if m == 0 {
		return 0, false
	}
	if now >= m {
		// Every cool-down has ended; a newer one fails this swap.
		t.maxUntil.CompareAndSwap(m, 0)
		return 0, false
	}
	sh, set := t.set(key)
	defer sh.mu.Unlock()
	for i := range set {
		if e := &set[i]; e.key == key && e.until > now {
			return e.until, true
		}
	}
	return 0, false
}

// active reports whether some key may be in cool-down at now.
func (t *failTable) active(now int64) bool {
	m := t.maxUntil.Load()
	return m != 0 && now < m
}

// fail counts a failure of key at now. It reports whether this failure
// began a cool-down, and until when the key is blocked (0 when it is
// not).
func (t *failTable) fail(key uint64, now int64) (tripped bool, until int64) {
	sh, set := t.set(key)
	defer sh.mu.Unlock()
	e := t.slot(set, key, now)
	if e.until > now {
		return false, e.until
	}
	if now-e.start >= t.window || e.count == 0 {
		e.start, e.count = now, 0
	}
	e.count++
	if e.count < t.threshold {
		return false, 0
	}
	e.until, e.count = now+t.cooldown, 0
	for {
		m := t.maxUntil.Load()
		if e.until <= m || t.maxUntil.CompareAndSwap(m, e.until) {
			break
		}
	}
	return true, e.until
}

// slot returns key's entry in set, making one when there is none: in a
// free slot, else in place of the entry the better order puts first. The
// shard must be locked.
func (t *failTable) slot(set []failEntry, key uint64, now int64) *failEntry {
	var free, victim *failEntry
	for i := range set {
		e := &set[i]
		switch {
		case e.key == key:
			return e
		case e.key == 0:
			if free == nil {
				free = e
			}
		case victim == nil || t.better(e, victim, now):
			victim = e
		}
	}
	if free != nil {
		victim = free
	}
	*victim = failEntry{key: key}
	return victim
}

// better reports whether e is a better entry to displace than v at now:
// an entry not in cool-down before one in cool-down, and among those not
// in cool-down the one whose window began first (an idle one first of
// all); among those in cool-down, the one whose cool-down ends first. A
// flood of new keys thus displaces the keys in cool-down last.
func (t *failTable) better(e, v *failEntry, now int64) bool {
	eb, vb := e.until > now, v.until > now
	switch {
	case eb != vb:
		return vb // displace one not in cool-down first
	case eb:
		return e.until < v.until
	}
	return e.start < v.start
}

// A bucket is one credential's rate-limit state: the theoretical arrival
// time of the generic cell rate algorithm (GCRA), which is a token bucket
// held in one number.
type bucket struct {
	key uint64 // 0: a free slot
	tat int64  // the time the bucket is full again; not after now when it is
}

// bucketTable holds the rate-limit buckets of credentials. It is safe for
// concurrent use.
type bucketTable struct {
	sets   uint64
	shards [numShards]bucketShard
}

type bucketShard struct {
	mu      sync.Mutex // guards buckets
	buckets []bucket   // sets * ways
	_       [40]byte
}

func newBucketTable(entries int) *bucketTable {
	t := &bucketTable{sets: setsPerShard(entries)}
	for i := range t.shards {
		t.shards[i].buckets = make([]bucket, t.sets*ways)
	}
	return t
}

// take takes one request from key's bucket under rate r at now. When the
// bucket is empty it takes nothing and returns how long until it holds a
// request again.
func (t *bucketTable) take(key uint64, r Rate, now int64) (ok bool, retry int64) {
	sh := &t.shards[key%numShards]
	i := ((key / numShards) & (t.sets - 1)) * ways
	sh.mu.Lock()
	defer sh.mu.Unlock()
	set := sh.buckets[i : i+ways]
	var b *bucket
	for j := range set {
		e := &set[j]
		if e.key == key {
			b = e
			break
		}
		// A new key displaces the bucket that is full again first (or
		// closest to it): it has the least to lose.
		if b == nil || e.tat < b.tat {
			b = e
		}
	}
	if b.key != key {
		*b = bucket{key: key}
	}
	interval := r.interval()
	tat := max(b.tat, now)
	if late := tat - now - interval*(r.Count-1); late > 0 {
		return false, late
	}
	b.tat = tat + interval
	return true, 0
}
