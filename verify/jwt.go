package verify

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify/jwt"
)

// DefaultJWTCacheEntries is the default number of verified JWTs cached.
const DefaultJWTCacheEntries = 1 << 18

// maxNoExpCache bounds how long a JWT without "exp" (accepted only where a
// trust source allows it) is cached.
const maxNoExpCache = time.Minute

// jwtEntry is a verified JWT as cached: the principal built from its claims
// and what each later use must re-check.
type jwtEntry struct {
	digest    keystore.Digest
	principal *rbac.Principal
	key       *jwt.Key  // retired when its trust source stops publishing it
	expires   time.Time // "exp"; zero when absent
	notBefore time.Time // "nbf", or zero
	issuedAt  time.Time // "iat", or zero
	until     time.Time // the entry answers no use at or after this: exp, or a bound without exp
	// issuer, audience and azp are what Introspect reports of the token
	// beyond its principal: its "iss", "aud" and "azp" claims.
	issuer   string
	audience []string
	azp      string
	// revGen is the store's revocation generation at which the token was
	// last found unrevoked. A use that sees another generation checks the
	// revocations again.
	revGen atomic.Uint64
	// bind is principal bound against the policy of its last use.
	bind rbac.BindingSlot
}

// Binding returns the entry's principal bound against p; see
// [rbac.BindingSlot.Get].
func (e *jwtEntry) Binding(p *rbac.Policy) *rbac.Binding { return e.bind.Get(p, e.principal) }

// jwtCache holds verified JWTs by the SHA-256 of their exact bytes, in
// shards of plain maps. It is not ristretto: every cold verification
// inserts, and a ristretto insert hands the item to its policy goroutine
// through a channel, which wakes that goroutine (an OS thread handoff of
// several microseconds when it sleeps) once per verification. Here an
// insert is a map write under the shard's lock; when a shard is full, the
// entry expiring first among a few sampled ones is evicted.
type jwtCache struct {
	perShard int
	shards   [jwtShards]jwtShard
}

const (
	jwtShards      = 64
	evictionSample = 8
)

type jwtShard struct {
	mu sync.RWMutex
	m  map[uint64]*jwtEntry
	_  [40]byte // keep shards on separate cache lines
}

func newJWTCache(entries int64) *jwtCache {
	if entries < 0 {
		return nil
	}
	if entries == 0 {
		entries = DefaultJWTCacheEntries
	}
	c := &jwtCache{perShard: max(int((entries+jwtShards-1)/jwtShards), 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*jwtEntry)
	}
	return c
}

// cacheKey is the digest's first 8 bytes; entries carry the whole digest,
// which a hit compares.
func cacheKey(d *keystore.Digest) uint64 { return binary.LittleEndian.Uint64(d[:8]) }

func (c *jwtCache) shard(k uint64) *jwtShard { return &c.shards[k>>58] }

func (c *jwtCache) get(d *keystore.Digest) *jwtEntry {
	if c == nil {
		return nil
	}
	k := cacheKey(d)
	sh := c.shard(k)
	sh.mu.RLock()
	e := sh.m[k]
	sh.mu.RUnlock()
	if e == nil || e.digest != *d {
		return nil
	}
	return e
}

func (c *jwtCache) set(e *jwtEntry) {
	if c == nil {
		return
	}
	k := cacheKey(&e.digest)
	sh := c.shard(k)
	sh.mu.Lock()
	if _, ok := sh.m[k]; !ok && len(sh.m) >= c.perShard {
		// Map iteration starts at a random place: the first few entries
		// are a random sample.
		var victim uint64
		var soonest time.Time
		n := 0
		for vk, ve := range sh.m {
			if n == 0 || ve.until.Before(soonest) {
				victim, soonest = vk, ve.until
			}
			if n++; n == evictionSample {
				break
			}
		}
		delete(sh.m, victim)
	}
	sh.m[k] = e
	sh.mu.Unlock()
}

func (c *jwtCache) del(e *jwtEntry) {
	if c == nil {
		return
	}
	k := cacheKey(&e.digest)
	sh := c.shard(k)
	sh.mu.Lock()
	if sh.m[k] == e {
		delete(sh.m, k)
	}
	sh.mu.Unlock()
}

// verifyJWT decides on a token of the JWT shape: from the cache when the
// same bytes were verified before and every per-use check still passes,
// else through the strict front end. It also returns the token's cache
// entry, which describes the token when the answer is OK or Forbidden (nil
// when the token was refused before an entry existed).
func (v *Verifier) verifyJWT(token, scope string, now time.Time) (Result, *jwtEntry) {
	if v.opts.JWT == nil {
		return Result{Reason: UntrustedKey}, nil
	}
	d := keystore.Sum(token)
	if e := v.jwts.get(&d); e != nil {
		if r, ok := v.jwtHit(e, now, scope); ok {
			return r, e
		}
	}
	gen := v.store.RevocationGen()
	claims, key, err := v.opts.JWT.Verify(token, now)
	if err != nil {
		reason := jwtReason(err)
		v.opts.Logger.Debug("verify: jwt refused", "status", reason.String(), "err", err)
		return Result{Reason: reason}, nil
	}
	if v.store.TokenRevoked(claims.ID, claims.Subject, claims.IssuedAt) {
		return Result{Reason: Revoked}, nil
	}
	e := &jwtEntry{
		digest:    d,
		principal: v.jwtPrincipal(&claims, key),
		key:       key,
		expires:   claims.ExpiresAt,
		notBefore: claims.NotBefore,
		issuedAt:  claims.IssuedAt,
		issuer:    claims.Issuer,
		audience:  claims.Audience,
		azp:       claims.AuthorizedParty,
	}
	e.revGen.Store(gen)
	e.until = e.expires // never cached past "exp", leeway or not
	if e.until.IsZero() {
		e.until = now.Add(maxNoExpCache)
	}
	if now.Before(e.until) {
		v.jwts.set(e)
	}
	return v.answer(e.principal, e, e.expires, now, scope), e
}

// jwtHit re-checks a cached token for this use. ok is false when the entry
// cannot answer (its key was retired, or it reached "exp") and the token
// must go through the front end again.
func (v *Verifier) jwtHit(e *jwtEntry, now time.Time, scope string) (Result, bool) {
	if e.key.Retired() || !now.Before(e.until) {
		v.jwts.del(e)
		return Result{}, false
	}
	// A clock that went back before nbf or iat (beyond the leeway) makes
	// the token not valid yet again.
	late := now.Add(e.key.Profile().Leeway)
	if e.notBefore.After(late) || e.issuedAt.After(late) {
		return Result{Reason: NotYetValid}, true
	}
	if gen := v.store.RevocationGen(); e.revGen.Load() != gen {
		if v.store.TokenRevoked(e.principal.KeyID, e.principal.Subject, e.issuedAt) {
			return Result{Reason: Revoked}, true
		}
		e.revGen.Store(gen)
	}
	return v.answer(e.principal, e, e.expires, now, scope), true
}

// maxMemoGrants bounds the remembered compiled scope sets; when full, the
// memo starts over.
const maxMemoGrants = 4096

// grantMemo remembers compiled scope sets by their text: tokens of one
// issuer carry the same few scope sets, and compiling is a pure function
// of the list. The key is each scope's length and bytes in turn, so that
// no two lists share a key (["a b"] and ["a", "b"] do not).
type grantMemo struct {
	mu sync.RWMutex
	m  map[string]*rbac.Matcher
}

// compile returns the matcher of scopes. Scopes that are not valid
// patterns grant nothing (a token's scope claim is not ours to reject) and
// are left out.
func (g *grantMemo) compile(scopes []string) *rbac.Matcher {
	var buf [512]byte
	key := buf[:0]
	for _, s := range scopes {
		key = binary.AppendUvarint(key, uint64(len(s)))
		key = append(key, s...)
	}
	g.mu.RLock()
	m, ok := g.m[string(key)] // no allocation: the conversion is only a lookup key
	g.mu.RUnlock()
	if ok {
		return m
	}
	m, err := rbac.Compile(scopes)
	if err != nil {
		valid := make([]string, 0, len(scopes))
		for _, s := range scopes {
			if rbac.ValidatePattern(s) == nil {
				valid = append(valid, s)
			}
		}
		m = rbac.MustCompile(valid...)
	}
	g.mu.Lock()
	if g.m == nil || len(g.m) >= maxMemoGrants {
		g.m = make(map[string]*rbac.Matcher)
	}
	g.m[string(key)] = m
	g.mu.Unlock()
	return m
}

// jwtPrincipal builds the principal of a verified token: the Principal and
// its Profile, which is the token's own, in one allocation.
func (v *Verifier) jwtPrincipal(c *jwt.Claims, key *jwt.Key) *rbac.Principal {
	pp := &struct {
		rbac.Principal
		profile rbac.Profile
	}{}
	pp.profile = rbac.Profile{
		Kind:   "jwt",
		Source: key.Profile().Source,
		Realm:  c.Realm,
		Roles:  c.Roles,
		Scopes: c.Scopes,
		Grants: v.grants.compile(c.Scopes),
	}
	pp.Principal = rbac.Principal{Subject: c.Subject, KeyID: c.ID, ExpiresAt: c.ExpiresAt, Profile: &pp.profile}
	return &pp.Principal
}

// jwtReason maps a front-end refusal to its reason.
func jwtReason(err error) Reason {
	switch {
	case errors.Is(err, jwt.ErrUntrustedKey):
		return UntrustedKey
	case errors.Is(err, jwt.ErrBadSignature):
		return BadSignature
	case errors.Is(err, jwt.ErrExpired):
		return Expired
	case errors.Is(err, jwt.ErrNotYetValid):
		return NotYetValid
	case errors.Is(err, jwt.ErrInvalidClaims):
		return InvalidClaims
	}
	return Malformed
}
