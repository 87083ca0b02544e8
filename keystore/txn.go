package keystore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A Txn is one read-check-write transaction: the function given to
// [Store.Apply] reads the committed state through it, decides, and stages
// changes — records, access requests, JWT revocations, audit entries —
// which Apply then commits together in one synced batch, all or none.
//
// Reads see the committed state, and the records and requests the Txn has
// staged itself. A Txn belongs to its function: it must not be kept, nor
// used by another goroutine, nor call the Store.
type Txn struct {
	s *Store
	b batch
}

// Apply runs fn under the store's write lock, so that nothing is written
// between its reads and its writes, and commits what it staged in one
// synced batch. If fn returns an error, Apply returns it unchanged and
// writes nothing. It returns the audit entries committed, with their Time
// and Seq. ctx is checked before writing; nothing is written when fn
// staged nothing.
func (s *Store) Apply(ctx context.Context, fn func(*Txn) error) ([]AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	tx := &Txn{s: s}
	if err := fn(tx); err != nil {
		return nil, err
	}
	if tx.b.empty() {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.commit(&tx.b); err != nil {
		return nil, err
	}
	for _, c := range tx.b.records {
		if c.old == nil {
			s.m.writeCreate.Inc()
		} else {
			s.m.writeUpdate.Inc()
		}
	}
	if len(tx.b.revocations) > 0 {
		s.m.writeRevocation.Inc()
	}
	if len(tx.b.requests) > 0 {
		s.m.writeRequest.Inc()
	}
	if len(tx.b.audit) > 0 {
		s.m.writeAudit.Inc()
	}
	return tx.b.audit, nil
}

// Audit appends entries to the audit log, synced, and returns them as
// committed (with their Time and Seq). It is [Store.Apply] with a Txn that
// only audits, for actions that change nothing in the store (a policy
// reload) or failed.
func (s *Store) Audit(ctx context.Context, entries ...AuditEntry) ([]AuditEntry, error) {
	return s.Apply(ctx, func(tx *Txn) error {
		tx.Audit(entries...)
		return nil
	})
}

// Get returns record id as staged or committed, or ErrNotFound.
func (tx *Txn) Get(id string) (Record, error) {
	for i := len(tx.b.records) - 1; i >= 0; i-- {
		if r := tx.b.records[i].new; r.ID == id {
			return r.clone(), nil
		}
	}
	return tx.s.getRecord(id)
}

// List returns the committed records of subject (see [Store.List]).
func (tx *Txn) List(subject string) ([]Record, error) { return tx.s.List(subject) }

// Create stages a new record, as [Store.Create] would store it, and returns
// it with the same errors.
func (tx *Txn) Create(r Record) (Record, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.Version = 1
	r = r.normalize()
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	switch _, err := tx.Get(r.ID); {
	case err == nil:
		return Record{}, fmt.Errorf("%w: %s", ErrExists, r.ID)
	case !errors.Is(err, ErrNotFound):
		return Record{}, err
	}
	if err := tx.digestsFree(&r); err != nil {
		return Record{}, err
	}
	tx.b.records = append(tx.b.records, change{nil, &r})
	return r, nil
}

// Update stages the result of fn applied to a copy of record id, with the
// rules and errors of [Store.Update], and returns it.
func (tx *Txn) Update(id string, fn func(*Record) error) (Record, error) {
	old, err := tx.Get(id)
	if err != nil {
		return Record{}, err
	}
	r := old.clone()
	if err := fn(&r); err != nil {
		return Record{}, err
	}
	if r.ID != id {
		return Record{}, fmt.Errorf("%w: %s became %q", ErrIDChanged, id, r.ID)
	}
	r.Version = old.Version + 1
	r = r.normalize()
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	if err := tx.digestsFree(&r); err != nil {
		return Record{}, err
	}
	tx.b.records = append(tx.b.records, change{&old, &r})
	return r, nil
}

// digestsFree reports ErrDigestInUse when r lists a digest that another
// record lists, committed or staged in tx.
func (tx *Txn) digestsFree(r *Record) error {
	for _, d := range digestsOf(r) {
		switch id, ok, err := tx.s.digestID(&d); {
		case err != nil:
			return err
		case ok && id != r.ID:
			return fmt.Errorf("%w: %v", ErrDigestInUse, d)
		}
		for _, c := range tx.b.records {
			if c.new.ID != r.ID && contains(digestsOf(c.new), d) {
				return fmt.Errorf("%w: %v", ErrDigestInUse, d)
			}
		}
	}
	return nil
}

// Request returns access request id as staged or committed, or
// ErrNotFound.
func (tx *Txn) Request(id string) (AccessRequest, error) {
	for i := len(tx.b.requests) - 1; i >= 0; i-- {
		if r := tx.b.requests[i].new; r.ID == id {
			return *r, nil
		}
	}
	return tx.s.getRequest(id)
}

// AgentRequest returns the latest access request of agentID, committed, and
// whether there is one.
func (tx *Txn) AgentRequest(agentID string) (AccessRequest, bool, error) {
	v, closer, err := tx.s.db.Get(agentRequestKey(agentID))
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return AccessRequest{}, false, nil
		}
		return AccessRequest{}, false, fmt.Errorf("keystore: read request of agent: %w", err)
	}
	id := string(v)
	closer.Close()
	r, err := tx.s.getRequest(id)
	if errors.Is(err, ErrNotFound) {
		return AccessRequest{}, false, nil // purged; the index entry is stale
	}
	return r, err == nil, err
}

// PendingRequests returns how many committed access requests are pending at
// now: in all, and from the client address addr.
func (tx *Txn) PendingRequests(addr string, now time.Time) (total, fromAddr int) {
	return tx.s.pendingCounts(addr, now)
}

// PutRequest stages r, a new access request or a new state of a stored
// one, and returns it as it will be stored (times in UTC). It fails with a
// *RecordError (errors.Is ErrInvalidRecord) if r is invalid, and with
// ErrIDChanged if r changes the agent of a stored request.
func (tx *Txn) PutRequest(r AccessRequest) (AccessRequest, error) {
	r = r.normalize()
	if err := r.Validate(); err != nil {
		return AccessRequest{}, err
	}
	var old *AccessRequest
	switch o, err := tx.Request(r.ID); {
	case err == nil:
		if o.AgentID != r.AgentID {
			return AccessRequest{}, fmt.Errorf("%w: request %s is for agent %q", ErrIDChanged, r.ID, o.AgentID)
		}
		old = &o
	case !errors.Is(err, ErrNotFound):
		return AccessRequest{}, err
	}
	tx.b.requests = append(tx.b.requests, requestChange{old, &r})
	return r, nil
}

// RevokeToken stages the JWT revocation r merged with the one in effect, as
// [Store.RevokeToken] does, and returns the revocation in effect once it is
// committed. It stages nothing when r changes nothing. r must be valid.
func (tx *Txn) RevokeToken(r TokenRevocation) (TokenRevocation, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r = r.normalize()
	if err := r.Validate(); err != nil {
		return TokenRevocation{}, err
	}
	old, exists := tx.s.tokenRevs[r.TokenID]
	merged, changed := mergeTokenRevocation(old, exists, r)
	if changed {
		tx.b.revocations = append(tx.b.revocations, revocationChange{token: &merged})
	}
	return merged, nil
}

// RevokeSubject is RevokeToken for a subject revocation (see
// [Store.RevokeSubject]).
func (tx *Txn) RevokeSubject(r SubjectRevocation) (SubjectRevocation, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r = r.normalize()
	if err := r.Validate(); err != nil {
		return SubjectRevocation{}, err
	}
	old, exists := tx.s.subjectRevs[r.Subject]
	merged, changed := mergeSubjectRevocation(old, exists, r)
	if changed {
		tx.b.revocations = append(tx.b.revocations, revocationChange{subject: &merged})
	}
	return merged, nil
}

// Audit stages audit entries. They are validated at commit: an invalid one
// fails the whole Apply (see [AuditEntry.Validate]).
func (tx *Txn) Audit(entries ...AuditEntry) {
	tx.b.audit = append(tx.b.audit, entries...)
}
