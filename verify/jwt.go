package verify

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

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
	// revGen is the store's revocation generation at which the token was
	// last found unrevoked. A use that sees another generation checks the
	// revocations again.
	revGen atomic.Uint64
}

// jwtCache holds verified JWTs by the SHA-256 of their exact bytes.
type jwtCache struct {
	c *ristretto.Cache[uint64, *jwtEntry]
}

func newJWTCache(entries int64) (*jwtCache, error) {
	if entries < 0 {
		return nil, nil
	}
	if entries == 0 {
		entries = DefaultJWTCacheEntries
	}
	c, err := ristretto.NewCache(&ristretto.Config[uint64, *jwtEntry]{
		NumCounters:        10 * entries,
		MaxCost:            entries,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("verify: jwt cache: %w", err)
	}
	return &jwtCache{c: c}, nil
}

// cacheKey takes ristretto's key from the digest's first 8 bytes; entries
// carry the whole digest, which a hit compares.
func cacheKey(d *keystore.Digest) uint64 { return binary.LittleEndian.Uint64(d[:8]) }

func (c *jwtCache) get(d *keystore.Digest) *jwtEntry {
	if c == nil {
		return nil
	}
	e, ok := c.c.Get(cacheKey(d))
	if !ok || e.digest != *d {
		return nil
	}
	return e
}

func (c *jwtCache) set(e *jwtEntry, ttl time.Duration) {
	if c != nil && ttl > 0 {
		c.c.SetWithTTL(cacheKey(&e.digest), e, 1, ttl)
	}
}

func (c *jwtCache) del(d *keystore.Digest) {
	if c != nil {
		c.c.Del(cacheKey(d))
	}
}

func (c *jwtCache) close() {
	if c != nil {
		c.c.Close()
	}
}

// verifyJWT decides on a token of the JWT shape: from the cache when the
// same bytes were verified before and every per-use check still passes,
// else through the strict front end.
func (v *Verifier) verifyJWT(token, scope string, now time.Time) Result {
	if v.opts.JWT == nil {
		return Result{Reason: UntrustedKey}
	}
	d := keystore.Sum(token)
	if e := v.jwts.get(&d); e != nil {
		if r, ok := v.jwtHit(e, now, scope); ok {
			return r
		}
	}
	gen := v.store.RevocationGen()
	claims, key, err := v.opts.JWT.Verify(token, now)
	if err != nil {
		reason := jwtReason(err)
		v.opts.Logger.Debug("verify: jwt refused", "status", reason.String(), "err", err)
		return Result{Reason: reason}
	}
	if v.store.TokenRevoked(claims.ID, claims.Subject, claims.IssuedAt) {
		return Result{Reason: Revoked}
	}
	e := &jwtEntry{
		digest:    d,
		principal: jwtPrincipal(&claims, key),
		key:       key,
		expires:   claims.ExpiresAt,
		notBefore: claims.NotBefore,
		issuedAt:  claims.IssuedAt,
	}
	e.revGen.Store(gen)
	ttl := maxNoExpCache
	if !e.expires.IsZero() {
		ttl = e.expires.Sub(now) // never cached past "exp", leeway or not
	}
	v.jwts.set(e, ttl)
	return v.jwtDecision(e, now, scope)
}

// jwtHit re-checks a cached token for this use. ok is false when the entry
// cannot answer (its key was retired, or it reached "exp") and the token
// must go through the front end again.
func (v *Verifier) jwtHit(e *jwtEntry, now time.Time, scope string) (Result, bool) {
	if e.key.Retired() || (!e.expires.IsZero() && !now.Before(e.expires)) {
		v.jwts.del(&e.digest)
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
	return v.jwtDecision(e, now, scope), true
}

// jwtDecision answers for a token that is valid now.
func (v *Verifier) jwtDecision(e *jwtEntry, now time.Time, scope string) Result {
	ttl := max(v.opts.CacheTTL, 0)
	if !e.expires.IsZero() {
		ttl = max(min(ttl, e.expires.Sub(now)), 0)
	}
	res := Result{Reason: OK, Principal: e.principal, CacheTTL: ttl, ExpiresAt: e.expires}
	if scope != "" {
		grant, ok := e.principal.Allows(scope)
		if !ok {
			res.Reason = Forbidden
		}
		res.Grant = grant
	}
	return res
}

// jwtPrincipal builds the principal of a verified token. Scopes that are
// not valid patterns grant nothing (a token's scope claim is not ours to
// reject), and are left out of the compiled grants.
func jwtPrincipal(c *jwt.Claims, key *jwt.Key) *rbac.Principal {
	grants, err := rbac.Compile(c.Scopes)
	if err != nil {
		valid := make([]string, 0, len(c.Scopes))
		for _, s := range c.Scopes {
			if rbac.ValidatePattern(s) == nil {
				valid = append(valid, s)
			}
		}
		grants = rbac.MustCompile(valid...)
	}
	return &rbac.Principal{
		Subject:   c.Subject,
		Kind:      "jwt",
		KeyID:     c.ID,
		Source:    key.Profile().Source,
		Realm:     c.Realm,
		Roles:     c.Roles,
		Scopes:    c.Scopes,
		ExpiresAt: c.ExpiresAt,
		Grants:    grants,
	}
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
