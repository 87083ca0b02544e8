package verify

import (
	"errors"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify/credential"
)

// Introspection is what [Verifier.Introspect] learns of a credential: the
// verification Result and, for a valid credential, what an RFC 7662
// introspection answer reports beyond its principal. Its slices are shared
// and read-only.
type Introspection struct {
	Result
	// IssuedAt is when the credential was issued: a JWT's "iat", a stored
	// key's creation (rotations keep it). Zero when unknown.
	IssuedAt time.Time
	// Issuer, Audience and AuthorizedParty are a JWT's "iss", "aud" and
	// "azp" claims; empty when absent, and for stored keys.
	Issuer          string
	Audience        []string
	AuthorizedParty string
}

// Introspect verifies token as Verify does without a scope (the same
// checks, caches and metrics) and, when the credential is valid, adds what
// an introspection answer reports beyond the principal: a JWT's
// registered claims, kept in its cache entry, and a stored key's creation
// time, read from its record (one store read, after the decision).
func (v *Verifier) Introspect(token string) Introspection {
	var start time.Time
	if v.metrics != nil {
		start = time.Now()
	}
	var in Introspection
	var f credential.Format
	if f = v.minter.Classify(token); f == credential.JWT {
		r, e := v.verifyJWT(token, "", v.now(start))
		in.Result = r
		if r.Reason == OK {
			in.IssuedAt, in.Issuer, in.Audience, in.AuthorizedParty = e.issuedAt, e.issuer, e.audience, e.azp
		}
	} else {
		in.Result, f = v.verify(token, "", start)
	}
	if v.metrics != nil {
		v.metrics.observe(f, in.Result, time.Since(start))
	}
	if in.Reason == OK && f != credential.JWT {
		in.IssuedAt = v.createdAt(in.Principal.KeyID)
	}
	return in
}

// createdAt returns the creation time of the stored key id, or zero when
// its record cannot be read (a fault, which is logged).
func (v *Verifier) createdAt(id string) time.Time {
	rec, err := v.store.Get(id)
	if err != nil {
		if !errors.Is(err, keystore.ErrNotFound) {
			v.opts.Logger.Error("verify: reading a key's record for introspection failed", "key_id", id, "err", err)
		}
		return time.Time{}
	}
	return rec.CreatedAt
}
