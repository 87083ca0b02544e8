package rbac

import "time"

// A Principal is the verified identity behind a credential and what it was
// granted. Principals are built once (when a credential is first resolved)
// and shared read-only afterwards: no field may be modified once the
// Principal has been handed out.
//
// A Principal is in two parts: what is its own (subject, record, expiry),
// and its Profile, which credentials of the same kind and grants have in
// common. Stored credentials with the same profile share one, so that a
// million cached keys do not hold a million copies of the same roles and
// compiled scopes. The Profile's fields read as the Principal's own
// (p.Roles, p.Grants). Profile must not be nil.
type Principal struct {
	Subject   string    // who the credential belongs to
	KeyID     string    // identifier of the credential record; a JWT's "jti"
	ExpiresAt time.Time // when the credential stops being valid; zero means never
	*Profile
}

// A Profile is the part of a [Principal] that credentials of one kind and
// with the same grants have in common. Like the Principal, it is read-only
// once handed out, and it may be shared by many principals.
type Profile struct {
	Kind         string              // credential kind: "api_key", "agent", "pat", "imported", "jwt"
	Source       string              // for a JWT, the trust source whose key verified it
	Realm        string              // for a JWT, the realm its claims name
	Roles        []string            // global roles
	ProjectRoles map[string][]string // roles per project, domain or realm
	Scopes       []string            // patterns the credential carries itself
	Grants       *Matcher            // Scopes, compiled
	// RateLimit is the credential's own rate limit, such as "100/s": a
	// stored key's "rate_limit" metadata; "" means none. The policy does
	// not read it; package verify/throttle applies it.
	RateLimit string
}

// Allows reports whether p holds a grant for scope, and which pattern grants
// it. It checks the principal's own scopes only: roles grant through a
// policy, by way of [Policy.Bind] and [Binding.Decide]. It allocates nothing.
func (p *Principal) Allows(scope string) (grant string, ok bool) {
	return p.Grants.Match(scope)
}
