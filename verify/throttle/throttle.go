package throttle

import (
	"context"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// Verifier is what a Gate asks: *verify.Verifier implements it.
type Verifier interface {
	Verify(token, scope string) verify.Result
}

var _ Verifier = (*verify.Verifier)(nil)

// Options holds a Limiter's collaborators. The zero value is usable.
type Options struct {
	// Now returns the current time. The default is time.Now; tests inject
	// a fake clock.
	Now func() time.Time
	// Registerer receives the throttle's metrics. nil means none.
	Registerer prometheus.Registerer
	// Logger receives the cool-downs that begin. nil means slog.Default().
	Logger *slog.Logger
}

// A Limiter holds the throttle's state: failures per source and per PAT
// id, and the credentials' rate-limit buckets, in fixed tables allocated
// by New. Transports verify through its Gates. It is safe for concurrent
// use.
type Limiter struct {
	sources *failTable // nil when sources are not counted
	keys    *failTable // nil when PAT ids are not counted
	buckets *bucketTable
	roles   map[string]Rate
	proxies []netip.Prefix
	header  string
	peers   bool

	epoch   time.Time
	now     func() time.Time
	log     *slog.Logger
	lastLog atomic.Int64 // clock reading of the last cool-down logged

	rejected  *prometheus.CounterVec
	cooldowns *prometheus.CounterVec
}

// seed keys the hashes of sources, ids and credentials: a per-process
// random seed, so that nobody can choose addresses or ids that share a
// table entry with someone else's.
var seed = maphash.MakeSeed()

// New returns a Limiter for cfg, or nil when cfg disables throttling.
func New(cfg Config, opts *Options) (*Limiter, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	proxies, _ := parsePrefixes(cfg.TrustedProxies)
	l := &Limiter{
		buckets: newBucketTable(cfg.Credentials),
		roles:   map[string]Rate{},
		proxies: proxies,
		header:  cfg.ClientIPHeader,
		peers:   cfg.SocketPeers,
		epoch:   o.Now(),
		now:     o.Now,
		log:     o.Logger.With(slog.String("component", "throttle")),
	}
	window, cooldown := int64(cfg.Window), int64(cfg.Cooldown)
	if cfg.Failures > 0 {
		l.sources = newFailTable(cfg.Entries, cfg.Failures, window, cooldown)
	}
	if cfg.KeyFailures > 0 {
		l.keys = newFailTable(cfg.Entries, cfg.KeyFailures, window, cooldown)
	}
	for role, s := range cfg.RoleRateLimits {
		l.roles[role], _ = ParseRate(s)
	}
	l.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd",
		Subsystem: "throttle",
		Name:      "rejected_total",
		Help:      "Verifications answered rate_limited, by interface (http, socket) and reason: source (the client address or socket peer is in a cool-down), key (the PAT id is in a cool-down), credential (the credential's rate limit is spent).",
	}, []string{"interface", "reason"})
	l.cooldowns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd",
		Subsystem: "throttle",
		Name:      "cooldowns_total",
		Help:      "Cool-downs begun after too many failed verifications, by interface (http, socket) and kind: source or key (a PAT id).",
	}, []string{"interface", "kind"})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{l.rejected, l.cooldowns} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// clock returns the time on the limiter's monotonic clock, in
// nanoseconds; it never reads 0.
func (l *Limiter) clock() int64 { return int64(l.now().Sub(l.epoch)) + 1 }

// TrustedProxy reports whether a request arriving from a comes from a
// trusted proxy, whose ClientIPHeader names the client to count.
func (l *Limiter) TrustedProxy(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIPHeader returns the header in which trusted proxies name their
// client.
func (l *Limiter) ClientIPHeader() string { return l.header }

// SocketPeers reports whether failures on the Unix socket are counted per
// peer uid.
func (l *Limiter) SocketPeers() bool { return l.peers }

// ForwardedSource returns the source a trusted proxy names in its
// ClientIPHeader value v: for X-Forwarded-For, the rightmost address that
// is not itself a trusted proxy; for any other header, its one address.
// A value that names no such address (absent, malformed, or only trusted
// proxies) gives no source. v is not kept.
func (l *Limiter) ForwardedSource(v string) Source {
	if !strings.EqualFold(l.header, "X-Forwarded-For") {
		a, ok := parseHost(strings.TrimSpace(v))
		if !ok || l.TrustedProxy(a) {
			return Source{}
		}
		return AddrSource(a)
	}
	for v != "" {
		i := strings.LastIndexByte(v, ',')
		a, ok := parseHost(strings.TrimSpace(v[i+1:]))
		if !ok {
			return Source{}
		}
		if !l.TrustedProxy(a) {
			return AddrSource(a)
		}
		v = v[:max(i, 0)]
	}
	return Source{}
}

// parseHost parses an address, alone or with a port ("192.0.2.1:443",
// "[2001:db8::1]:443").
func parseHost(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

// Source kinds.
const (
	kindNone uint8 = iota
	kindAddr
	kindUID
)

// A Source is who asks for a verification: a client address (an IPv4
// address, or the /64 prefix of an IPv6 address, since one client
// commonly holds a whole /64) or a socket peer's uid. The zero Source is
// none: its failures are not counted, and it is never in a cool-down.
type Source struct {
	kind uint8
	uid  uint32
	addr netip.Addr
}

// AddrSource returns the source of a client at address a.
func AddrSource(a netip.Addr) Source {
	a = a.Unmap()
	switch {
	case a.Is4():
	case a.Is6():
		a = netip.PrefixFrom(a.WithZone(""), 64).Masked().Addr()
	default:
		return Source{}
	}
	return Source{kind: kindAddr, addr: a}
}

// UIDSource returns the source of a socket peer whose process runs as
// uid.
func UIDSource(uid uint32) Source { return Source{kind: kindUID, uid: uid} }

// IsZero reports whether s is no source.
func (s Source) IsZero() bool { return s.kind == kindNone }

// String describes s for logs: "192.0.2.7", "2001:db8::/64", "uid 1000",
// or "none".
func (s Source) String() string {
	switch {
	case s.kind == kindUID:
		return "uid " + strconv.FormatUint(uint64(s.uid), 10)
	case s.kind == kindAddr && s.addr.Is6():
		return s.addr.String() + "/64"
	case s.kind == kindAddr:
		return s.addr.String()
	}
	return "none"
}

// key returns s's key in the source table.
func (s Source) key() uint64 {
	var b [17]byte
	b[0] = s.kind
	if s.kind == kindUID {
		b[1], b[2], b[3], b[4] = byte(s.uid), byte(s.uid>>8), byte(s.uid>>16), byte(s.uid>>24)
	} else {
		a := s.addr.As16()
		copy(b[1:], a[:])
	}
	return nonZero(maphash.Bytes(seed, b[:]))
}

// idKey returns the key of a PAT id in the id table.
func idKey(id string) uint64 { return nonZero(maphash.String(seed, id)) }

// credentialKey returns the key of p's bucket: a stored key's id; a JWT's
// source and jti, or source and subject when it has no jti.
func credentialKey(p *rbac.Principal) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(p.Kind)
	h.WriteByte(0)
	h.WriteString(p.Source)
	h.WriteByte(0)
	if p.KeyID != "" {
		h.WriteString(p.KeyID)
	} else {
		h.WriteByte(1)
		h.WriteString(p.Subject)
	}
	return nonZero(h.Sum64())
}

func nonZero(k uint64) uint64 { return max(k, 1) }

// rate returns p's rate limit: its own (a stored key's "rate_limit"
// metadata) when it is valid, else the highest of its roles'; the zero
// Rate when it has none.
func (l *Limiter) rate(p *rbac.Principal) Rate {
	if p == nil {
		return Rate{}
	}
	if p.RateLimit != "" {
		if r, err := ParseRate(p.RateLimit); err == nil {
			return r
		}
	}
	var best Rate
	if len(l.roles) > 0 {
		for _, role := range p.Roles {
			if r, ok := l.roles[role]; ok && r.faster(best) {
				best = r
			}
		}
	}
	return best
}

// Reasons of a rate_limited answer: the values of the metrics' reason
// label.
const (
	reasonSource = iota
	reasonKey
	reasonCredential
	numReasons
)

var reasonNames = [numReasons]string{"source", "key", "credential"}

// A Gate verifies for one interface ("http", "socket"), whose name labels
// its metrics. It is safe for concurrent use.
type Gate struct {
	l         *Limiter
	v         Verifier
	iface     string
	rejected  [numReasons]prometheus.Counter
	cooldowns [reasonKey + 1]prometheus.Counter // by reasonSource, reasonKey
}

// Gate returns the gate through which interface iface verifies with v.
func (l *Limiter) Gate(v Verifier, iface string) *Gate {
	g := &Gate{l: l, v: v, iface: iface}
	for i, r := range reasonNames {
		g.rejected[i] = l.rejected.WithLabelValues(iface, r)
	}
	for i := range g.cooldowns {
		g.cooldowns[i] = l.cooldowns.WithLabelValues(iface, reasonNames[i])
	}
	return g
}

// Verify answers as the verifier's Verify(token, scope) does, with these
// exceptions, each answered with reason verify.RateLimited and how long to
// wait before asking again:
//
//   - src is in a cool-down, or token is a PAT whose id is: the verifier
//     is not asked, so the store is not read;
//   - the credential is valid (OK or Forbidden) and its rate limit is
//     spent.
//
// A malformed, unknown or bad-signature answer counts as a failure of src
// (unless it is zero) and of the PAT id token presents; the failure that
// reaches a threshold begins a cool-down. A verification from a source
// that is not in a cool-down, of a credential without a rate limit,
// allocates nothing here and, while no source or id is in a cool-down
// anywhere, costs two atomic loads. Like the verifier, Verify keeps no
// reference to token or scope.
func (g *Gate) Verify(src Source, token, scope string) (verify.Result, time.Duration) {
	l := g.l
	var now int64 // read once, and only when needed
	if t := l.sources; t != nil && !src.IsZero() && t.maxUntil.Load() != 0 {
		now = l.clock()
		if until, ok := t.blocked(src.key(), now); ok {
			return g.reject(reasonSource, until-now)
		}
	}
	if t := l.keys; t != nil && t.maxUntil.Load() != 0 && isPAT(token) {
		if now == 0 {
			now = l.clock()
		}
		if id, ok := credential.PATID(token); ok {
			if until, ok := t.blocked(idKey(id), now); ok {
				return g.reject(reasonKey, until-now)
			}
		}
	}
	r := g.v.Verify(token, scope)
	switch r.Reason {
	case verify.OK, verify.Forbidden:
		if rate := l.rate(r.Principal); rate.Count > 0 {
			if now == 0 {
				now = l.clock()
			}
			if ok, retry := l.buckets.take(credentialKey(r.Principal), rate, now); !ok {
				return g.reject(reasonCredential, retry)
			}
		}
	case verify.Malformed, verify.Unknown, verify.BadSignature:
		g.fail(src, token, now)
	}
	return r, 0
}

// fail counts a failed verification of token from src.
func (g *Gate) fail(src Source, token string, now int64) {
	l := g.l
	if now == 0 {
		now = l.clock()
	}
	if t := l.sources; t != nil && !src.IsZero() {
		if tripped, until := t.fail(src.key(), now); tripped {
			g.cooldowns[reasonSource].Inc()
			l.logCooldown(now, "too many failed verifications from one source: answering it rate_limited",
				slog.String("interface", g.iface), slog.String("source", src.String()), slog.Duration("for", time.Duration(until-now)))
		}
	}
	if t := l.keys; t != nil && isPAT(token) {
		if id, ok := credential.PATID(token); ok {
			if tripped, until := t.fail(idKey(id), now); tripped {
				g.cooldowns[reasonKey].Inc()
				l.logCooldown(now, "too many failed verifications presenting one PAT id: answering it rate_limited",
					slog.String("interface", g.iface), slog.String("key_id", strings.Clone(id)), slog.Duration("for", time.Duration(until-now)))
			}
		}
	}
}

// logCooldown logs a cool-down that began, at most one a second: a flood
// from many sources must not flood the log (the metrics count them all).
func (l *Limiter) logCooldown(now int64, msg string, attrs ...slog.Attr) {
	last := l.lastLog.Load()
	if last != 0 && now-last < int64(time.Second) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.log.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

// reject answers rate_limited for reason, retry nanoseconds from now.
func (g *Gate) reject(reason int, retry int64) (verify.Result, time.Duration) {
	g.rejected[reason].Inc()
	return verify.Result{Reason: verify.RateLimited}, time.Duration(max(retry, 0))
}

// isPAT reports whether token has the PAT prefix.
func isPAT(token string) bool { return strings.HasPrefix(token, "pat_") }

// RetryAfterSeconds returns d in whole seconds, rounded up and at least 1:
// the value of an HTTP Retry-After header.
func RetryAfterSeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}
