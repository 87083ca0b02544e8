package verify

import "net/http"

// Reason is the outcome of a verification. Its numeric values are stable:
// they are the status codes of the socket protocol and never change meaning.
// One table drives the HTTP status, the error code of HTTP error bodies, the
// log field and the metric label of every reason.
type Reason uint8

// The reasons, in their stable numeric order.
const (
	OK            Reason = iota // the credential is valid and, if a scope was asked, grants it
	Malformed                   // the token cannot be a credential of any known kind (includes forged API keys)
	Unknown                     // well-formed, but no credential has this secret
	Expired                     // the credential's validity (or its rotation grace) has ended
	Revoked                     // the credential was revoked
	Forbidden                   // the credential is valid but grants no pattern matching the scope
	Unavailable                 // the store could not be read; the caller may retry
	InvalidScope                // the requested scope is not a valid scope
	BadSignature                // a JWT whose signature does not verify under the key it names
	NotYetValid                 // a JWT whose nbf or iat lies in the future beyond the leeway
	UntrustedKey                // a JWT no trusted key may verify (unknown kid, or no single key for its algorithm)
	InvalidClaims               // a JWT whose claims are not what its trust source requires (iss, aud, exp, types)
	RateLimited                 // the source or the credential is throttled (see verify/throttle); Verifier.Verify never answers it
	numReasons
)

type reasonInfo struct {
	name    string // lower-case label: JSON "status", log field, metric label
	status  int    // HTTP status
	code    string // HTTP error body "code"
	message string // human explanation, safe to show to any caller
}

var reasons = [numReasons]reasonInfo{
	OK:            {"ok", http.StatusOK, "", "allowed"},
	Malformed:     {"malformed", http.StatusUnauthorized, "UNAUTHORIZED", "the token is not a well-formed credential"},
	Unknown:       {"unknown", http.StatusUnauthorized, "UNAUTHORIZED", "the credential is not known"},
	Expired:       {"expired", http.StatusUnauthorized, "UNAUTHORIZED", "the credential has expired"},
	Revoked:       {"revoked", http.StatusUnauthorized, "UNAUTHORIZED", "the credential has been revoked"},
	Forbidden:     {"forbidden", http.StatusForbidden, "FORBIDDEN", "the credential does not grant this scope"},
	Unavailable:   {"unavailable", http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "the credential store is unavailable; retry later"},
	InvalidScope:  {"invalid_scope", http.StatusBadRequest, "BAD_REQUEST", "the requested scope is not a valid scope"},
	BadSignature:  {"bad_signature", http.StatusUnauthorized, "UNAUTHORIZED", "the token's signature does not verify"},
	NotYetValid:   {"not_yet_valid", http.StatusUnauthorized, "UNAUTHORIZED", "the token is not valid yet"},
	UntrustedKey:  {"untrusted_key", http.StatusUnauthorized, "UNAUTHORIZED", "the token is not signed by a trusted key"},
	InvalidClaims: {"invalid_claims", http.StatusUnauthorized, "UNAUTHORIZED", "the token's claims are not accepted (issuer, audience, expiry or claim types)"},
	RateLimited:   {"rate_limited", http.StatusTooManyRequests, "RATE_LIMITED", "too many failed attempts from this source, or too many requests with this credential; retry later"},
}

// Reasons returns every reason in numeric order.
func Reasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

func (r Reason) info() reasonInfo {
	if r >= numReasons {
		return reasonInfo{"invalid", http.StatusInternalServerError, "INTERNAL", "invalid reason"}
	}
	return reasons[r]
}

// String returns the reason's lower-case name, e.g. "revoked".
func (r Reason) String() string { return r.info().name }

// HTTPStatus returns the HTTP status code that reports r.
func (r Reason) HTTPStatus() int { return r.info().status }

// ErrorCode returns the upper-case code of HTTP error bodies, e.g.
// "UNAUTHORIZED", or "" for OK.
func (r Reason) ErrorCode() string { return r.info().code }

// Message returns a short explanation of r that reveals nothing about which
// credentials exist beyond r itself.
func (r Reason) Message() string { return r.info().message }
