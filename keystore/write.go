package keystore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Limits on meta values.
const (
	MaxMetaNameLen  = 128     // bytes of a meta name
	MaxMetaValueLen = 1 << 20 // bytes of a meta value (a replicated policy document is one)
)

// Create stores a new record and returns it as stored: Version 1, times in
// UTC, CreatedAt set to the current time if it was zero, empty lists and
// maps as nil. It fails with a *RecordError (errors.Is ErrInvalidRecord) if
// r is invalid, ErrExists if r.ID is taken, and ErrDigestInUse if r.Digest
// or r.PrevDigest already indexes a record; in each case nothing changes.
// The write is synced before Create returns; ctx is checked before writing.
func (s *Store) Create(ctx context.Context, r Record) (Record, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.Version = 1
	r = r.normalize()
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	if _, err := s.run(ctx, func() (*ChangeSet, error) {
		if err := s.absent(r.ID); err != nil {
			return nil, err
		}
		return &ChangeSet{Records: []RecordChange{{nil, &r}}}, nil
	}); err != nil {
		return Record{}, err
	}
	s.m.writeCreate.Inc()
	return r, nil
}

// absent returns nil when no record has ID id, ErrExists when one has. mu
// must be held.
func (s *Store) absent(id string) error {
	switch _, err := s.getRecord(id); {
	case err == nil:
		return fmt.Errorf("%w: %s", ErrExists, id)
	case !errors.Is(err, ErrNotFound):
		return err
	}
	return nil
}

// CreateBatch stores new records in one synced batch, all or none, and
// returns them as stored (see Create). It is how an existing estate is
// imported at once: one sync for the whole batch instead of one per record.
// Besides the errors of Create, it fails with ErrExists or ErrDigestInUse
// when two records of the batch share an ID or a digest. ctx is checked
// before writing.
func (s *Store) CreateBatch(ctx context.Context, rs []Record) ([]Record, error) {
	out := make([]Record, len(rs))
	ids := make(map[string]bool, len(rs))
	digests := make(map[Digest]bool, len(rs))
	now := time.Now()
	for i, r := range rs {
		if r.CreatedAt.IsZero() {
			r.CreatedAt = now
		}
		r.Version = 1
		r = r.normalize()
		if err := r.Validate(); err != nil {
			return nil, err
		}
		if ids[r.ID] {
			return nil, fmt.Errorf("%w: %s appears twice in the batch", ErrExists, r.ID)
		}
		ids[r.ID] = true
		for _, d := range r.Digests() {
			if digests[d] {
				return nil, fmt.Errorf("%w: %v appears twice in the batch", ErrDigestInUse, d)
			}
			digests[d] = true
		}
		out[i] = r
	}
	if _, err := s.run(ctx, func() (*ChangeSet, error) {
		changes := make([]RecordChange, len(out))
		for i := range out {
			if err := s.absent(out[i].ID); err != nil {
				return nil, err
			}
			changes[i] = RecordChange{nil, &out[i]}
		}
		return &ChangeSet{Records: changes}, nil
	}); err != nil {
		return nil, err
	}
	s.m.writeCreate.Add(float64(len(out)))
	return out, nil
}

// Update applies fn to a copy of record id and stores the result, under the
// store's write lock: fn sees the latest state and no other write
// interleaves. If fn returns an error, Update returns it unchanged and
// stores nothing. The result must keep the ID (else ErrIDChanged) and pass
// [Record.Validate]; its Version is set to the old one plus one, and a
// digest it adds must not index another record (ErrDigestInUse). Digests
// the result no longer lists stop resolving at once: once Update returns,
// no Lookup returns the old state. fn must not call the Store; in
// replicated mode it may run more than once (see [Replicator]). The write
// is synced before Update returns; ctx is checked before writing.
func (s *Store) Update(ctx context.Context, id string, fn func(*Record) error) (Record, error) {
	var out Record
	if _, err := s.run(ctx, func() (*ChangeSet, error) {
		old, err := s.getRecord(id)
		if err != nil {
			return nil, err
		}
		r, err := updated(&old, fn)
		if err != nil {
			return nil, err
		}
		out = r
		return &ChangeSet{Records: []RecordChange{{&old, &r}}}, nil
	}); err != nil {
		return Record{}, err
	}
	s.m.writeUpdate.Inc()
	return out, nil
}

// updated returns fn applied to a copy of old, checked and with its
// version advanced (see Update).
func updated(old *Record, fn func(*Record) error) (Record, error) {
	r := old.clone()
	if err := fn(&r); err != nil {
		return Record{}, err
	}
	if r.ID != old.ID {
		return Record{}, fmt.Errorf("%w: %s became %q", ErrIDChanged, old.ID, r.ID)
	}
	r.Version = old.Version + 1
	r = r.normalize()
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// maxAttempts bounds how often a replicated write is built again after a
// concurrent change on another node invalidated what it read.
const maxAttempts = 8

// run builds a change set under the write lock and commits it. Without a
// replicator it commits here, in one synced batch, before releasing the
// lock. With one, it releases the lock and hands the set to the replicator,
// which returns once the change is committed to the shared log and applied
// to this store; when a guard of the set failed (another node changed what
// build read), run builds it again from the state that includes that
// change. build returns a nil or empty set to write nothing. run returns
// the audit entries as this store committed them.
func (s *Store) run(ctx context.Context, build func() (*ChangeSet, error)) ([]AuditEntry, error) {
	for attempt := 1; ; attempt++ {
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		cs, err := build()
		if err == nil && !cs.empty() {
			err = ctx.Err()
		}
		if err != nil || cs.empty() {
			s.mu.Unlock()
			return nil, err
		}
		if s.repl == nil {
			err := s.commit(cs, nil)
			s.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return cs.Audit, nil
		}
		// The feed's changes skip the digest check of commit: make it
		// here, as commit does for a local write.
		if err := s.digestsFreeIn(cs); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		// What reaches the log must apply on every replica: audit entries
		// are checked here, as the records and revocations were when built.
		for i := range cs.Audit {
			if cs.Audit[i].Time.IsZero() {
				cs.Audit[i].Time = time.Now().UTC()
			}
			if err := cs.Audit[i].Validate(); err != nil {
				s.mu.Unlock()
				return nil, err
			}
		}
		s.mu.Unlock()
		audit, err := s.repl.Replicate(ctx, cs)
		if errors.Is(err, ErrConflict) && attempt < maxAttempts {
			continue
		}
		return audit, err
	}
}

// commit is the store's single write path. It stages cs: for each record
// it checks that the digests the new one adds index no other record and
// derives every index change from the old/new pair; then requests,
// revocations, meta values and audit entries (giving the entries their
// sequence numbers), and, for a change from a replication feed, the
// position in the feed. It commits with pebble.Sync, then invalidates the
// cached state of every digest any of the records lists, and, only once
// the commit succeeded, applies the revocations and pending requests to
// memory and advances the revocation generation. Every write goes through
// commit, whether it comes from the admin API or from a replication feed
// ([Store.ApplyReplicated]). mu must be held.
func (s *Store) commit(cs *ChangeSet, pos *ReplicaPos) error {
	if err := s.writeRoom(); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	var touched []Digest
	if pos == nil {
		if err := s.digestsFreeIn(cs); err != nil {
			return err
		}
	}
	// Removals first: a digest may move from one record to another.
	for _, c := range cs.Records {
		if err := stageRemove(b, c.Old, c.New); err != nil {
			return err
		}
		touched = append(append(touched, c.Old.Digests()...), c.New.Digests()...)
	}
	for _, c := range cs.Records {
		if err := stagePut(b, c.Old, c.New); err != nil {
			return err
		}
	}
	for _, k := range cs.deletes {
		if err := b.Delete(k, nil); err != nil {
			return fmt.Errorf("keystore: write: %w", err)
		}
	}
	for _, c := range cs.Requests {
		if err := stageRequest(b, c); err != nil {
			return err
		}
	}
	if err := stageRevocations(b, cs.Revocations); err != nil {
		return err
	}
	for _, c := range cs.Meta {
		if err := b.Set(metaKey(c.Name), c.New, nil); err != nil {
			return fmt.Errorf("keystore: write meta %s: %w", c.Name, err)
		}
	}
	if len(cs.Audit) > 0 {
		seq := s.auditSeq
		for i := range cs.Audit {
			if err := s.stageAudit(b, &cs.Audit[i]); err != nil {
				s.auditSeq = seq
				return err
			}
		}
		if err := b.Set(metaKey(metaAuditSeq), binary.BigEndian.AppendUint64(nil, s.auditSeq), nil); err != nil {
			return fmt.Errorf("keystore: write audit entry: %w", err)
		}
	}
	if pos != nil {
		if err := b.Set(metaKey(metaReplicaPos), pos.appendBinary(nil), nil); err != nil {
			return fmt.Errorf("keystore: write replica position: %w", err)
		}
	}
	s.noteDigests(cs)
	err := b.Commit(pebble.Sync)
	// Invalidate even if the commit failed: its outcome is then unknown.
	s.invalidate(touched)
	if err != nil {
		// Memory keeps only what is known to be durable, which the
		// revocation merges rely on.
		s.log.Error("write failed", slog.Int("records", len(cs.Records)), slog.Int("requests", len(cs.Requests)),
			slog.Int("revocations", len(cs.Revocations)), slog.Int("audit_entries", len(cs.Audit)), slog.Any("err", err))
		return fmt.Errorf("keystore: write: %w", err)
	}
	for _, c := range cs.Requests {
		if c.New != nil {
			s.notePending(c.New)
		} else {
			delete(s.pendingReqs, c.Old.ID)
		}
	}
	if len(cs.Revocations) > 0 {
		s.applyRevocations(cs.Revocations)
	}
	if pos != nil {
		s.replicaPos.Store(pos)
	}
	return nil
}

// invalidate makes every later Lookup of the digests read the store again:
// it advances their generations, then drops their cached state.
func (s *Store) invalidate(touched []Digest) {
	for i := range touched {
		s.shard(&touched[i]).Add(1)
	}
	for i := range touched {
		key := touched[i].cacheKey()
		s.cache.Del(key)
		s.neg.Del(key)
	}
}

// digestsFreeIn returns ErrDigestInUse when a record change of cs adds a
// digest that indexes another record. mu must be held.
func (s *Store) digestsFreeIn(cs *ChangeSet) error {
	for _, c := range cs.Records {
		if err := s.digestsFreeFor(c.Old, c.New); err != nil {
			return err
		}
	}
	return nil
}

// digestsFreeFor returns ErrDigestInUse when new lists a digest that old
// does not and that indexes another record. A change from the replication
// feed skips this check: the shared log guards digests, and its order is
// the truth.
func (s *Store) digestsFreeFor(old, new *Record) error {
	if new == nil {
		return nil
	}
	for _, d := range addedDigests(old, new) {
		switch id, ok, err := s.digestID(&d); {
		case err != nil:
			return err
		case ok && id != new.ID:
			return fmt.Errorf("%w: %v", ErrDigestInUse, d)
		}
	}
	return nil
}

// stageRemove adds to b the removal of what old indexes and new does not:
// digests, the subject entry and, when new is nil (a deletion, only from
// the replication feed), the record and its last use.
func stageRemove(b *pebble.Batch, old, new *Record) error {
	if old == nil {
		return nil
	}
	var keys [][]byte
	for _, d := range addedDigests(new, old) { // what the change takes out of the index
		keys = append(keys, digestKey(nil, &d))
	}
	if new == nil || old.Subject != new.Subject {
		keys = append(keys, subjectKey(old.Subject, old.ID))
	}
	if new == nil {
		keys = append(keys, recordKey(old.ID), lastUsedKey(old.ID))
	}
	for _, k := range keys {
		if err := b.Delete(k, nil); err != nil {
			return fmt.Errorf("keystore: write %s: %w", old.ID, err)
		}
	}
	return nil
}

// stagePut adds to b record new and what it indexes that old does not.
func stagePut(b *pebble.Batch, old, new *Record) error {
	if new == nil {
		return nil
	}
	var kb [1 + len(Digest{})]byte
	for _, d := range addedDigests(old, new) {
		if err := b.Set(digestKey(kb[:0], &d), []byte(new.ID), nil); err != nil {
			return fmt.Errorf("keystore: write %s: %w", new.ID, err)
		}
	}
	if old == nil || old.Subject != new.Subject {
		if err := b.Set(subjectKey(new.Subject, new.ID), nil, nil); err != nil {
			return fmt.Errorf("keystore: write %s: %w", new.ID, err)
		}
	}
	if err := b.Set(recordKey(new.ID), new.AppendEncode(nil), nil); err != nil {
		return fmt.Errorf("keystore: write %s: %w", new.ID, err)
	}
	return nil
}

// addedDigests returns the digests new is found by that old is not (either
// may be nil): what a change from old to new adds to the digest index.
func addedDigests(old, new *Record) []Digest {
	oldDigests := old.Digests()
	var added []Digest
	for _, d := range new.Digests() {
		if !slices.Contains(oldDigests, d) {
			added = append(added, d)
		}
	}
	return added
}

// Digests returns the digests r is found by: its Digest, and its
// PrevDigest during a rotation's grace. A nil r lists none.
func (r *Record) Digests() []Digest {
	if r == nil {
		return nil
	}
	if r.PrevDigest.IsZero() {
		return []Digest{r.Digest}
	}
	return []Digest{r.Digest, r.PrevDigest}
}

// Meta returns the value named name. If there is none, it calls create and
// stores its value (synced) before returning it; create's error is returned
// unchanged and stores nothing. create runs under the store's write lock,
// so concurrent callers agree on one value; it must not call the Store.
// Meta holds small per-deployment values such as the admin-key digest. In
// replicated mode the value is shared by every node: when another node
// stored one first, Meta returns that one (create may then have run for
// nothing). The returned slice is the caller's.
func (s *Store) Meta(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	if err := validMetaName(name); err != nil {
		return nil, err
	}
	var value, created []byte
	_, err := s.run(ctx, func() (*ChangeSet, error) {
		v, ok, err := s.getMeta(name)
		if err != nil || ok {
			value = v
			return nil, err
		}
		if created == nil {
			if created, err = create(); err != nil {
				return nil, err
			}
			if err := validMetaValue(name, created); err != nil {
				return nil, err
			}
		}
		value = created
		return &ChangeSet{Meta: []MetaChange{{Name: name, New: created}}}, nil
	})
	if err != nil {
		return nil, err
	}
	return value, nil
}

// SetMeta stores value under name, synced, replacing any previous value.
func (s *Store) SetMeta(ctx context.Context, name string, value []byte) error {
	if err := validMetaName(name); err != nil {
		return err
	}
	if err := validMetaValue(name, value); err != nil {
		return err
	}
	value = append([]byte{}, value...)
	_, err := s.run(ctx, func() (*ChangeSet, error) {
		old, ok, err := s.getMeta(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			old = nil
		}
		return &ChangeSet{Meta: []MetaChange{{Name: name, Old: old, New: value}}}, nil
	})
	if err != nil {
		return err
	}
	s.m.writeMeta.Inc()
	return nil
}

// GetMeta returns the value named name and whether there is one.
func (s *Store) GetMeta(name string) ([]byte, bool, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return nil, false, ErrClosed
	}
	return s.getMeta(name)
}

// getMeta reads meta value name. closeMu must be held for reading, or mu.
func (s *Store) getMeta(name string) ([]byte, bool, error) {
	v, closer, err := s.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("keystore: read meta %s: %w", name, err)
	}
	v = append([]byte{}, v...)
	closer.Close()
	return v, true, nil
}

func validMetaName(name string) error {
	if name == "" || !validLabel(name, MaxMetaNameLen) {
		return fmt.Errorf("keystore: invalid meta name %.64q: must be 1 to %d bytes of UTF-8 without control characters", name, MaxMetaNameLen)
	}
	return nil
}

func validMetaValue(name string, value []byte) error {
	if len(value) > MaxMetaValueLen {
		return fmt.Errorf("keystore: meta %s: value of %d bytes exceeds %d", name, len(value), MaxMetaValueLen)
	}
	return nil
}
