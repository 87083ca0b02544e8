package trust

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/verify/jwt"
)

// ErrClosed is returned by [Registry.Refresh] once the registry is closed.
var ErrClosed = errors.New("trust: registry closed")

// The errors of ResolveKey, built once so that a lookup never allocates.
// None of them names the key id: key ids in tokens are attacker-controlled.
var (
	errUnknownKid  = fmt.Errorf("trust: no trusted key has the token's key id: %w", jwt.ErrUntrustedKey)
	errAlgMismatch = fmt.Errorf("trust: the key with the token's key id verifies another algorithm: %w", jwt.ErrUntrustedKey)
	errKidTooLong  = fmt.Errorf("trust: the token's key id is longer than %d bytes: %w", jwt.MaxKeyIDBytes, jwt.ErrUntrustedKey)
	errRetired     = fmt.Errorf("trust: the key was retired: %w", jwt.ErrUntrustedKey)
	errAlg         = fmt.Errorf("trust: the algorithm is not accepted: %w", jwt.ErrUntrustedKey)
)

// numAlgs sizes arrays indexed by jwt.Alg (ES256 and HS256; 0 is unused).
const numAlgs = int(jwt.HS256) + 1

// Registry is verifyd's trust registry: the keys that may verify JWTs,
// from every configured source, as one immutable snapshot that
// [Registry.ResolveKey] reads with one atomic load. It is a [jwt.Resolver].
//
// A Registry is safe for concurrent use. Its goroutines (one refresh loop
// per fetched or watched source, plus in-flight refreshes) run until
// [Registry.Close].
type Registry struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	client  *http.Client
	reg     prometheus.Registerer
	metrics *metrics

	snap atomic.Pointer[snapshot]

	sources []*source // in configuration order; the slice is immutable after New
	fetched []*source // the jwks_url and oidc_issuer sources among them

	done chan struct{}  // closed by Close
	wg   sync.WaitGroup // refresh loops and flights

	// mu guards closed, the publication of snapshots and the fields of
	// every source marked "guarded by Registry.mu". It is never held
	// across I/O or while waiting for anything. It is the only lock.
	mu     sync.Mutex
	closed bool
}

var _ jwt.Resolver = (*Registry)(nil)

// snapshot is an immutable view of every trusted key.
type snapshot struct {
	byKid map[string]*jwt.Key // keys with a non-empty kid
	only  [numAlgs]*jwt.Key   // the one key of an algorithm, when there is exactly one
	noKid [numAlgs]error      // why a token without kid has no key, when only is nil
}

// resolve is ResolveKey on s, without the refresh on an unknown kid.
func (s *snapshot) resolve(alg jwt.Alg, kid string) (*jwt.Key, error) {
	if alg != jwt.ES256 && alg != jwt.HS256 {
		return nil, errAlg
	}
	var k *jwt.Key
	if kid == "" {
		if k = s.only[alg]; k == nil {
			return nil, s.noKid[alg]
		}
	} else {
		if len(kid) > jwt.MaxKeyIDBytes {
			return nil, errKidTooLong
		}
		if k = s.byKid[kid]; k == nil {
			return nil, errUnknownKid
		}
		if k.Alg() != alg {
			return nil, errAlgMismatch
		}
	}
	if k.Retired() {
		return nil, errRetired
	}
	return k, nil
}

// SourceStatus is the state of one source, for operators.
type SourceStatus struct {
	Name string
	Type SourceType
	// Keys is the number of keys the source currently contributes.
	Keys int
	// SkippedKeys is the number of keys of its current key set that are
	// not ES256 verification keys (RSA keys, encryption keys, ...).
	SkippedKeys int
	// LastSuccess is the time of the last good fetch or load; zero if none.
	LastSuccess time.Time
	// LastError is the error of the last fetch or load if it failed, and
	// "" if it succeeded.
	LastError string
	// Stale is true while a fetched source serves no keys because its last
	// good fetch is older than Config.MaxStaleness, or it never had one.
	Stale bool
}

// New validates cfg, reporting every problem at once, loads its key set
// files and secrets (a missing or invalid one is an error), fetches every
// URL and OIDC source once, and starts the refresh loops. A failed initial
// fetch is logged, not returned: that source has no keys until a fetch
// succeeds. The initial fetches run in parallel, each request bounded by
// cfg.FetchTimeout. New neither keeps nor modifies cfg and opts.
func New(cfg Config, opts *Options) (*Registry, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	cfg = cfg.clone()
	cfg.EnsureDefaults()
	badSource := make(map[int]bool)
	errs := cfg.validate(badSource)
	r := &Registry{
		cfg:     cfg,
		log:     o.Logger.With(slog.String("component", "trust")),
		now:     o.Now,
		client:  redirectSafe(o.HTTPClient),
		reg:     o.Registerer,
		metrics: newMetrics(),
		done:    make(chan struct{}),
	}
	r.mu.Lock()
	r.publishLocked()
	r.mu.Unlock()

	if len(errs) > 0 && badSource[-1] {
		// Files are read with the limits of the configuration: not now.
		return nil, errors.Join(errs...)
	}
	for i := range cfg.Sources {
		if badSource[i] {
			continue
		}
		s := r.newSource(i, &cfg.Sources[i])
		r.sources = append(r.sources, s)
		if s.typ.fetched() {
			r.fetched = append(r.fetched, s)
			continue
		}
		if err := r.loadStatic(s, o.Getenv); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sourceLocation(i, s.name), err))
		}
	}
	if len(errs) > 0 {
		r.retireAll()
		return nil, errors.Join(errs...)
	}
	if r.reg != nil {
		if err := r.metrics.register(r.reg); err != nil {
			return nil, fmt.Errorf("trust: registering metrics: %w", err)
		}
	}

	r.mu.Lock()
	flights := make([]*flight, len(r.fetched))
	for i, s := range r.fetched {
		flights[i] = r.startLocked(s)
	}
	r.mu.Unlock()
	for i, f := range flights {
		<-f.done
		r.wg.Add(1)
		go r.run(r.fetched[i], f.err != nil)
	}
	for _, s := range r.sources {
		if !s.typ.fetched() && len(s.paths) > 0 {
			r.wg.Add(1)
			go r.run(s, false)
		}
	}
	return r, nil
}

// ResolveKey returns the key that must verify a token signed with alg whose
// header names kid ("" when it names none). It implements [jwt.Resolver].
//
// A known kid is answered from the current snapshot with one atomic load
// and no allocation, as are all refusals except one: an ES256 kid that no
// source has, while some source is fetched over HTTP. Then, at most once
// per Config.UnknownKidRefresh for each such source, the lookup starts a
// refresh of the fetched sources (or joins the one in flight), waits for
// it, bounded by Config.FetchTimeout per request, and looks once more.
// Lookups of unknown kids that find the refresh rate-limited and none in
// flight fail at once, so a flood of random kids causes at most one fetch
// per source per interval.
//
// Every error wraps [jwt.ErrUntrustedKey] and never contains kid.
func (r *Registry) ResolveKey(alg jwt.Alg, kid string) (*jwt.Key, error) {
	k, err := r.snap.Load().resolve(alg, kid)
	// errUnknownKid is compared by identity: resolve returns it unwrapped.
	if err != errUnknownKid || alg != jwt.ES256 || len(r.fetched) == 0 {
		return k, err
	}
	if !r.refreshForUnknownKid() {
		return nil, err
	}
	return r.snap.Load().resolve(alg, kid)
}

// refreshForUnknownKid refreshes the fetched sources whose unknown-kid rate
// limit allows it, joins the refreshes already in flight, and waits for
// them. It reports whether any refresh completed.
func (r *Registry) refreshForUnknownKid() bool {
	now := r.now()
	var flights []*flight
	started := false
	r.mu.Lock()
	for _, s := range r.fetched {
		if s.kidRefresh.IsZero() || now.Sub(s.kidRefresh) >= r.cfg.UnknownKidRefresh || now.Before(s.kidRefresh) {
			s.kidRefresh = now
			started = true
			flights = append(flights, r.startLocked(s))
		} else if s.flight != nil {
			flights = append(flights, s.flight)
		}
	}
	r.mu.Unlock()
	if started {
		r.metrics.kidRefreshed.Inc()
	} else {
		r.metrics.kidRateLimited.Inc()
	}
	for _, f := range flights {
		select {
		case <-f.done:
		case <-r.done:
			return false
		}
	}
	return len(flights) > 0
}

// Refresh fetches every URL and OIDC source now and reloads every file that
// changed, waiting until all are done or ctx ends. A source whose refresh
// is already in flight is not fetched twice: Refresh waits for that one.
// It returns the failures, joined; a failure keeps the source's last good
// keys (subject to Config.MaxStaleness).
func (r *Registry) Refresh(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	var (
		flights []*flight
		names   []string
	)
	for _, s := range r.sources {
		if s.typ.fetched() || len(s.paths) > 0 {
			flights = append(flights, r.startLocked(s))
			names = append(names, s.name)
		}
	}
	r.mu.Unlock()
	var errs []error
	for i, f := range flights {
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return ErrClosed
		}
		if f.err != nil {
			errs = append(errs, fmt.Errorf("trust: source %s: %w", names[i], f.err))
		}
	}
	return errors.Join(errs...)
}

// Status returns the state of every source, in configuration order.
func (r *Registry) Status() []SourceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SourceStatus, len(r.sources))
	for i, s := range r.sources {
		out[i] = SourceStatus{
			Name:        s.name,
			Type:        s.typ,
			Keys:        len(s.keys),
			SkippedKeys: s.skipped,
			LastSuccess: s.lastSuccess,
			LastError:   s.lastError,
			Stale:       s.stale,
		}
	}
	return out
}

// Close stops the refresh loops, aborts the fetches in flight and waits for
// them, and unregisters the metrics. The keys stay resolvable, but are
// never refreshed again. Close is idempotent and always returns nil.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	r.mu.Unlock()
	r.wg.Wait()
	if r.reg != nil {
		r.metrics.unregister(r.reg)
	}
	return nil
}

// retireAll retires every key of r, when New fails.
func (r *Registry) retireAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.sources {
		for _, k := range s.keys {
			k.Retire()
		}
	}
}

// flight is one refresh of one source; err is valid once done is closed.
type flight struct {
	done chan struct{}
	err  error
}

// startLocked returns the refresh of s in flight, starting one if there is
// none: at most one refresh of a source runs at a time. It requires r.mu.
func (r *Registry) startLocked(s *source) *flight {
	if s.flight != nil {
		return s.flight
	}
	f := &flight{done: make(chan struct{})}
	if r.closed {
		f.err = ErrClosed
		close(f.done)
		return f
	}
	s.flight = f
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := r.refreshSource(s)
		r.mu.Lock()
		s.flight = nil
		r.mu.Unlock()
		f.err = err
		close(f.done)
	}()
	return f
}

// run refreshes s every s.refresh until Close. After a failed fetch it
// retries sooner: after 1s, doubling up to s.refresh. Intervals get up to
// 10% of random extra delay, so that daemons do not fetch in step.
func (r *Registry) run(s *source, failed bool) {
	defer r.wg.Done()
	const minBackoff = time.Second
	backoff := time.Duration(0)
	next := s.refresh
	if failed && s.typ.fetched() {
		backoff = min(minBackoff, s.refresh)
		next = backoff
	}
	t := time.NewTimer(jitter(next))
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		r.mu.Lock()
		f := r.startLocked(s)
		r.mu.Unlock()
		select {
		case <-r.done:
			return
		case <-f.done:
		}
		if f.err != nil && s.typ.fetched() {
			if backoff == 0 {
				backoff = minBackoff
			} else {
				backoff *= 2
			}
			backoff = min(backoff, s.refresh)
			next = backoff
		} else {
			backoff, next = 0, s.refresh
		}
		t.Reset(jitter(next))
	}
}

// publishLocked builds the snapshot of the sources' current keys and
// publishes it. It requires r.mu.
func (r *Registry) publishLocked() {
	n := 0
	for _, s := range r.sources {
		n += len(s.keys)
	}
	snap := &snapshot{byKid: make(map[string]*jwt.Key, n)}
	var count [numAlgs]int
	for _, s := range r.sources {
		for _, k := range s.keys {
			if k.ID() != "" {
				snap.byKid[k.ID()] = k
			}
			count[k.Alg()]++
			snap.only[k.Alg()] = k
		}
		s.m.keys.Set(float64(len(s.keys)))
	}
	for _, alg := range [...]jwt.Alg{jwt.ES256, jwt.HS256} {
		if count[alg] != 1 {
			snap.only[alg] = nil
			snap.noKid[alg] = fmt.Errorf("trust: the token names no key id and the registry holds %d %s keys: %w", count[alg], alg, jwt.ErrUntrustedKey)
		}
	}
	r.snap.Store(snap)
}
