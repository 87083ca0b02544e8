package keystore

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	b ChangeSet
}

// Apply runs fn under the store's write lock, so that nothing is written
// between its reads and its writes, and commits what it staged in one
// synced batch. If fn returns an error, Apply returns it unchanged and
// writes nothing. It returns the audit entries committed, with their Time
// and Seq. ctx is checked before writing; nothing is written when fn
// staged nothing. In replicated mode fn may run more than once: again when
// another node changed what it read before its change reached the shared
// log (see [Replicator]); only the last run's changes are written.
func (s *Store) Apply(ctx context.Context, fn func(*Txn) error) ([]AuditEntry, error) {
	var tx *Txn
	audit, err := s.run(ctx, func() (*ChangeSet, error) {
		tx = &Txn{s: s}
		if err := fn(tx); err != nil {
			return nil, err
		}
		return &tx.b, nil
	})
	if err != nil || tx.b.empty() {
		return audit, err
	}
	for _, c := range tx.b.Records {
		if c.Old == nil {
			s.m.writeCreate.Inc()
		} else {
			s.m.writeUpdate.Inc()
		}
	}
	if len(tx.b.Revocations) > 0 {
		s.m.writeRevocation.Inc()
	}
	if len(tx.b.Requests) > 0 {
		s.m.writeRequest.Inc()
	}
	if len(tx.b.Audit) > 0 {
		s.m.writeAudit.Inc()
	}
	return audit, nil
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
	for i := len(tx.b.Records) - 1; i >= 0; i-- {
		if r := tx.b.Records[i].New; r.ID == id {
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
	tx.b.Records = append(tx.b.Records, RecordChange{nil, &r})
	return r, nil
}

// Update stages the result of fn applied to a copy of record id, with the
// rules and errors of [Store.Update], and returns it.
func (tx *Txn) Update(id string, fn func(*Record) error) (Record, error) {
	old, err := tx.Get(id)
	if err != nil {
		return Record{}, err
	}
	r, err := updated(&old, fn)
	if err != nil {
		return Record{}, err
	}
	if err := tx.digestsFree(&r); err != nil {
		return Record{}, err
	}
	tx.b.Records = append(tx.b.Records, RecordChange{&old, &r})
	return r, nil
}

// digestsFree reports ErrDigestInUse when r lists a digest that another
// record lists, committed or staged in tx.
func (tx *Txn) digestsFree(r *Record) error {
	for _, d := range r.Digests() {
		switch id, ok, err := tx.s.digestID(&d); {
		case err != nil:
			return err
		case ok && id != r.ID:
			return fmt.Errorf("%w: %v", ErrDigestInUse, d)
		}
		for _, c := range tx.b.Records {
			if c.New.ID != r.ID && slices.Contains(c.New.Digests(), d) {
				return fmt.Errorf("%w: %v", ErrDigestInUse, d)
			}
		}
	}
	return nil
}

// Request returns access request id as staged or committed, or
// ErrNotFound.
func (tx *Txn) Request(id string) (AccessRequest, error) {
	for i := len(tx.b.Requests) - 1; i >= 0; i-- {
		if r := tx.b.Requests[i].New; r.ID == id {
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
	tx.b.Requests = append(tx.b.Requests, RequestChange{old, &r})
	return r, nil
}

// RevokeToken stages the JWT revocation r merged with the one in effect, as
// [Store.RevokeToken] does, and returns the revocation in effect once it is
// committed. It stages nothing when r changes nothing.
func (tx *Txn) RevokeToken(r TokenRevocation) (TokenRevocation, error) {
	return tx.b.revokeToken(tx.s, r)
}

// RevokeSubject is RevokeToken for a subject revocation (see
// [Store.RevokeSubject]).
func (tx *Txn) RevokeSubject(r SubjectRevocation) (SubjectRevocation, error) {
	return tx.b.revokeSubject(tx.s, r)
}

// Audit stages audit entries. They are validated at commit: an invalid one
// fails the whole Apply (see [AuditEntry.Validate]).
func (tx *Txn) Audit(entries ...AuditEntry) {
	tx.b.Audit = append(tx.b.Audit, entries...)
}
