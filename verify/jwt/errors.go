package jwt

import "errors"

// Every error [Verifier.Verify] returns wraps exactly one of these, which
// tells why the token was refused. The wrapping error's text adds detail
// that is safe to log: it never contains the token or a secret.
var (
	// ErrMalformed: the token breaks the compact JWS grammar, its encoding,
	// its JSON, or the header rules (allowlisted members, alg, typ).
	ErrMalformed = errors.New("malformed token")
	// ErrUntrustedKey: no trusted key may verify the token (unknown kid, no
	// kid with several candidate keys, or a key of another algorithm).
	ErrUntrustedKey = errors.New("untrusted key")
	// ErrBadSignature: the selected key does not verify the signature.
	ErrBadSignature = errors.New("bad signature")
	// ErrExpired: now is at or after exp plus the leeway.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf or iat lies beyond now plus the leeway.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrInvalidClaims: the claims are not what the key's profile requires
	// (issuer, audience, claim types, missing exp).
	ErrInvalidClaims = errors.New("invalid claims")
)
