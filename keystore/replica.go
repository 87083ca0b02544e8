package keystore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Errors of replicated mode.
var (
	// ErrConflict reports a replicated write that kept meeting concurrent
	// changes from other nodes to what it read; nothing was written.
	ErrConflict = errors.New("keystore: concurrent change on another node")
	// ErrUnavailable reports a replicated write that could not reach the
	// shared store. Whether it was committed is unknown: it may be applied
	// later, when the feed delivers it.
	ErrUnavailable = errors.New("keystore: shared store unavailable")
)

// A ChangeSet is one atomic write: record changes, access-request changes,
// JWT revocations (already merged with the ones in effect), meta values
// and audit entries, committed all or none. Each change carries the value
// it replaces (nil when there was none), which a [Replicator] turns into a
// guard against lost updates.
type ChangeSet struct {
	Records     []RecordChange
	Requests    []RequestChange
	Revocations []RevocationChange
	Meta        []MetaChange
	Audit       []AuditEntry

	deletes [][]byte // further keys to delete, by a resync
}

// A RecordChange replaces record Old (nil when there is none) by New. A
// nil New deletes Old; only a replication feed deletes records.
type RecordChange struct{ Old, New *Record }

// A RequestChange replaces access request Old (nil when there is none) by
// New. A nil New deletes Old; only a replication feed deletes requests
// (a node purges its own expired ones).
type RequestChange struct{ Old, New *AccessRequest }

// A RevocationChange stores one JWT revocation: exactly one of Token and
// Subject is set, and OldToken or OldSubject is the revocation it
// replaces, when there is one.
type RevocationChange struct {
	Token, OldToken     *TokenRevocation
	Subject, OldSubject *SubjectRevocation
}

// A MetaChange sets meta value Name from Old (nil when there is none) to
// New.
type MetaChange struct {
	Name     string
	Old, New []byte
}

func (cs *ChangeSet) empty() bool {
	return cs == nil || len(cs.Records)+len(cs.Requests)+len(cs.Revocations)+len(cs.Meta)+len(cs.Audit) == 0
}

// A Replicator commits the store's writes to a shared, ordered log that
// every replica follows (see [Options.Replicator]). With one, a write
// builds its ChangeSet under the store's write lock from the local
// replica, then hands it to Replicate without the lock.
type Replicator interface {
	// Replicate commits cs to the shared log, provided that every value a
	// change replaces is still the one in the log, and returns once this
	// store has applied the change ([Store.ApplyReplicated] or
	// [Store.Resync]), with the audit entries as this store committed
	// them. When a replaced value has changed, it returns an error
	// wrapping ErrConflict once this store has applied the change that
	// made it fail, and the write is built again. An error wrapping
	// ErrUnavailable leaves the outcome unknown.
	Replicate(ctx context.Context, cs *ChangeSet) ([]AuditEntry, error)
}

// A ReplicaPos is how far a replica has followed the shared log: the
// revision of the last change applied, when that change was committed (by
// the clock of the node that made it), and which log it is a position in
// (an identifier the follower chooses; revisions of another log mean
// nothing).
type ReplicaPos struct {
	Revision   uint64
	CommitTime time.Time
	Source     uint64
}

// metaReplicaPos is the meta value holding the replica's position, written
// in the batch of each change applied from the feed.
const metaReplicaPos = "replica_pos"

func (p *ReplicaPos) appendBinary(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, p.Revision)
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.CommitTime.UnixNano()))
	return binary.BigEndian.AppendUint64(dst, p.Source)
}

// loadReplicaPos reads the replica's position. Open calls it before the
// store is shared.
func (s *Store) loadReplicaPos() error {
	v, ok, err := s.getMeta(metaReplicaPos)
	if err != nil || !ok {
		s.replicaPos.Store(&ReplicaPos{})
		return err
	}
	if len(v) != 24 {
		return fmt.Errorf("%w: replica position of %d bytes", ErrCorrupt, len(v))
	}
	s.replicaPos.Store(&ReplicaPos{
		Revision:   binary.BigEndian.Uint64(v),
		CommitTime: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))).UTC(),
		Source:     binary.BigEndian.Uint64(v[16:]),
	})
	return nil
}

// ReplicaPos returns the position of the last change applied from the
// shared log; zero when the store has never applied one.
func (s *Store) ReplicaPos() ReplicaPos { return *s.replicaPos.Load() }

// ApplyReplicated applies the changes of one revision of the shared log,
// in one synced batch with the new position, through the same commit as
// every local write: caches are invalidated and revocations take effect
// with the same guarantee. Only the New side of each change is read: the
// values replaced are the replica's own (for a deletion, Old names the
// record or request by its ID). A revision at or before the replica's
// position is skipped, so a feed may deliver a change again. It returns
// the audit entries as committed here.
func (s *Store) ApplyReplicated(pos ReplicaPos, cs *ChangeSet) ([]AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if pos.Revision <= s.replicaPos.Load().Revision {
		return nil, nil
	}
	local := &ChangeSet{Meta: cs.Meta}
	for _, e := range cs.Audit {
		// A replica that cannot store an entry still applies the change.
		if err := e.Validate(); err != nil {
			s.log.Error("skipping an invalid audit entry from the feed", slog.Uint64("revision", pos.Revision), slog.Any("err", err))
			continue
		}
		local.Audit = append(local.Audit, e)
	}
	staged := map[string]*Record{}
	for _, c := range cs.Records {
		id := idOf(c)
		old, ok := staged[id]
		if !ok {
			switch r, err := s.getRecord(id); {
			case err == nil:
				old = &r
			case !errors.Is(err, ErrNotFound):
				return nil, err
			}
		}
		if old == nil && c.New == nil {
			continue
		}
		local.Records = append(local.Records, RecordChange{old, c.New})
		staged[id] = c.New
	}
	for _, c := range cs.Requests {
		id := ""
		if c.New != nil {
			id = c.New.ID
		} else {
			id = c.Old.ID
		}
		var old *AccessRequest
		switch r, err := s.getRequest(id); {
		case err == nil:
			old = &r
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
		if old == nil && c.New == nil {
			continue
		}
		local.Requests = append(local.Requests, RequestChange{old, c.New})
	}
	for _, c := range cs.Revocations {
		local.Revocations = append(local.Revocations, RevocationChange{Token: c.Token, Subject: c.Subject})
	}
	if err := s.commit(local, &pos); err != nil {
		return nil, err
	}
	return local.Audit, nil
}

func idOf(c RecordChange) string {
	if c.New != nil {
		return c.New.ID
	}
	return c.Old.ID
}

// Resync replaces the replica's whole replicated state — records, access
// requests, JWT revocations — by snap, a consistent snapshot of the shared
// log at pos, and sets the meta values snap lists, in one synced batch:
// the replica then holds exactly the snapshot. Records, requests and
// revocations that snap lacks are deleted; every cached entry is
// invalidated. It is how a replica catches up when the log no longer holds
// the changes it missed. Only the New side of snap's changes is read.
func (s *Store) Resync(pos ReplicaPos, snap *ChangeSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	cs := &ChangeSet{Meta: snap.Meta}
	if err := s.diffRecords(snap.Records, cs); err != nil {
		return err
	}
	if err := s.diffRequests(snap.Requests, cs); err != nil {
		return err
	}
	revs := s.replaceRevocations(snap.Revocations, cs)
	if err := s.commit(cs, &pos); err != nil {
		return err
	}
	s.revMu.Lock()
	s.tokenRevs, s.subjectRevs = revs.tokens, revs.subjects
	s.revMu.Unlock()
	s.revGen.Add(1)
	s.pendingReqs = map[string]pendingRequest{}
	for _, c := range snap.Requests {
		s.notePending(c.New)
	}
	for i := range s.gens {
		s.gens[i].Add(1)
	}
	return nil
}

// diffRecords adds to cs the changes that turn the replica's records into
// want. mu must be held.
func (s *Store) diffRecords(want []RecordChange, cs *ChangeSet) error {
	byID := make(map[string]*Record, len(want))
	for _, c := range want {
		byID[c.New.ID] = c.New
	}
	var buf []byte
	err := s.scan(prefixRecord, func(key, value []byte) error {
		id := string(key[1:])
		old, err := DecodeRecord(value)
		if err != nil {
			return fmt.Errorf("keystore: record %s: %w", id, err)
		}
		r, ok := byID[id]
		delete(byID, id)
		switch {
		case !ok:
			cs.Records = append(cs.Records, RecordChange{&old, nil})
		case !bytes.Equal(value, r.AppendEncode(buf[:0])):
			cs.Records = append(cs.Records, RecordChange{&old, r})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range want {
		if r, ok := byID[c.New.ID]; ok {
			cs.Records = append(cs.Records, RecordChange{nil, r})
		}
	}
	return nil
}

// diffRequests adds to cs the changes that turn the replica's access
// requests into want. mu must be held.
func (s *Store) diffRequests(want []RequestChange, cs *ChangeSet) error {
	byID := make(map[string]*AccessRequest, len(want))
	for _, c := range want {
		byID[c.New.ID] = c.New
	}
	err := s.scanRequests(s.db, func(_ []byte, old *AccessRequest) error {
		r, ok := byID[old.ID]
		delete(byID, old.ID)
		o := *old
		switch {
		case !ok:
			cs.Requests = append(cs.Requests, RequestChange{&o, nil})
		case !bytes.Equal(o.AppendEncode(nil), r.AppendEncode(nil)):
			cs.Requests = append(cs.Requests, RequestChange{&o, r})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range want {
		if r, ok := byID[c.New.ID]; ok {
			cs.Requests = append(cs.Requests, RequestChange{nil, r})
		}
	}
	return nil
}

type revocationSets struct {
	tokens   map[string]TokenRevocation
	subjects map[string]SubjectRevocation
}

// replaceRevocations adds to cs the revocations of want, and returns the
// in-memory sets they make; revocations the replica holds beyond want are
// deleted in the same batch, through a delete of every stored revocation
// key that want does not set again. mu must be held.
func (s *Store) replaceRevocations(want []RevocationChange, cs *ChangeSet) revocationSets {
	sets := revocationSets{map[string]TokenRevocation{}, map[string]SubjectRevocation{}}
	for _, c := range want {
		if c.Token != nil {
			sets.tokens[c.Token.TokenID] = *c.Token
		} else {
			sets.subjects[c.Subject.Subject] = *c.Subject
		}
		cs.Revocations = append(cs.Revocations, RevocationChange{Token: c.Token, Subject: c.Subject})
	}
	for jti := range s.tokenRevs {
		if _, ok := sets.tokens[jti]; !ok {
			cs.deletes = append(cs.deletes, tokenRevocationKey(jti))
		}
	}
	for subject := range s.subjectRevs {
		if _, ok := sets.subjects[subject]; !ok {
			cs.deletes = append(cs.deletes, subjectRevocationKey(subject))
		}
	}
	return sets
}

// A Fingerprint identifies a replica's replicated state: two replicas at
// the same revision hold the same records, access requests and JWT
// revocations exactly when their digests are equal.
type Fingerprint struct {
	Pos                ReplicaPos
	Digest             string // SHA-256, hex
	Records            int
	Requests           int
	TokenRevocations   int
	SubjectRevocations int
}

// Fingerprint hashes the replicated state — every record, access request
// and JWT revocation as stored — under the write lock, so that no change is
// applied while it reads. It reads the whole store: an operator's check,
// not a hot path.
func (s *Store) Fingerprint() (Fingerprint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return Fingerprint{}, ErrClosed
	}
	f := Fingerprint{Pos: *s.replicaPos.Load()}
	h := sha256.New()
	var lb [binary.MaxVarintLen64]byte
	for _, p := range []struct {
		prefix byte
		n      *int
	}{{prefixRecord, &f.Records}, {prefixRequest, &f.Requests}, {prefixTokenRevocation, &f.TokenRevocations}, {prefixSubjectRevocation, &f.SubjectRevocations}} {
		err := s.scan(p.prefix, func(key, value []byte) error {
			h.Write(binary.AppendUvarint(lb[:0], uint64(len(key))))
			h.Write(key)
			h.Write(binary.AppendUvarint(lb[:0], uint64(len(value))))
			h.Write(value)
			*p.n++
			return nil
		})
		if err != nil {
			return Fingerprint{}, err
		}
	}
	f.Digest = hex.EncodeToString(h.Sum(nil))
	return f, nil
}
