package keystore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// JWTs are not stored, so they are revoked by what they carry: one token by
// its "jti" claim (a [TokenRevocation]), or every token of a subject issued
// before a time (a [SubjectRevocation]). Revocations are kept durably under
// their own key prefixes and, for the verification path, in memory.

// A TokenRevocation revokes one JWT by its jti. Revocations are values: the
// store hands out copies.
type TokenRevocation struct {
	TokenID   string    // the revoked token's "jti" claim
	ExpiresAt time.Time // when the revocation may be forgotten, normally the token's "exp"; zero: kept forever
	CreatedAt time.Time // when the token was first revoked; RevokeToken fills in the current time when zero
	Creator   string    // who first revoked it
}

// A SubjectRevocation revokes every JWT of Subject whose "iat" claim is
// before NotBefore (and every token of Subject that has no "iat").
type SubjectRevocation struct {
	Subject   string    // the subject, as the verifier resolves it from the token's claims
	NotBefore time.Time // tokens issued before this are revoked; required
	CreatedAt time.Time // when NotBefore was last moved; RevokeSubject fills in the current time when zero
	Creator   string    // who last moved it
}

// MaxRevocationIDLen is the longest jti or subject a revocation accepts, in
// bytes.
const MaxRevocationIDLen = 1024

// RevocationRetention is how long a token revocation is kept after its
// ExpiresAt. A token is refused after its own "exp" anyway; the margin
// covers the verifier's clock-skew leeway and clocks that disagree.
const RevocationRetention = 24 * time.Hour

// Bounds of one periodic purge of expired token revocations (see
// [Store.Open]): the flush loop examines at most purgeScan revocations per
// pass and deletes at most purgeBatch of them.
const (
	purgeScan  = 4096
	purgeBatch = 1024
)

// Type tags of the revocation encodings.
const (
	revocationToken   = 1
	revocationSubject = 2
)

// ErrInvalidRevocation is matched (with errors.Is) by every error that
// reports a revocation failing validation; the error itself is a
// *RevocationError.
var ErrInvalidRevocation = errors.New("keystore: invalid revocation")

// A RevocationError lists every problem found in a revocation.
type RevocationError struct {
	Problems []string // one entry per problem, in field order
}

func (e *RevocationError) Error() string {
	return "keystore: invalid revocation: " + strings.Join(e.Problems, "; ")
}

// Unwrap returns ErrInvalidRevocation.
func (e *RevocationError) Unwrap() error { return ErrInvalidRevocation }

// Validate checks r against the rules RevokeToken enforces and reports every
// problem in one *RevocationError.
func (r *TokenRevocation) Validate() error {
	var p []string
	p = validRevocationID(p, "jti", r.TokenID)
	p = validRevocationTime(p, "expires_at", r.ExpiresAt)
	p = validRevocationTime(p, "created_at", r.CreatedAt)
	if !validText(r.Creator, MaxTextLen) {
		p = append(p, fmt.Sprintf("creator must be at most %d bytes of UTF-8", MaxTextLen))
	}
	if len(p) > 0 {
		return &RevocationError{Problems: p}
	}
	return nil
}

// Validate checks r against the rules RevokeSubject enforces and reports
// every problem in one *RevocationError.
func (r *SubjectRevocation) Validate() error {
	var p []string
	p = validRevocationID(p, "subject", r.Subject)
	if r.NotBefore.IsZero() {
		p = append(p, "not_before is required")
	}
	p = validRevocationTime(p, "not_before", r.NotBefore)
	p = validRevocationTime(p, "created_at", r.CreatedAt)
	if !validText(r.Creator, MaxTextLen) {
		p = append(p, fmt.Sprintf("creator must be at most %d bytes of UTF-8", MaxTextLen))
	}
	if len(p) > 0 {
		return &RevocationError{Problems: p}
	}
	return nil
}

func validRevocationID(p []string, name, v string) []string {
	switch {
	case v == "":
		return append(p, name+" is empty")
	case len(v) > MaxRevocationIDLen:
		return append(p, fmt.Sprintf("%s is %d bytes, more than %d", name, len(v), MaxRevocationIDLen))
	case !validLabel(v, MaxRevocationIDLen):
		return append(p, name+" must be UTF-8 without control characters")
	}
	return p
}

func validRevocationTime(p []string, name string, t time.Time) []string {
	if !t.IsZero() && (t.Unix() < minUnix || t.Unix() > maxUnix) {
		return append(p, name+" is outside years 1 to 9999")
	}
	return p
}

// utc returns t in UTC without a monotonic reading; the zero time stays
// zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func (r TokenRevocation) normalize() TokenRevocation {
	r.ExpiresAt, r.CreatedAt = utc(r.ExpiresAt), utc(r.CreatedAt)
	return r
}

func (r SubjectRevocation) normalize() SubjectRevocation {
	r.NotBefore, r.CreatedAt = utc(r.NotBefore), utc(r.CreatedAt)
	return r
}

// AppendEncode appends the binary encoding of r to dst and returns the
// extended buffer. The encoding is canonical (times in UTC to the
// nanosecond), in the notation of [Record.AppendEncode]:
//
//	u8   format version (1)
//	u8   type (1: token revocation)
//	str  jti
//	time expires_at
//	time created_at
//	str  creator
//
// AppendEncode does not validate r.
func (r *TokenRevocation) AppendEncode(dst []byte) []byte {
	return appendRevocation(dst, revocationToken, r.TokenID, r.ExpiresAt, r.CreatedAt, r.Creator)
}

// AppendEncode appends the binary encoding of r to dst and returns the
// extended buffer: that of [TokenRevocation.AppendEncode] with type 2, the
// subject in place of the jti and not_before in place of expires_at.
// AppendEncode does not validate r.
func (r *SubjectRevocation) AppendEncode(dst []byte) []byte {
	return appendRevocation(dst, revocationSubject, r.Subject, r.NotBefore, r.CreatedAt, r.Creator)
}

func appendRevocation(dst []byte, typ byte, id string, at, created time.Time, creator string) []byte {
	dst = append(dst, formatVersion, typ)
	dst = appendStr(dst, id)
	dst = appendTime(dst, at)
	dst = appendTime(dst, created)
	return appendStr(dst, creator)
}

// DecodeTokenRevocation decodes a token revocation encoded by
// [TokenRevocation.AppendEncode]. Like [DecodeRecord] it is strict, so that
// every accepted input is the canonical encoding of what it returns; it
// rejects the encoding of a subject revocation. It does not apply
// [TokenRevocation.Validate]. On error it returns the zero value and a
// *DecodeError. It never panics, and the result does not alias b.
func DecodeTokenRevocation(b []byte) (TokenRevocation, error) {
	d := decoder{b: b}
	id, at, created, creator, ok := d.revocation(revocationToken)
	if !ok {
		return TokenRevocation{}, &DecodeError{What: "token revocation", Offset: d.off, Reason: d.err}
	}
	return TokenRevocation{TokenID: id, ExpiresAt: at, CreatedAt: created, Creator: creator}, nil
}

// DecodeSubjectRevocation decodes a subject revocation encoded by
// [SubjectRevocation.AppendEncode], with the rules of
// [DecodeTokenRevocation].
func DecodeSubjectRevocation(b []byte) (SubjectRevocation, error) {
	d := decoder{b: b}
	subject, at, created, creator, ok := d.revocation(revocationSubject)
	if !ok {
		return SubjectRevocation{}, &DecodeError{What: "subject revocation", Offset: d.off, Reason: d.err}
	}
	return SubjectRevocation{Subject: subject, NotBefore: at, CreatedAt: created, Creator: creator}, nil
}

func (d *decoder) revocation(typ byte) (id string, at, created time.Time, creator string, ok bool) {
	if len(d.b) > MaxEncodedLen {
		return "", at, created, "", d.fail("value too long")
	}
	if len(d.b) < 2 {
		return "", at, created, "", d.fail("truncated")
	}
	d.s = string(d.b)
	if d.b[0] != formatVersion {
		return "", at, created, "", d.fail(fmt.Sprintf("unknown format version %d", d.b[0]))
	}
	if d.b[1] != typ {
		d.off = 1
		return "", at, created, "", d.fail(fmt.Sprintf("revocation type %d, want %d", d.b[1], typ))
	}
	d.off = 2
	if id, ok = d.str(); !ok {
		return "", time.Time{}, time.Time{}, "", false
	}
	if at, ok = d.time(); !ok {
		return "", time.Time{}, time.Time{}, "", false
	}
	if created, ok = d.time(); !ok {
		return "", time.Time{}, time.Time{}, "", false
	}
	if creator, ok = d.str(); !ok {
		return "", time.Time{}, time.Time{}, "", false
	}
	if d.off != len(d.b) {
		return "", time.Time{}, time.Time{}, "", d.fail("trailing bytes")
	}
	return id, at, created, creator, true
}

// RevokeToken revokes the JWT whose jti is r.TokenID and returns the
// revocation in effect. It is idempotent: revoking a revoked jti keeps the
// later ExpiresAt of the two (zero, forever, wins) and the first CreatedAt
// and Creator, and writes nothing when that changes nothing. It fails with
// a *RevocationError (errors.Is ErrInvalidRevocation) if r is invalid.
//
// Once RevokeToken returns, the revocation is durable (synced) and in
// effect: [Store.TokenRevoked] reports it, and [Store.RevocationGen] has
// moved past every value loaded before it took effect (by this call, or by
// the earlier one that made this one change nothing). ctx is checked
// before writing.
func (s *Store) RevokeToken(ctx context.Context, r TokenRevocation) (TokenRevocation, error) {
	var out TokenRevocation
	var wrote bool
	_, err := s.run(ctx, func() (*ChangeSet, error) {
		cs := &ChangeSet{}
		var err error
		out, err = cs.revokeToken(s, r)
		wrote = !cs.empty()
		return cs, err
	})
	if err != nil {
		return TokenRevocation{}, err
	}
	if wrote {
		s.m.writeRevocation.Inc()
	}
	return out, nil
}

// RevokeSubject revokes every JWT of r.Subject issued before r.NotBefore and
// returns the revocation in effect. It is monotonic: the stored NotBefore
// only moves forward, so a call with an earlier NotBefore than the stored
// one changes nothing (and writes nothing) and returns the stored
// revocation; a later one replaces it, CreatedAt and Creator included. It
// fails with a *RevocationError (errors.Is ErrInvalidRevocation) if r is
// invalid, NotBefore being required.
//
// Durability and visibility are those of [Store.RevokeToken].
func (s *Store) RevokeSubject(ctx context.Context, r SubjectRevocation) (SubjectRevocation, error) {
	var out SubjectRevocation
	var wrote bool
	_, err := s.run(ctx, func() (*ChangeSet, error) {
		cs := &ChangeSet{}
		var err error
		out, err = cs.revokeSubject(s, r)
		wrote = !cs.empty()
		return cs, err
	})
	if err != nil {
		return SubjectRevocation{}, err
	}
	if wrote {
		s.m.writeRevocation.Inc()
	}
	return out, nil
}

// revokeToken adds to cs the token revocation r merged with the one in
// effect in s, unless that changes nothing, and returns the revocation in
// effect once cs is committed. mu must be held.
func (cs *ChangeSet) revokeToken(s *Store, r TokenRevocation) (TokenRevocation, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r = r.normalize()
	if err := r.Validate(); err != nil {
		return TokenRevocation{}, err
	}
	old, exists := s.tokenRevs[r.TokenID]
	merged, changed := mergeTokenRevocation(old, exists, r)
	if changed {
		c := RevocationChange{Token: &merged}
		if exists {
			c.OldToken = &old
		}
		cs.Revocations = append(cs.Revocations, c)
	}
	return merged, nil
}

// revokeSubject is revokeToken for a subject revocation.
func (cs *ChangeSet) revokeSubject(s *Store, r SubjectRevocation) (SubjectRevocation, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r = r.normalize()
	if err := r.Validate(); err != nil {
		return SubjectRevocation{}, err
	}
	old, exists := s.subjectRevs[r.Subject]
	merged, changed := mergeSubjectRevocation(old, exists, r)
	if changed {
		c := RevocationChange{Subject: &merged}
		if exists {
			c.OldSubject = &old
		}
		cs.Revocations = append(cs.Revocations, c)
	}
	return merged, nil
}

// mergeTokenRevocation returns the token revocation in effect once r is
// applied over old (present when exists), and whether it differs from old.
func mergeTokenRevocation(old TokenRevocation, exists bool, r TokenRevocation) (TokenRevocation, bool) {
	switch {
	case !exists:
		return r, true
	case old.ExpiresAt.IsZero():
		return old, false
	case r.ExpiresAt.IsZero() || r.ExpiresAt.After(old.ExpiresAt):
		old.ExpiresAt = r.ExpiresAt
		return old, true
	}
	return old, false
}

// mergeSubjectRevocation returns the subject revocation in effect once r is
// applied over old (present when exists), and whether it differs from old.
func mergeSubjectRevocation(old SubjectRevocation, exists bool, r SubjectRevocation) (SubjectRevocation, bool) {
	if !exists || r.NotBefore.After(old.NotBefore) {
		return r, true
	}
	return old, false
}

// stageRevocations adds changes to b.
func stageRevocations(b *pebble.Batch, changes []RevocationChange) error {
	var vb []byte
	for _, c := range changes {
		var key []byte
		switch {
		case c.Token != nil:
			key, vb = tokenRevocationKey(c.Token.TokenID), c.Token.AppendEncode(vb[:0])
		case c.Subject != nil:
			key, vb = subjectRevocationKey(c.Subject.Subject), c.Subject.AppendEncode(vb[:0])
		default:
			panic("keystore: empty revocation change")
		}
		if err := b.Set(key, vb, nil); err != nil {
			return fmt.Errorf("keystore: write revocation: %w", err)
		}
	}
	return nil
}

// applyRevocations applies committed changes to the in-memory sets, then
// advances the revocation generation. mu must be held.
func (s *Store) applyRevocations(changes []RevocationChange) {
	s.revMu.Lock()
	for _, c := range changes {
		if c.Token != nil {
			s.tokenRevs[c.Token.TokenID] = *c.Token
		} else {
			s.subjectRevs[c.Subject.Subject] = *c.Subject
		}
	}
	s.revMu.Unlock()
	s.revGen.Add(1)
}

// TokenRevoked reports whether a JWT is revoked: its jti (when not empty) is
// revoked, or its subject has a revocation whose NotBefore is after
// issuedAt. A token without an "iat" claim (issuedAt zero) is revoked as
// soon as its subject has any revocation. The boundary: issuedAt before
// NotBefore is revoked, issuedAt equal to or after NotBefore is not.
//
// TokenRevoked reads memory only, allocates nothing, and takes a read lock
// that writers hold only to update two maps. A revocation acknowledged by
// RevokeToken or RevokeSubject is reported by every TokenRevoked call that
// starts after it returned. A token revocation is reported until it is
// purged, [RevocationRetention] after its ExpiresAt.
func (s *Store) TokenRevoked(jti, subject string, issuedAt time.Time) bool {
	s.revMu.RLock()
	defer s.revMu.RUnlock()
	if jti != "" {
		if _, ok := s.tokenRevs[jti]; ok {
			return true
		}
	}
	if r, ok := s.subjectRevs[subject]; ok {
		return issuedAt.IsZero() || issuedAt.Before(r.NotBefore)
	}
	return false
}

// RevocationGen returns the revocation generation. It is never zero, and it
// increases after every revocation has been applied in memory, before the
// revoking call returns. It lets a cache of verification decisions honour
// revocations at the cost of one atomic load per hit:
//
//   - load g := RevocationGen() before anything else;
//   - use a cached decision only if it was stamped with g;
//   - otherwise call TokenRevoked (after that load), decide, and stamp the
//     new decision with g, the value loaded before the check.
//
// Take a revocation R and a check C that starts after R returned. C loads a
// generation g at least as large as the one R's increment produced. A
// decision stamped g was made by a check that loaded g, hence after R's
// increment and so after R's maps were updated, and its TokenRevoked call
// came after that load: it saw R. A decision made before R carries a
// smaller stamp and is not used, even if it is stored in the cache after
// R returned. If C has no usable decision, its own TokenRevoked call starts
// after R returned and sees R.
func (s *Store) RevocationGen() uint64 {
	return s.revGen.Load()
}

// ListRevocations returns the revocations in effect: token revocations
// sorted by jti, subject revocations sorted by subject.
func (s *Store) ListRevocations() ([]TokenRevocation, []SubjectRevocation, error) {
	s.revMu.RLock()
	defer s.revMu.RUnlock()
	if s.closed.Load() {
		return nil, nil, ErrClosed
	}
	tokens := make([]TokenRevocation, 0, len(s.tokenRevs))
	for _, r := range s.tokenRevs {
		tokens = append(tokens, r)
	}
	subjects := make([]SubjectRevocation, 0, len(s.subjectRevs))
	for _, r := range s.subjectRevs {
		subjects = append(subjects, r)
	}
	slices.SortFunc(tokens, func(a, b TokenRevocation) int { return cmp.Compare(a.TokenID, b.TokenID) })
	slices.SortFunc(subjects, func(a, b SubjectRevocation) int { return cmp.Compare(a.Subject, b.Subject) })
	return tokens, subjects, nil
}

// revocationCounts returns the number of token and subject revocations in
// effect.
func (s *Store) revocationCounts() (tokens, subjects int) {
	s.revMu.RLock()
	defer s.revMu.RUnlock()
	return len(s.tokenRevs), len(s.subjectRevs)
}

// purgeable reports whether token revocation r may be forgotten at now.
func purgeable(r *TokenRevocation, now time.Time) bool {
	return !r.ExpiresAt.IsZero() && r.ExpiresAt.Add(RevocationRetention).Before(now)
}

// loadRevocations reads every stored revocation into memory, deleting token
// revocations that are purgeable at now. A value that does not decode, or
// does not match its key, makes the store corrupt: without it, revoked
// tokens would verify. Open calls it before the store is shared.
func (s *Store) loadRevocations(now time.Time) error {
	s.tokenRevs = make(map[string]TokenRevocation)
	s.subjectRevs = make(map[string]SubjectRevocation)
	var purge [][]byte
	err := s.scan(prefixTokenRevocation, func(key, v []byte) error {
		r, err := DecodeTokenRevocation(v)
		if err != nil {
			return err
		}
		if string(key[1:]) != r.TokenID {
			return errors.New("keystore: key and value disagree")
		}
		if purgeable(&r, now) {
			purge = append(purge, slices.Clone(key))
			return nil
		}
		s.tokenRevs[r.TokenID] = r
		return nil
	})
	if err == nil {
		err = s.scan(prefixSubjectRevocation, func(key, v []byte) error {
			r, err := DecodeSubjectRevocation(v)
			if err != nil {
				return err
			}
			if string(key[1:]) != r.Subject {
				return errors.New("keystore: key and value disagree")
			}
			s.subjectRevs[r.Subject] = r
			return nil
		})
	}
	if err != nil {
		return err
	}
	if len(purge) > 0 {
		if err := s.deleteKeys(purge); err != nil {
			// Not fatal: they are purged at a later pass or start.
			s.log.Warn("purging expired revocations failed", slog.Any("err", err))
		}
	}
	s.revGen.Store(1)
	return nil
}

// scan calls fn for every key with the one-byte prefix p and its value,
// which fn must not retain. An error from fn is reported as corruption of
// that key.
func (s *Store) scan(p byte, fn func(key, value []byte) error) error {
	lower := []byte{p}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return fmt.Errorf("keystore: read %q entries: %w", p, err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("keystore: read %q entries: %w", p, err)
		}
		if err := fn(it.Key(), v); err != nil {
			return fmt.Errorf("%w: entry %.64q: %w", ErrCorrupt, it.Key(), err)
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("keystore: read %q entries: %w", p, err)
	}
	return nil
}

// deleteKeys deletes keys in one batch, unsynced: it serves only purges,
// and a purge lost in a crash is done again.
func (s *Store) deleteKeys(keys [][]byte) error {
	if err := s.checkSpace(); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, k := range keys {
		if err := b.Delete(k, nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.NoSync)
}

// purgeRevocations forgets token revocations that are purgeable at now,
// store first, memory second: at most purgeBatch of them, among at most
// purgeScan examined (Go's map iteration starts at a random place, so
// successive passes cover a large set). It returns how many it forgot.
//
// The flush loop calls it, and must never wait for mu, which Close holds
// while it waits for the loop to end: when a write holds mu, the pass is
// skipped. Purging never makes a token less revoked than its own expiry
// does, so the generation is not advanced.
func (s *Store) purgeRevocations(now time.Time) int {
	if n, _ := s.revocationCounts(); n == 0 {
		return 0
	}
	if !s.mu.TryLock() {
		return 0
	}
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0
	}
	// Under mu the maps change only here, so reading them needs no revMu.
	var keys [][]byte
	var ids []string
	scanned := 0
	for id, r := range s.tokenRevs {
		if scanned == purgeScan || len(ids) == purgeBatch {
			break
		}
		scanned++
		if purgeable(&r, now) {
			ids = append(ids, id)
			keys = append(keys, tokenRevocationKey(id))
		}
	}
	if len(ids) == 0 {
		return 0
	}
	if err := s.deleteKeys(keys); err != nil {
		s.log.Warn("purging expired revocations failed", slog.Int("revocations", len(ids)), slog.Any("err", err))
		return 0
	}
	s.revMu.Lock()
	for _, id := range ids {
		delete(s.tokenRevs, id)
	}
	s.revMu.Unlock()
	return len(ids)
}

func tokenRevocationKey(jti string) []byte {
	return append([]byte{prefixTokenRevocation}, jti...)
}

func subjectRevocationKey(subject string) []byte {
	return append([]byte{prefixSubjectRevocation}, subject...)
}
