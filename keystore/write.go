package keystore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Limits on meta values.
const (
	MaxMetaNameLen  = 128     // bytes of a meta name
	MaxMetaValueLen = 1 << 16 // bytes of a meta value
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return Record{}, ErrClosed
	}
	switch _, err := s.getRecord(r.ID); {
	case err == nil:
		return Record{}, fmt.Errorf("%w: %s", ErrExists, r.ID)
	case !errors.Is(err, ErrNotFound):
		return Record{}, err
	}
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if err := s.write(change{nil, &r}); err != nil {
		return Record{}, err
	}
	s.m.writeCreate.Inc()
	return r, nil
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
		for _, d := range digestsOf(&r) {
			if digests[d] {
				return nil, fmt.Errorf("%w: %v appears twice in the batch", ErrDigestInUse, d)
			}
			digests[d] = true
		}
		out[i] = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	changes := make([]change, len(out))
	for i := range out {
		switch _, err := s.getRecord(out[i].ID); {
		case err == nil:
			return nil, fmt.Errorf("%w: %s", ErrExists, out[i].ID)
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
		changes[i] = change{nil, &out[i]}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.write(changes...); err != nil {
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
// no Lookup returns the old state. fn must not call the Store. The write is
// synced before Update returns; ctx is checked before writing.
func (s *Store) Update(ctx context.Context, id string, fn func(*Record) error) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return Record{}, ErrClosed
	}
	old, err := s.getRecord(id)
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
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if err := s.write(change{&old, &r}); err != nil {
		return Record{}, err
	}
	s.m.writeUpdate.Inc()
	return r, nil
}

// change replaces record old (nil when there is none) by new.
type change struct{ old, new *Record }

// write commits record changes in one synced batch (see commit). mu must be
// held; the new records must be valid and their IDs and digests distinct.
func (s *Store) write(changes ...change) error {
	return s.commit(&batch{records: changes})
}

// A batch is what one synced commit writes: record changes, access-request
// changes, JWT revocations (already merged with the ones in effect) and
// audit entries, all or none.
type batch struct {
	records     []change
	requests    []requestChange
	revocations []revocationChange
	audit       []AuditEntry
}

func (b *batch) empty() bool {
	return len(b.records)+len(b.requests)+len(b.revocations)+len(b.audit) == 0
}

// commit is the store's single write path. It stages b: for each record it
// checks that the digests the new one adds index no other record and
// derives every index change from the old/new pair; then requests,
// revocations and audit entries (giving the entries their sequence
// numbers). It commits with pebble.Sync, then invalidates the cached state
// of every digest any of the records lists, and, only once the commit
// succeeded, applies the revocations and pending requests to memory and
// advances the revocation generation. Every write goes through commit,
// whether it comes from the admin API or, later, from a replication feed.
// mu must be held.
func (s *Store) commit(bt *batch) error {
	if err := s.writeRoom(); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	var touched []Digest
	for _, c := range bt.records {
		if err := s.stage(b, c.old, c.new); err != nil {
			return err
		}
		touched = append(append(touched, digestsOf(c.old)...), digestsOf(c.new)...)
	}
	for _, c := range bt.requests {
		if err := stageRequest(b, c); err != nil {
			return err
		}
	}
	if err := stageRevocations(b, bt.revocations); err != nil {
		return err
	}
	if len(bt.audit) > 0 {
		seq := s.auditSeq
		for i := range bt.audit {
			if err := s.stageAudit(b, &bt.audit[i]); err != nil {
				s.auditSeq = seq
				return err
			}
		}
		if err := b.Set(metaKey(metaAuditSeq), binary.BigEndian.AppendUint64(nil, s.auditSeq), nil); err != nil {
			return fmt.Errorf("keystore: write audit entry: %w", err)
		}
	}
	err := b.Commit(pebble.Sync)
	// Invalidate even if the commit failed: its outcome is then unknown.
	for i := range touched {
		s.shard(&touched[i]).Add(1)
	}
	for i := range touched {
		key := touched[i].cacheKey()
		s.cache.Del(key)
		s.neg.Del(key)
	}
	if err != nil {
		// Memory keeps only what is known to be durable, which the
		// revocation merges rely on.
		s.log.Error("write failed", slog.Int("records", len(bt.records)), slog.Int("requests", len(bt.requests)),
			slog.Int("revocations", len(bt.revocations)), slog.Int("audit_entries", len(bt.audit)), slog.Any("err", err))
		return fmt.Errorf("keystore: write: %w", err)
	}
	for _, c := range bt.requests {
		s.notePending(c.new)
	}
	if len(bt.revocations) > 0 {
		s.applyRevocations(bt.revocations)
	}
	return nil
}

// stage adds the replacement of old by new to b.
func (s *Store) stage(b *pebble.Batch, old, new *Record) error {
	oldDigests, newDigests := digestsOf(old), digestsOf(new)
	for _, d := range newDigests {
		if contains(oldDigests, d) {
			continue
		}
		switch id, ok, err := s.digestID(&d); {
		case err != nil:
			return err
		case ok && id != new.ID:
			return fmt.Errorf("%w: %v", ErrDigestInUse, d)
		}
	}
	var kb [1 + len(Digest{})]byte
	for _, d := range oldDigests {
		if !contains(newDigests, d) {
			if err := b.Delete(digestKey(kb[:0], &d), nil); err != nil {
				return fmt.Errorf("keystore: write %s: %w", new.ID, err)
			}
		}
	}
	for _, d := range newDigests {
		if !contains(oldDigests, d) {
			if err := b.Set(digestKey(kb[:0], &d), []byte(new.ID), nil); err != nil {
				return fmt.Errorf("keystore: write %s: %w", new.ID, err)
			}
		}
	}
	if old != nil && old.Subject != new.Subject {
		if err := b.Delete(subjectKey(old.Subject, old.ID), nil); err != nil {
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

// digestsOf returns the digests r lists (none for a nil r).
func digestsOf(r *Record) []Digest {
	if r == nil {
		return nil
	}
	if r.PrevDigest.IsZero() {
		return []Digest{r.Digest}
	}
	return []Digest{r.Digest, r.PrevDigest}
}

func contains(ds []Digest, d Digest) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// Meta returns the value named name. If there is none, it calls create and
// stores its value (synced) before returning it; create's error is returned
// unchanged and stores nothing. create runs under the store's write lock,
// so concurrent callers agree on one value; it must not call the Store.
// Meta holds small per-deployment values such as the API-key checksum key
// or the admin-key digest. The returned slice is the caller's.
func (s *Store) Meta(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	if err := validMetaName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	v, closer, err := s.db.Get(metaKey(name))
	if err == nil {
		v = append([]byte(nil), v...)
		closer.Close()
		return v, nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("keystore: read meta %s: %w", name, err)
	}
	v, err = create()
	if err != nil {
		return nil, err
	}
	if err := s.setMeta(ctx, name, v); err != nil {
		return nil, err
	}
	return v, nil
}

// SetMeta stores value under name, synced, replacing any previous value.
func (s *Store) SetMeta(ctx context.Context, name string, value []byte) error {
	if err := validMetaName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	return s.setMeta(ctx, name, value)
}

// setMeta writes a meta value. mu must be held.
func (s *Store) setMeta(ctx context.Context, name string, value []byte) error {
	if len(value) > MaxMetaValueLen {
		return fmt.Errorf("keystore: meta %s: value of %d bytes exceeds %d", name, len(value), MaxMetaValueLen)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.writeRoom(); err != nil {
		return err
	}
	if err := s.db.Set(metaKey(name), value, pebble.Sync); err != nil {
		return fmt.Errorf("keystore: write meta %s: %w", name, err)
	}
	s.m.writeMeta.Inc()
	return nil
}

func validMetaName(name string) error {
	if name == "" || !validLabel(name, MaxMetaNameLen) {
		return fmt.Errorf("keystore: invalid meta name %.64q: must be 1 to %d bytes of UTF-8 without control characters", name, MaxMetaNameLen)
	}
	return nil
}
