package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/verifyd/verifyd/keystore"
)

// MaxRevocationLead is how far in the future the NotBefore of a subject
// revocation may lie. A later time would revoke tokens not issued yet, which
// is a mistake more often than an intent (a wrong time zone, a typo in the
// year).
const MaxRevocationLead = 5 * time.Minute

// A JWTRevocation revokes JWTs, which are not stored and so are revoked by
// what they carry: one token by its "jti" claim (TokenID set), or every
// token of a subject issued before a time (Subject and NotBefore set).
// Exactly one of TokenID and Subject is set.
type JWTRevocation struct {
	TokenID   string    // the jti of the revoked token
	Subject   string    // the subject whose tokens issued before NotBefore are revoked
	ExpiresAt time.Time // TokenID only: when the revocation may be forgotten, normally the token's exp; zero: never
	NotBefore time.Time // Subject only: tokens whose iat is before it (or that have no iat) are revoked
	CreatedAt time.Time // when the revocation in effect was made
	Creator   string    // who made it
}

// RevokeJWT revokes JWTs as r describes and returns the revocation in
// effect, which may differ from r: revocations only ever widen. Revoking a
// revoked jti keeps the later of the two expiries (zero, never, wins) and
// the first creation; a subject's NotBefore only moves forward, so an
// earlier one returns the revocation already in effect.
//
// r.NotBefore zero means now. Since iat is in whole seconds, NotBefore is
// rounded up to a whole second: a token issued in the second the revocation
// was made is revoked. A NotBefore more than MaxRevocationLead in the future
// is refused. r.CreatedAt and r.Creator are ignored: the revocation is
// recorded as made now by actor.
//
// Every problem with r is reported at once in an *InvalidSpecError, and
// nothing is written. Once RevokeJWT returns, the revocation is durable and
// no verification that starts later accepts a token it covers, including
// from a cache of earlier decisions. The revocation, or its failure, is
// audited (jwt.revoke_token or jwt.revoke_subject) with the actor ctx
// names.
func (m *Manager) RevokeJWT(ctx context.Context, r JWTRevocation, actor string) (JWTRevocation, error) {
	now := m.now().UTC()
	var problems []string
	switch {
	case r.TokenID == "" && r.Subject == "":
		problems = append(problems, "one of jti and subject is required")
	case r.TokenID != "" && r.Subject != "":
		problems = append(problems, "give either jti (one token) or subject (all of its tokens), not both")
	}
	if r.TokenID != "" && !r.NotBefore.IsZero() {
		problems = append(problems, "not_before applies to subject revocations only")
	}
	if r.Subject != "" && !r.ExpiresAt.IsZero() {
		problems = append(problems, "expires_at applies to jti revocations only")
	}
	if lead := r.NotBefore.Sub(now); lead > MaxRevocationLead {
		problems = append(problems, fmt.Sprintf("not_before is %v in the future; at most %v is allowed", lead.Round(time.Second), MaxRevocationLead))
	}
	nb := r.NotBefore
	if nb.IsZero() {
		nb = now
	}
	if whole := nb.Truncate(time.Second); !whole.Equal(nb) {
		nb = whole.Add(time.Second)
	}
	tr := keystore.TokenRevocation{TokenID: r.TokenID, ExpiresAt: r.ExpiresAt, CreatedAt: now, Creator: actor}
	sr := keystore.SubjectRevocation{Subject: r.Subject, NotBefore: nb, CreatedAt: now, Creator: actor}
	if r.TokenID != "" {
		problems = append(problems, revocationProblems(tr.Validate())...)
	}
	if r.Subject != "" {
		problems = append(problems, revocationProblems(sr.Validate())...)
	}
	e := m.entry(ctx, ActionJWTRevokeSubject, r.Subject)
	if r.TokenID != "" {
		e = m.entry(ctx, ActionJWTRevokeToken, r.TokenID)
	}
	if len(problems) > 0 {
		return JWTRevocation{}, m.fail(ctx, e, &InvalidSpecError{Problems: problems})
	}

	var got JWTRevocation
	err := m.audited(ctx, &e, func(tx *keystore.Txn) error {
		if r.TokenID != "" {
			t, err := tx.RevokeToken(tr)
			got = fromTokenRevocation(t)
			return specError(err)
		}
		s, err := tx.RevokeSubject(sr)
		got = fromSubjectRevocation(s)
		return specError(err)
	})
	if err != nil {
		return JWTRevocation{}, err
	}
	return got, nil
}

// ListJWTRevocations returns the JWT revocations in effect: token
// revocations sorted by jti, then subject revocations sorted by subject.
func (m *Manager) ListJWTRevocations(ctx context.Context) ([]JWTRevocation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tokens, subjects, err := m.store.ListRevocations()
	if err != nil {
		return nil, err
	}
	out := make([]JWTRevocation, 0, len(tokens)+len(subjects))
	for _, r := range tokens {
		out = append(out, fromTokenRevocation(r))
	}
	for _, r := range subjects {
		out = append(out, fromSubjectRevocation(r))
	}
	return out, nil
}

// revocationProblems returns the problems a keystore validation error
// lists, or the error itself as the one problem.
func revocationProblems(err error) []string {
	var re *keystore.RevocationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return re.Problems
	}
	return []string{err.Error()}
}

// specError turns the keystore's report of an invalid revocation into an
// *InvalidSpecError; other errors pass unchanged.
func specError(err error) error {
	var re *keystore.RevocationError
	if errors.As(err, &re) {
		return &InvalidSpecError{Problems: re.Problems}
	}
	return err
}

func fromTokenRevocation(r keystore.TokenRevocation) JWTRevocation {
	return JWTRevocation{TokenID: r.TokenID, ExpiresAt: r.ExpiresAt, CreatedAt: r.CreatedAt, Creator: r.Creator}
}

func fromSubjectRevocation(r keystore.SubjectRevocation) JWTRevocation {
	return JWTRevocation{Subject: r.Subject, NotBefore: r.NotBefore, CreatedAt: r.CreatedAt, Creator: r.Creator}
}
