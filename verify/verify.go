package verify

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify/credential"
	"github.com/verifyd/verifyd/verify/jwt"
)

// Result is the answer to one verification. A denial is a Result, not an
// error. Principal is set when the credential was found valid (OK and
// Forbidden) and is shared and read-only.
type Result struct {
	Reason    Reason
	Principal *rbac.Principal
	// Decision is the policy's answer for the scope: which role, project
	// and pattern granted it, or why it was denied. It is set when a scope
	// was asked of a valid credential (Reason OK or Forbidden) and is the
	// zero Decision otherwise. Its strings point into the policy and the
	// principal and are read-only.
	Decision  rbac.Decision
	ExpiresAt time.Time     // when the presented secret stops working; zero means never
	CacheTTL  time.Duration // how long the caller may reuse this answer; 0 means not at all
}

// Decided reports whether the policy decided on a scope: a scope was asked
// of a valid credential.
func (r Result) Decided() bool {
	return r.Reason == Forbidden || r.Reason == OK && r.Decision.Allowed
}

// Grant returns the pattern that granted the scope: Decision.Pattern of
// an allowed decision; "" for a stream rule, a denial, or without a scope.
func (r Result) Grant() string {
	if !r.Decision.Allowed {
		return ""
	}
	return r.Decision.Pattern
}

// Allowed reports whether the result allows the request.
func (r Result) Allowed() bool { return r.Reason == OK }

// Options configures a Verifier. The zero value is usable.
type Options struct {
	// CacheTTL bounds how long a caller may reuse an OK or Forbidden answer
	// (the cache_ttl_ms field); it is never longer than the credential's
	// remaining validity. It also bounds how late a caller that caches
	// answers sees a revocation. The default value is 5s; a negative value
	// means callers must not cache (0 is reported).
	CacheTTL time.Duration
	// Now returns the current time. The default is time.Now; tests inject a
	// fake clock.
	Now func() time.Time
	// Registerer receives the verifier's metrics. nil means no metrics.
	Registerer prometheus.Registerer
	// Logger receives operational faults. nil means slog.Default().
	Logger *slog.Logger
	// JWT verifies tokens of the JWT shape. nil means no trust source is
	// configured, and every JWT is refused as untrusted_key.
	JWT *jwt.Verifier
	// JWTCacheEntries bounds the cache of verified JWTs, keyed by the
	// SHA-256 of their bytes. Zero means DefaultJWTCacheEntries; a negative
	// value disables the cache, so that every JWT is verified afresh.
	JWTCacheEntries int64
	// Policy is the authorization policy in force at start; SetPolicy
	// replaces it. nil means rbac.DefaultPolicy(): mode deny_all, where
	// only the scopes a credential carries itself grant.
	Policy *rbac.Policy
}

// EnsureDefaults fills in the defaults of unset fields and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o == nil {
		o = &Options{}
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Policy == nil {
		o.Policy = rbac.DefaultPolicy()
	}
	return o
}

// Verifier answers whether a credential is valid and grants a scope. It is
// safe for concurrent use.
type Verifier struct {
	injectedClock bool // Options.Now was set: start times are not "now"
	store         *keystore.Store
	minter        *credential.Minter
	opts          Options
	metrics       *metrics
	jwts          *jwtCache // nil when disabled
	grants        grantMemo // compiled JWT scope sets
	// policy is the authorization policy in force, never nil. Each cached
	// credential keeps its principal bound against the policy of its last
	// use and binds again when the policy has changed since.
	policy atomic.Pointer[policyState]
	// unavailable, when set, makes every verification answer Unavailable
	// (see SetUnavailable).
	unavailable atomic.Bool
}

// policyState is a policy in force, with what the hot path needs to know
// of it. It is immutable.
type policyState struct {
	policy *rbac.Policy
	// ownOnly is set when the policy can answer only from a credential's
	// own scopes: mode deny_all and no ACL, as the default policy. Such a
	// decision needs no binding: it is the match of the credential's
	// compiled scopes, which the entry holds itself (a binding would add
	// an object, and a cache miss, to every one of a million cached
	// entries). TestOwnOnlyMatchesBinding keeps the two equal.
	ownOnly bool
}

func newPolicyState(p *rbac.Policy) *policyState {
	sum := p.Summary()
	return &policyState{policy: p, ownOnly: sum.Mode == rbac.DenyAll && sum.ACLs == 0}
}

// New returns a Verifier over store, classifying generated API keys with
// minter.
func New(store *keystore.Store, minter *credential.Minter, opts *Options) (*Verifier, error) {
	if store == nil || minter == nil {
		return nil, errors.New("verify: a store and a minter are required")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	injected := o.Now != nil
	o.EnsureDefaults()
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	v := &Verifier{injectedClock: injected, store: store, minter: minter, opts: o, metrics: m, jwts: newJWTCache(o.JWTCacheEntries)}
	v.policy.Store(newPolicyState(o.Policy))
	return v, nil
}

// Policy returns the authorization policy in force.
func (v *Verifier) Policy() *rbac.Policy { return v.policy.Load().policy }

// SetPolicy puts p in force, atomically: a verification that starts after
// SetPolicy returns decides under p, cached credentials included (each is
// bound against p at its next use), and one that started before decides
// wholly under one policy or the other. nil means rbac.DefaultPolicy().
// It returns the policy p replaced.
func (v *Verifier) SetPolicy(p *rbac.Policy) *rbac.Policy {
	if p == nil {
		p = rbac.DefaultPolicy()
	}
	return v.policy.Swap(newPolicyState(p)).policy
}

// SetUnavailable makes every verification that starts afterwards answer
// Unavailable (when on) or be decided again (when off). A replica that has
// not been able to follow its shared store for too long, or has never
// loaded it, fails closed this way.
func (v *Verifier) SetUnavailable(on bool) { v.unavailable.Store(on) }

// Verify checks token and, when scope is not empty, whether the credential
// grants scope. It never blocks on anything but the local store, and a
// verification answered from the cache allocates nothing.
func (v *Verifier) Verify(token, scope string) Result {
	if v.metrics == nil {
		r, _ := v.verify(token, scope, time.Time{})
		return r
	}
	start := time.Now()
	r, f := v.verify(token, scope, start)
	v.metrics.observe(f, r, time.Since(start))
	return r
}

// Authenticate verifies token as Verify does with no scope, but counts
// nothing in the metrics: it serves administrative questions about a
// credential ("why is this token denied?"), not traffic.
func (v *Verifier) Authenticate(token string) Result {
	r, _ := v.verify(token, "", time.Time{})
	return r
}

// now returns the current time: start, the time Verify read to measure
// the decision, unless there is none or the clock is injected.
func (v *Verifier) now(start time.Time) time.Time {
	if start.IsZero() || v.injectedClock {
		return v.opts.Now()
	}
	return start
}

// verify decides. start is the time Verify read to measure the decision, or
// zero; with the real clock it also serves as the current time, so that a
// metered decision reads the clock twice, not three times.
func (v *Verifier) verify(token, scope string, start time.Time) (Result, credential.Format) {
	if scope != "" && rbac.ValidateScope(scope) != nil {
		return Result{Reason: InvalidScope}, credential.Malformed
	}
	f := v.minter.Classify(token)
	switch f {
	case credential.Malformed:
		return Result{Reason: Malformed}, f
	}
	if v.unavailable.Load() {
		return Result{Reason: Unavailable}, f
	}
	switch f {
	case credential.JWT:
		r, _ := v.verifyJWT(token, scope, v.now(start))
		return r, f
	}
	e, err := v.store.Lookup(keystore.Sum(token))
	if err != nil {
		v.opts.Logger.Error("verify: credential store read failed", "err", err)
		return Result{Reason: Unavailable}, f
	}
	if e == nil {
		return Result{Reason: Unknown}, f
	}
	if f == credential.PAT {
		// The embedded id is only a hint, checked after the digest matched.
		if id, _ := credential.PATID(token); id != e.Principal().KeyID {
			return Result{Reason: Unknown}, f
		}
	}
	if e.Revoked() {
		return Result{Reason: Revoked}, f
	}
	now, notAfter := v.now(start), e.NotAfter()
	if !notAfter.IsZero() && !now.Before(notAfter) {
		return Result{Reason: Expired}, f
	}
	v.store.Touch(e, now)
	return v.answer(e.Principal(), e, notAfter, now, scope), f
}

// bindable is a cache entry that keeps its principal bound against the
// policy of its last use: a stored key's keystore.Entry or a jwtEntry.
type bindable interface {
	Binding(*rbac.Policy) *rbac.Binding
}

// answer answers for a valid credential whose principal is p, cached in b,
// that stops being valid at notAfter (zero: never): allowed, or, when a
// scope was asked, whatever the policy in force decides.
func (v *Verifier) answer(p *rbac.Principal, b bindable, notAfter, now time.Time, scope string) Result {
	res := v.valid(p, notAfter, now)
	if scope != "" {
		if st := v.policy.Load(); st.ownOnly {
			res.decideOwn(p, scope)
		} else {
			res.decide(b.Binding(st.policy), scope)
		}
	}
	return res
}

// valid answers for a credential that is valid now and stops being valid
// at notAfter (zero: never), before any scope is decided.
func (v *Verifier) valid(p *rbac.Principal, notAfter, now time.Time) Result {
	ttl := max(v.opts.CacheTTL, 0)
	if !notAfter.IsZero() {
		ttl = max(min(ttl, notAfter.Sub(now)), 0)
	}
	return Result{Reason: OK, Principal: p, CacheTTL: ttl, ExpiresAt: notAfter}
}

// decide asks the policy, through the credential's binding b, whether it
// grants scope: allowed, or forbidden with the policy's reason. verify
// binds only authenticated principals, so the policy never answers
// rbac.AuthRequired here (it is reserved for anonymous bindings, which
// would be refused as unauthenticated, 401, not forbidden).
func (res *Result) decide(b *rbac.Binding, scope string) {
	res.Decision = b.Decide(scope)
	if !res.Decision.Allowed {
		res.Reason = Forbidden
	}
}

// decideOwn decides scope under a policy whose state is ownOnly: what
// Binding.Decide answers there, from the principal's own scopes alone.
func (res *Result) decideOwn(p *rbac.Principal, scope string) {
	g, ok := p.Allows(scope)
	if !ok {
		res.Decision = rbac.Decision{Reason: rbac.NoGrant}
		res.Reason = Forbidden
		return
	}
	res.Decision = rbac.Decision{Allowed: true, Reason: rbac.Granted, Pattern: g}
}
