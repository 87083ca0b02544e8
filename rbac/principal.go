package rbac

import "time"

// A Principal is the verified identity behind a credential and what it was
// granted. Principals are built once (when a credential is first resolved)
// and shared read-only afterwards: no field may be modified once the
// Principal has been handed out.
type Principal struct {
	Subject      string              // who the credential belongs to
	Kind         string              // credential kind: "api_key", "agent", "pat", "imported", "jwt"
	KeyID        string              // identifier of the credential record; a JWT's "jti"
	Source       string              // for a JWT, the trust source whose key verified it
	Realm        string              // for a JWT, the realm its claims name
	Roles        []string            // global roles
	ProjectRoles map[string][]string // roles per project, domain or realm
	Scopes       []string            // patterns the credential carries itself
	ExpiresAt    time.Time           // when the credential stops being valid; zero means never
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
