package keystore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/internal/stripe"
	"github.com/verifyd/verifyd/rbac"
)

// Errors callers branch on.
var (
	// ErrNotFound reports that no record has the requested ID.
	ErrNotFound = errors.New("keystore: not found")
	// ErrExists reports that Create was given an ID already in use.
	ErrExists = errors.New("keystore: id already exists")
	// ErrDigestInUse reports that a digest written by Create or Update
	// already indexes another record (as its current or previous digest).
	ErrDigestInUse = errors.New("keystore: digest already in use")
	// ErrIDChanged reports that an Update function changed the record's ID.
	ErrIDChanged = errors.New("keystore: record id is immutable")
	// ErrClosed reports a call on a closed Store.
	ErrClosed = errors.New("keystore: store closed")
	// ErrCorrupt reports a store that cannot be opened because its files
	// are corrupt. It is never repaired or replaced by an empty store.
	ErrCorrupt = errors.New("keystore: store is corrupt")
)

// Key prefixes of the Pebble layout (see the package documentation).
const (
	prefixDigest            = 'd'
	prefixAgentRequest      = 'g'
	prefixTokenRevocation   = 'j'
	prefixAudit             = 'l'
	prefixMeta              = 'm'
	prefixSubjectRevocation = 'n'
	prefixRequest           = 'q'
	prefixRecord            = 'r'
	prefixSubject           = 's'
	prefixLastUsed          = 'u'
)

// genShards is the number of generation counters; a power of two.
const genShards = 4096

// An Entry is what [Store.Lookup] returns for a known digest. Entries are
// immutable (apart from unexported last-use bookkeeping and the policy
// binding [Entry.Binding] caches), cached and shared between goroutines: no
// field and nothing reachable from one may be modified. A write to the
// record makes the store build a new Entry, with no binding.
type Entry struct {
	// unusual is nil for the usual entry, the current digest of a
	// credential that is not revoked; see NotAfter and Revoked. Keeping
	// those two out of the entry keeps it in Go's 96-byte size class.
	unusual *unusualEntry

	gen      uint64       // generation of the digest's shard when the record was read
	lastUsed atomic.Int64 // Unix seconds of the last use noted by Touch
	// bind is the principal bound against the policy of its last use; see
	// Binding. Empty until the first use that asks for a scope.
	bind rbac.BindingSlot

	// The principal lives in the entry itself, so that a cache hit touches
	// one object of its own (a million cached entries do not fit in the CPU
	// caches); its Profile is shared by every entry with the same kind,
	// roles, scopes and rate limit, and stays in them.
	principal rbac.Principal
}

// unusualEntry is what an entry for a previous digest or a revoked
// credential has in addition.
type unusualEntry struct {
	notAfter time.Time
	revoked  bool
}

// NotAfter returns when the looked-up digest stops being valid: the
// credential's ExpiresAt for its current digest, the earlier of ExpiresAt
// and PrevNotAfter for its previous one. Zero means never.
func (e *Entry) NotAfter() time.Time {
	if e.unusual != nil {
		return e.unusual.notAfter
	}
	return e.principal.ExpiresAt
}

// Revoked reports whether the credential is revoked.
func (e *Entry) Revoked() bool { return e.unusual != nil && e.unusual.revoked }

// Principal returns the credential's identity: Subject, Kind (as
// Kind.String), KeyID (the record ID), Roles, ProjectRoles, Scopes,
// ExpiresAt, and Grants (Scopes, compiled). It is shared: callers must not
// modify it.
func (e *Entry) Principal() *rbac.Principal { return &e.principal }

// Binding returns e's principal bound against p, from the entry when it
// was bound against p before; see [rbac.BindingSlot.Get].
func (e *Entry) Binding(p *rbac.Policy) *rbac.Binding { return e.bind.Get(p, &e.principal) }

// touchNote is one use of a credential, on its way to the flusher.
type touchNote struct {
	id string
	at int64 // Unix seconds
}

// A Store is verifyd's credential store. It is safe for concurrent use by
// multiple goroutines, with one exception: Close must not run concurrently
// with Lookup or Touch (stop serving first); after Close they are safe and
// Lookup returns ErrClosed.
//
// Lock order: mu, then closeMu, then pendingMu; revMu is taken last and
// never held with closeMu or pendingMu.
type Store struct {
	db    *pebble.DB
	cache *ristretto.Cache[string, *Entry]
	neg   *ristretto.Cache[string, uint64] // value: generation stamp
	// filter holds every indexed digest (and some removed ones): a Lookup
	// it rules out reads neither the negative cache nor Pebble. Replaced
	// by a larger one, under mu, when it fills up; see noteDigests.
	filter atomic.Pointer[digestFilter]

	// gens are the generation counters guarding the caches; see Lookup.
	gens [genShards]atomic.Uint64

	log         *slog.Logger
	m           *metrics
	diskUsage   func() (vfs.DiskUsage, error) // of the data volume; see checkSpace
	negTTL      time.Duration
	granularity int64 // LastUsedGranularity in whole seconds

	// mu serializes writes (Create, Update, Meta, SetMeta) and Close.
	mu sync.Mutex
	// closeMu is held for reading around every read of Pebble outside mu
	// (and the cache fill that follows a Lookup's read), and for writing by
	// Close, so that nothing reads a closed database.
	closeMu sync.RWMutex
	closed  atomic.Bool

	// revMu guards the revocations in effect. They are changed only with
	// both mu and revMu held, so a holder of mu may read them without
	// revMu.
	revMu       sync.RWMutex
	tokenRevs   map[string]TokenRevocation   // by jti
	subjectRevs map[string]SubjectRevocation // by subject
	revGen      atomic.Uint64                // see RevocationGen

	// Guarded by mu: the pending access requests, the last audit sequence
	// number given, and where the next request purge pass starts.
	pendingReqs      map[string]pendingRequest // by request ID
	auditSeq         uint64
	auditRetention   time.Duration
	requestPurgeFrom []byte

	// repl, when set, commits writes to the shared log (replicated mode);
	// replicaPos is how far the replica has followed it.
	repl       Replicator
	replicaPos atomic.Pointer[ReplicaPos]

	touches   chan touchNote
	pendingMu sync.Mutex
	pending   map[string]int64 // noted uses not yet written; guarded by pendingMu
	flushIv   time.Duration
	stop      chan struct{}
	done      chan struct{}
}

// Open opens (or creates, unless opts.ErrorIfNotExists) the store in dir.
// opts may be nil for defaults. A store that fails to open because it is
// corrupt is reported as such (errors.Is(err, ErrCorrupt)); Open never
// replaces it with an empty one.
func Open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.ErrorIfNotExists {
		// Pebble would create the directory before noticing that it holds
		// no store; a wrong path must leave nothing behind.
		if _, err := o.FS.Stat(dir); err != nil {
			return nil, fmt.Errorf("keystore: open %s: no store here (and creating one is disabled): %w", dir, err)
		}
	}
	s := &Store{
		log:         o.Logger.With(slog.String("component", "keystore")),
		negTTL:      o.NegativeTTL,
		granularity: int64(o.LastUsedGranularity / time.Second),
		touches:     make(chan touchNote, o.LastUsedQueue),
		pending:     make(map[string]int64),
		flushIv:     o.LastUsedFlushInterval,
		stop:        make(chan struct{}),

		auditRetention: o.AuditRetention,
		repl:           o.Replicator,
		done:           make(chan struct{}),
	}
	s.m = newMetrics(
		func() float64 { return float64(s.cache.MaxCost() - s.cache.RemainingCost()) },
		func() float64 { return float64(s.neg.MaxCost() - s.neg.RemainingCost()) },
		func() float64 { n, _ := s.revocationCounts(); return float64(n) },
		func() float64 { _, n := s.revocationCounts(); return float64(n) },
		func() float64 { return float64(s.filter.Load().sizeBytes()) }, // 0 when disabled
	)
	if o.Registerer != nil {
		for _, c := range s.m.collectors {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("keystore: register metrics: %w", err)
			}
		}
	}

	var err error
	s.cache, err = ristretto.NewCache(&ristretto.Config[string, *Entry]{
		NumCounters:        10 * o.CacheEntries,
		MaxCost:            o.CacheEntries,
		BufferItems:        64,
		KeyToHash:          keyHash,
		IgnoreInternalCost: true,
		OnEvict:            func(*ristretto.Item[*Entry]) { s.countEviction(s.m.evictions) },
	})
	if err != nil {
		return nil, fmt.Errorf("keystore: cache: %w", err)
	}
	s.neg, err = ristretto.NewCache(&ristretto.Config[string, uint64]{
		NumCounters:        10 * o.NegativeEntries,
		MaxCost:            o.NegativeEntries,
		BufferItems:        64,
		KeyToHash:          keyHash,
		IgnoreInternalCost: true,
		OnEvict:            func(*ristretto.Item[uint64]) { s.countEviction(s.m.negEvictions) },
	})
	if err != nil {
		s.cache.Close()
		return nil, fmt.Errorf("keystore: negative cache: %w", err)
	}

	cache := pebble.NewCache(o.BlockCacheBytes)
	defer cache.Unref()
	po := &pebble.Options{
		FS:               o.FS,
		Cache:            cache,
		ErrorIfNotExists: o.ErrorIfNotExists,
		Logger:           pebbleLogger{s.log},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { s.log.Error("pebble background error", slog.Any("err", err)) },
			DiskSlow: func(info pebble.DiskSlowInfo) {
				s.log.Warn("disk slow", slog.String("path", info.Path), slog.Duration("duration", info.Duration))
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				s.log.Warn("write stall", slog.String("reason", info.Reason))
			},
			// Pebble's default stops the process. The read that met the
			// damage fails instead: Open reports ErrCorrupt, a lookup an
			// error (its verification answers unavailable), and the rest
			// of the store keeps serving.
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				s.log.Error("on-disk corruption: reads of the damaged range fail; restore the store from a backup",
					slog.String("path", info.Path), slog.Any("err", info.Details))
			},
		},
	}
	po.WithFSDefaults() // disk-health checking, reported through DiskSlow
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	s.diskUsage = func() (vfs.DiskUsage, error) { return o.FS.GetDiskUsage(dir) }
	if err = s.checkSpace(); err == nil {
		s.db, err = openPebble(dir, po)
	}
	if err != nil {
		s.cache.Close()
		s.neg.Close()
		if errors.Is(err, ErrDiskFull) {
			return nil, fmt.Errorf("keystore: open %s: %w: free space on the volume, then start again", dir, err)
		}
		if pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("%w: open %s: %w", ErrCorrupt, dir, err)
		}
		return nil, fmt.Errorf("keystore: open %s: %w", dir, err)
	}
	if f, err := s.buildDigestFilter(0); err == nil {
		s.filter.Store(f)
	} else {
		s.disableDigestFilter(err)
	}
	err = s.loadRevocations(time.Now())
	if err == nil {
		err = s.loadRequests()
	}
	if err == nil {
		err = s.loadAuditSeq()
	}
	if err == nil {
		err = s.loadReplicaPos()
	}
	if err != nil {
		s.cache.Close()
		s.neg.Close()
		s.db.Close()
		if pebble.IsCorruptionError(err) && !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil, err
	}
	go s.flushLoop()
	return s, nil
}

// countEviction counts a cache eviction, except the clearing of the caches
// by Close.
func (s *Store) countEviction(c prometheus.Counter) {
	if !s.closed.Load() {
		c.Inc()
	}
}

// Close writes pending last-use times (synced), then closes the caches and
// the database. Calls after the first return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	s.closed.Store(true)
	close(s.stop)
	<-s.done
	s.cache.Close()
	s.neg.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("keystore: close: %w", err)
	}
	return nil
}

// shard returns the generation counter guarding d.
func (s *Store) shard(d *Digest) *atomic.Uint64 {
	return &s.gens[binary.LittleEndian.Uint16(d[16:18])%genShards]
}

// Lookup returns the entry of the credential whose current or (during a
// rotation grace) previous secret has digest d, or (nil, nil) when d is
// unknown. The error is non-nil only for I/O failure or corruption. A
// cache hit allocates nothing.
//
// Lookup is linearizable with writes: once Create or Update has returned, no
// Lookup that starts afterwards returns the state from before that write.
// The caches are made safe by generation stamps:
//
//   - Lookup loads the generation g of d's shard before anything else, and
//     stamps an entry it builds from Pebble with g;
//   - a writer commits to Pebble, then increments the generation of every
//     digest shard the write touched (old and new digests), then deletes
//     those digests from the caches;
//   - a cached entry counts only if its stamp equals the current generation.
//
// Take a write W, and a Lookup L that starts after W returned and finds an
// entry stamped g equal to the generation it loaded. Generations only grow,
// and L's load followed W's increment, so the Lookup that built the entry
// loaded g after W's increment too, hence after W's commit, and read
// Pebble after that: the entry reflects W (or later writes). An entry built
// from a read before W's commit carries an older stamp and is ignored, even
// if ristretto's asynchronous Set buffer stores it after W's deletions.
// A Lookup that misses reads Pebble after W's commit and so sees W. The
// same holds for the negative cache, so a new digest is visible at once.
func (s *Store) Lookup(d Digest) (*Entry, error) {
	kb := keyBufs.Get().(*Digest)
	*kb = d
	e, err := s.lookup(kb)
	keyBufs.Put(kb)
	return e, err
}

// lookup is Lookup of a heap-resident digest, which it must not retain.
func (s *Store) lookup(d *Digest) (*Entry, error) {
	gen := s.shard(d).Load()
	key := d.cacheKey()
	st := stripe.Index() // the metrics stripe of this Lookup's counts
	if e, ok := s.cache.Get(key); ok && e.gen == gen {
		s.m.count(st, lookupHit)
		return e, nil
	}
	s.m.count(st, lookupMiss)
	if !s.filter.Load().mayContain(d) {
		s.m.count(st, lookupFiltered)
		return nil, nil
	}
	if g, ok := s.neg.Get(key); ok && g == gen {
		s.m.count(st, lookupNegHit)
		return nil, nil
	}
	s.m.count(st, lookupNegMiss)

	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	s.m.reads.Inc()
	e, err := s.load(d, gen)
	if err != nil {
		s.m.readErrors.Inc()
		s.log.Error("lookup failed", slog.Any("digest", *d), slog.Any("err", err))
		return nil, err
	}
	if e == nil {
		s.neg.SetWithTTL(key, gen, 1, s.negTTL)
		return nil, nil
	}
	s.cache.Set(key, e, 1)
	return e, nil
}

// load reads the record indexed by d and builds its entry, stamped with gen.
// It returns (nil, nil) when d is not indexed, or indexes a record that no
// longer lists d. closeMu must be held for reading.
func (s *Store) load(d *Digest, gen uint64) (*Entry, error) {
	id, ok, err := s.digestID(d)
	if err != nil || !ok {
		return nil, err
	}
	r, err := s.getRecord(id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return newEntry(&r, *d, gen)
}

// digestID reads the digest index through an iterator that consults the
// bloom filters of every level, L6 included: most Lookups that reach Pebble
// are for unknown digests, and DB.Get skips the L6 filters. Measured on 10k
// records compacted into L6 (BenchmarkDigestIndex, 2-core VM): a miss costs
// 0.77 µs this way against 1.05 µs with DB.Get; a hit 1.37 µs against
// 1.12 µs, which is 3% of a whole cache-cold Lookup hit (about 8 µs, most
// of it decoding the record and compiling its scopes).
// closeMu must be held for reading, or mu.
func (s *Store) digestID(d *Digest) (id string, ok bool, err error) {
	var kb [1 + len(Digest{})]byte
	key := digestKey(kb[:0], d)
	it, err := s.db.NewIter(&pebble.IterOptions{UseL6Filters: true})
	if err != nil {
		return "", false, fmt.Errorf("keystore: read digest index: %w", err)
	}
	if it.SeekPrefixGE(key) && string(it.Key()) == string(key) {
		var v []byte
		if v, err = it.ValueAndErr(); err == nil {
			id, ok = string(v), true
		}
	}
	if err == nil {
		err = it.Error()
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, fmt.Errorf("keystore: read digest index: %w", err)
	}
	return id, ok, nil
}

// newEntry builds the entry for digest d of record r, or returns nil when r
// does not list d.
func newEntry(r *Record, d Digest, gen uint64) (*Entry, error) {
	e := &Entry{gen: gen}
	switch {
	case d == r.Digest:
		if r.Revoked() {
			e.unusual = &unusualEntry{notAfter: r.ExpiresAt, revoked: true}
		}
	case d == r.PrevDigest && !d.IsZero():
		e.unusual = &unusualEntry{notAfter: earliest(r.ExpiresAt, r.PrevNotAfter), revoked: r.Revoked()}
	default:
		return nil, nil
	}
	// The entry must not keep the decoded record alive: subject and ID
	// share one new allocation, and the rest is the shared profile.
	prof, err := sharedProfile(r)
	if err != nil {
		return nil, fmt.Errorf("keystore: record %s: %w", r.ID, err)
	}
	subjectID := r.Subject + r.ID // a new string: shares nothing with the record
	e.principal = rbac.Principal{
		Subject:   subjectID[:len(r.Subject)],
		KeyID:     subjectID[len(r.Subject):],
		ExpiresAt: r.ExpiresAt,
		Profile:   prof,
	}
	return e, nil
}

// interned holds one copy of each pattern, role and project name seen, up
// to maxInterned distinct strings: many credentials carry the same ones, and
// a shared copy both saves memory and stays in the CPU caches where a
// million separate copies would not.
var interned = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

const maxInterned = 1 << 16

// internStrings replaces each string of ss by its shared copy, in place
// (ss is a freshly decoded record's slice), and returns ss.
func internStrings(ss []string) []string {
	interned.Lock()
	defer interned.Unlock()
	for i, s := range ss {
		ss[i] = internLocked(s)
	}
	return ss
}

// internString returns the shared copy of s.
func internString(s string) string {
	interned.Lock()
	defer interned.Unlock()
	return internLocked(s)
}

// internLocked returns the shared copy of s, making one (detached from any
// larger string s may be part of) while the table has room, or a private
// copy when it is full. interned must be locked.
func internLocked(s string) string {
	if q, ok := interned.m[s]; ok {
		return q
	}
	q := strings.Clone(s)
	if len(interned.m) < maxInterned {
		interned.m[q] = q
	}
	return q
}

// earliest returns the earlier of two deadlines, where zero means never.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// Get returns the record with the given ID, or ErrNotFound.
func (s *Store) Get(id string) (Record, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return Record{}, ErrClosed
	}
	return s.getRecord(id)
}

// getRecord reads and decodes the record id. closeMu must be held for
// reading, or mu.
func (s *Store) getRecord(id string) (Record, error) {
	v, closer, err := s.db.Get(recordKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("keystore: read record %s: %w", id, err)
	}
	r, err := DecodeRecord(v)
	closer.Close()
	if err != nil {
		return Record{}, fmt.Errorf("keystore: record %s: %w", id, err)
	}
	return r, nil
}

// List returns the records of subject, or every record when subject is "",
// sorted by ID. It reads one consistent snapshot.
func (s *Store) List(subject string) ([]Record, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()

	var lower []byte
	if subject == "" {
		lower = []byte{prefixRecord}
	} else {
		lower = subjectKey(subject, "")
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, fmt.Errorf("keystore: list: %w", err)
	}
	defer it.Close()
	var out []Record
	for ok := it.First(); ok; ok = it.Next() {
		if subject == "" {
			v, err := it.ValueAndErr()
			if err != nil {
				return nil, fmt.Errorf("keystore: list: %w", err)
			}
			r, err := DecodeRecord(v)
			if err != nil {
				return nil, fmt.Errorf("keystore: record %s: %w", it.Key()[1:], err)
			}
			out = append(out, r)
			continue
		}
		id := string(it.Key()[len(lower):])
		v, closer, err := snap.Get(recordKey(id))
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("keystore: list: %w", err)
		}
		r, err := DecodeRecord(v)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("keystore: record %s: %w", id, err)
		}
		if r.Subject == subject {
			out = append(out, r)
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("keystore: list: %w", err)
	}
	return out, nil
}

// LastUsed returns when the credential id was last used, as noted by Touch,
// to LastUsedGranularity. ok is false if no use was ever noted. Uses noted
// but not yet written are included.
func (s *Store) LastUsed(id string) (t time.Time, ok bool, err error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return time.Time{}, false, ErrClosed
	}
	if _, closer, err := s.db.Get(recordKey(id)); errors.Is(err, pebble.ErrNotFound) {
		return time.Time{}, false, ErrNotFound
	} else if err != nil {
		return time.Time{}, false, fmt.Errorf("keystore: read record %s: %w", id, err)
	} else {
		closer.Close()
	}
	var sec int64
	v, closer, err := s.db.Get(lastUsedKey(id))
	switch {
	case err == nil:
		if len(v) == 8 {
			sec = int64(binary.BigEndian.Uint64(v))
		}
		closer.Close()
		if sec == 0 {
			return time.Time{}, false, fmt.Errorf("keystore: last-used time of %s is corrupt", id)
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return time.Time{}, false, fmt.Errorf("keystore: read last-used time of %s: %w", id, err)
	}
	s.pendingMu.Lock()
	sec = max(sec, s.pending[id])
	s.pendingMu.Unlock()
	if sec == 0 {
		return time.Time{}, false, nil
	}
	return time.Unix(sec, 0).UTC(), true, nil
}

// Key encodings.

func digestKey(dst []byte, d *Digest) []byte {
	return append(append(dst, prefixDigest), d[:]...)
}

func recordKey(id string) []byte {
	return append([]byte{prefixRecord}, id...)
}

func lastUsedKey(id string) []byte {
	return append([]byte{prefixLastUsed}, id...)
}

func metaKey(name string) []byte {
	return append([]byte{prefixMeta}, name...)
}

// subjectKey is the subject index key of record id; with id "" it is the
// prefix of all of subject's keys. Subjects contain no NUL (validLabel).
func subjectKey(subject, id string) []byte {
	k := make([]byte, 0, 2+len(subject)+len(id))
	k = append(k, prefixSubject)
	k = append(k, subject...)
	k = append(k, 0)
	return append(k, id...)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
// p must not end in 0xff (no prefix built here does: they end in a prefix
// letter or NUL).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1]++
	return end
}

// WaitCache blocks until the cache insertions issued so far have been
// applied. Lookups never need it (a pending insertion is only a later hit);
// tests and benchmarks call it to measure a warm cache.
func (s *Store) WaitCache() {
	s.cache.Wait()
	s.neg.Wait()
}

// Compact flushes the in-memory writes and compacts the whole store into
// its bottom level. Pebble compacts in the background on its own; this is
// for after a bulk import, when the store should settle before serving (and
// for benchmarks that measure a settled store). It can take a while on a
// large store; ctx bounds it.
func (s *Store) Compact(ctx context.Context) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("keystore: compact: %w", err)
	}
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff, 0xff}, true); err != nil {
		return fmt.Errorf("keystore: compact: %w", err)
	}
	return nil
}
