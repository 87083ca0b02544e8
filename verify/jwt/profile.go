package jwt

import (
	"time"
)

// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
const DefaultLeeway = 60 * time.Second

// DefaultSubjectClaims is the order in which claims are tried for the
// subject when a profile names none.
var DefaultSubjectClaims = []string{
	"sub", "client_id", "username", "oid", "preferred_username", "upn",
	"unique_name", "email", "name", "azp", "user_id",
}

// Profile is what a trust source requires of the tokens its keys verify,
// and how identities are read from their claims. Every key refers to one
// Profile; a Profile must not be changed once a key refers to it.
type Profile struct {
	// Source names the trust source, for results, logs and metrics.
	Source string
	// Issuer, when not empty, must equal the "iss" claim exactly.
	Issuer string
	// Audience, when not empty, lists the audiences verifyd answers to: the
	// "aud" claim must be present and name at least one of them.
	Audience []string
	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means
	// none; [DefaultLeeway] is what the configuration defaults to.
	Leeway time.Duration
	// AllowNoExp accepts tokens without an "exp" claim. Off by default: a
	// token that never expires can only be stopped by revocation.
	AllowNoExp bool
	// SubjectClaims lists the claims tried for the subject, first present
	// wins. Empty means [DefaultSubjectClaims].
	SubjectClaims []string
	// RolesClaim is the claim path of the roles: an array of strings or one
	// string. Empty means "roles". A path is a claim name, or names joined
	// by "." for nested objects ("realm_access.roles"); a top-level claim
	// whose name contains "." is found first.
	RolesClaim string
	// RealmClaim is the claim path of the realm (a string). Empty means
	// "realm".
	RealmClaim string
	// ScopeClaims lists the claim paths of the scopes, first present wins:
	// a space-separated string or an array of strings. Empty means "scope",
	// then "scp".
	ScopeClaims []string
}

func (p *Profile) subjectClaims() []string {
	if len(p.SubjectClaims) == 0 {
		return DefaultSubjectClaims
	}
	return p.SubjectClaims
}

func (p *Profile) rolesClaim() string {
	if p.RolesClaim == "" {
		return "roles"
	}
	return p.RolesClaim
}

func (p *Profile) realmClaim() string {
	if p.RealmClaim == "" {
		return "realm"
	}
	return p.RealmClaim
}

var defaultScopeClaims = []string{"scope", "scp"}

func (p *Profile) scopeClaims() []string {
	if len(p.ScopeClaims) == 0 {
		return defaultScopeClaims
	}
	return p.ScopeClaims
}

// Claims is what a verified token says, after every check passed.
type Claims struct {
	Subject  string   // from the first present subject claim; e-mail addresses lower-cased
	Roles    []string // from the roles claim
	Realm    string   // from the realm claim
	Scopes   []string // from the first present scope claim
	ID       string   // "jti", or ""
	Issuer   string   // "iss", or ""
	Audience []string // "aud": its one string or its array, in order; nil when absent
	// "azp" (OpenID Connect: the client the token was issued to), or ""
	// when absent or not a string; it never refuses a token
	AuthorizedParty string
	ExpiresAt       time.Time // "exp", or zero when absent (only with AllowNoExp)
	NotBefore       time.Time // "nbf", or zero
	IssuedAt        time.Time // "iat", or zero
}

// A Resolver finds the key that must verify a token: the key with id kid,
// or, when kid is "", the only key of alg's class. It returns an error
// wrapping [ErrUntrustedKey] when there is no such key or the key found
// verifies another algorithm. A trust registry is a Resolver.
type Resolver interface {
	ResolveKey(alg Alg, kid string) (*Key, error)
}
