package keystore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// An AuditEntry records one administrative action: who did what to which
// object, and how it ended. Entries never hold a secret; the store does not
// check that (it cannot tell), its callers make sure of it. Entries are
// values: the store hands out copies.
type AuditEntry struct {
	Time    time.Time // when it happened; the store fills in the current time when zero
	Seq     uint64    // set by the store: increases with every entry it writes, never reused
	Actor   string    // who acted, e.g. "admin:1a2b3c4d" or "subject:alice"
	Action  string    // what was done, e.g. "key.revoke"
	Target  string    // the object acted on (a key or request id, a jti, ...); may be empty
	Outcome string    // "ok", or the class of the error
	Detail  string    // a short non-secret note; may be empty
}

// Limits on an audit entry, in bytes.
const (
	MaxAuditLabelLen  = 128  // Action and Outcome
	MaxAuditTextLen   = 1100 // Actor, Target and Detail
	maxAuditUnixNanos = 1<<63 - 1
)

// ErrInvalidAudit is matched (with errors.Is) by the error reporting an
// audit entry that fails validation.
var ErrInvalidAudit = errors.New("keystore: invalid audit entry")

// Validate checks e against the rules the store enforces.
func (e *AuditEntry) Validate() error {
	var p []string
	if e.Actor == "" || !validLabel(e.Actor, MaxAuditTextLen) {
		p = append(p, "actor must be 1 to 1100 bytes without control characters")
	}
	if e.Action == "" || !validLabel(e.Action, MaxAuditLabelLen) || e.Outcome == "" || !validLabel(e.Outcome, MaxAuditLabelLen) {
		p = append(p, "action and outcome must be 1 to 128 bytes without control characters")
	}
	if !validLabel(e.Target, MaxAuditTextLen) || !validLabel(e.Detail, MaxAuditTextLen) {
		p = append(p, "target and detail must be at most 1100 bytes without control characters")
	}
	if !e.Time.IsZero() && (e.Time.Unix() < 0 || e.Time.UnixNano() < 0 || e.Time.Year() >= 2262) {
		p = append(p, "time must lie between 1970 and 2261")
	}
	if len(p) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidAudit, strings.Join(p, "; "))
	}
	return nil
}

// AppendEncode appends the binary encoding of e to dst and returns the
// extended buffer, in the notation of [Record.AppendEncode]:
//
//	u8   format version (1)
//	u8   type (4: audit entry)
//	time time
//	u64  seq
//	str  actor, action, target, outcome, detail
//
// AppendEncode does not validate e.
func (e *AuditEntry) AppendEncode(dst []byte) []byte {
	dst = append(dst, formatVersion, typeAuditEntry)
	dst = appendTime(dst, e.Time)
	dst = binary.LittleEndian.AppendUint64(dst, e.Seq)
	for _, s := range [...]string{e.Actor, e.Action, e.Target, e.Outcome, e.Detail} {
		dst = appendStr(dst, s)
	}
	return dst
}

// DecodeAuditEntry decodes an audit entry encoded by
// [AuditEntry.AppendEncode], with the strictness of [DecodeRecord]. It does
// not apply [AuditEntry.Validate]. On error it returns the zero value and a
// *DecodeError. It never panics, and the result does not alias b.
func DecodeAuditEntry(b []byte) (AuditEntry, error) {
	d := decoder{b: b}
	e, ok := d.auditEntry()
	if !ok {
		return AuditEntry{}, &DecodeError{What: "audit entry", Offset: d.off, Reason: d.err}
	}
	return e, nil
}

func (d *decoder) auditEntry() (e AuditEntry, ok bool) {
	if !d.header(typeAuditEntry) {
		return e, false
	}
	if e.Time, ok = d.time(); !ok {
		return AuditEntry{}, false
	}
	if e.Seq, ok = d.u64(); !ok {
		return AuditEntry{}, false
	}
	for _, s := range [...]*string{&e.Actor, &e.Action, &e.Target, &e.Outcome, &e.Detail} {
		if *s, ok = d.str(); !ok {
			return AuditEntry{}, false
		}
	}
	if d.off != len(d.b) {
		return AuditEntry{}, d.fail("trailing bytes")
	}
	return e, true
}

// An AuditPos is the position of an audit entry in the log: entries are
// ordered by time, then by sequence number.
type AuditPos struct {
	Time int64  // Unix nanoseconds
	Seq  uint64 // the entry's Seq
}

// unixNanos returns t in Unix nanoseconds, clamped to the positions the
// log can hold (1970 to 2262; UnixNano is undefined beyond).
func unixNanos(t time.Time) int64 {
	switch {
	case t.Unix() < 0:
		return 0
	case t.Unix() >= maxAuditUnixNanos/int64(time.Second):
		return maxAuditUnixNanos
	}
	return t.UnixNano()
}

// posOf returns the position of e.
func posOf(e *AuditEntry) AuditPos { return AuditPos{Time: e.Time.UnixNano(), Seq: e.Seq} }

// AppendBinary appends the 16-byte big-endian encoding of p, which sorts
// as positions do.
func (p AuditPos) AppendBinary(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.Time))
	return binary.BigEndian.AppendUint64(dst, p.Seq)
}

// ParseAuditPos decodes the encoding of [AuditPos.AppendBinary].
func ParseAuditPos(b []byte) (AuditPos, error) {
	if len(b) != 16 {
		return AuditPos{}, errors.New("keystore: an audit position is 16 bytes")
	}
	t := binary.BigEndian.Uint64(b)
	if t > maxAuditUnixNanos {
		return AuditPos{}, errors.New("keystore: audit position out of range")
	}
	return AuditPos{Time: int64(t), Seq: binary.BigEndian.Uint64(b[8:])}, nil
}

func auditKey(p AuditPos) []byte {
	return p.AppendBinary([]byte{prefixAudit})
}

// stageAudit gives e its sequence number (and time, when zero) and adds it
// to b. mu must be held.
func (s *Store) stageAudit(b *pebble.Batch, e *AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	if err := e.Validate(); err != nil {
		return err
	}
	s.auditSeq++
	e.Seq = s.auditSeq
	if err := b.Set(auditKey(posOf(e)), e.AppendEncode(nil), nil); err != nil {
		return fmt.Errorf("keystore: write audit entry: %w", err)
	}
	return nil
}

// metaAuditSeq is the meta value holding the last sequence number given
// to an audit entry (u64 big-endian), written in the batch of the entries:
// times may go back with the clock, so the log's order does not tell the
// last number, and a purge must not make numbers be used again.
const metaAuditSeq = "audit_seq"

// loadAuditSeq reads the last sequence number given. Open calls it before
// the store is shared.
func (s *Store) loadAuditSeq() error {
	v, closer, err := s.db.Get(metaKey(metaAuditSeq))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("keystore: read audit sequence: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return fmt.Errorf("%w: audit sequence of %d bytes", ErrCorrupt, len(v))
	}
	s.auditSeq = binary.BigEndian.Uint64(v)
	return nil
}

// An AuditQuery selects audit entries for [Store.ListAudit].
type AuditQuery struct {
	Since, Until time.Time // entries at or after Since and before Until; zero: unbounded
	Actor        string    // exact match; empty: any
	Action       string    // exact match; empty: any
	Target       string    // exact match; empty: any
	OldestFirst  bool      // order of the answer; default newest first
	After        *AuditPos // continue after this position (in the order of the answer)
	Limit        int       // entries to return; at most MaxAuditPage, default DefaultAuditPage
}

// Bounds of one ListAudit call.
const (
	DefaultAuditPage = 100
	MaxAuditPage     = 1000
	// MaxAuditScan bounds the entries one ListAudit call examines, so that
	// a filter that matches little never turns into a scan of the whole
	// log: the call then returns what it found and where to continue.
	MaxAuditScan = 10000
)

// ListAudit returns the entries q selects, in q's order, and the position
// to continue from (nil when the log has nothing more in q's range). The
// answer may hold fewer than q.Limit entries and still a position, when
// MaxAuditScan entries were examined. It reads one consistent snapshot.
func (s *Store) ListAudit(q AuditQuery) ([]AuditEntry, *AuditPos, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditPage
	}
	limit = min(limit, MaxAuditPage)
	lower, upper := []byte{prefixAudit}, []byte{prefixAudit + 1}
	if !q.Since.IsZero() {
		lower = auditKey(AuditPos{Time: unixNanos(q.Since)})
	}
	if !q.Until.IsZero() {
		upper = auditKey(AuditPos{Time: unixNanos(q.Until)})
	}
	if q.After != nil {
		// Strictly after the position, in the answer's order.
		k := auditKey(*q.After)
		if q.OldestFirst {
			if k = append(k, 0); string(k) > string(lower) {
				lower = k
			}
		} else if string(k) < string(upper) {
			upper = k
		}
	}
	if string(lower) >= string(upper) {
		return nil, nil, nil
	}

	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return nil, nil, ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, nil, fmt.Errorf("keystore: read audit log: %w", err)
	}
	defer it.Close()
	first, next := it.Last, it.Prev
	if q.OldestFirst {
		first, next = it.First, it.Next
	}
	var out []AuditEntry
	var last []byte // key of the last entry examined
	scanned := 0
	ok := first()
	for ; ok && len(out) < limit && scanned < MaxAuditScan; ok = next() {
		scanned++
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, fmt.Errorf("keystore: read audit log: %w", err)
		}
		e, err := DecodeAuditEntry(v)
		if err == nil && string(auditKey(posOf(&e))) != string(it.Key()) {
			err = errors.New("keystore: key and value disagree")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: audit entry %x: %w", ErrCorrupt, it.Key(), err)
		}
		last = append(last[:0], it.Key()...)
		if (q.Actor == "" || e.Actor == q.Actor) && (q.Action == "" || e.Action == q.Action) && (q.Target == "" || e.Target == q.Target) {
			out = append(out, e)
		}
	}
	if err := it.Error(); err != nil {
		return nil, nil, fmt.Errorf("keystore: read audit log: %w", err)
	}
	if !ok {
		return out, nil, nil
	}
	// Stopped with entries left in range: continue after the last one
	// examined.
	pos, err := ParseAuditPos(last[1:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: audit key %x", ErrCorrupt, last)
	}
	return out, &pos, nil
}

// purgeAudit deletes audit entries older than the retention at now, oldest
// first, at most purgeBatch per pass. Like purgeRevocations it is called by
// the flush loop, never waits for mu, and writes unsynced. It returns how
// many entries it deleted.
func (s *Store) purgeAudit(now time.Time) int {
	if !s.mu.TryLock() {
		return 0
	}
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0
	}
	cutoff := now.Add(-s.auditRetention).UnixNano()
	if cutoff <= 0 {
		return 0
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixAudit}, UpperBound: auditKey(AuditPos{Time: cutoff})})
	if err != nil {
		s.log.Warn("purging the audit log failed", slog.Any("err", err))
		return 0
	}
	var keys [][]byte
	for ok := it.First(); ok && len(keys) < purgeBatch; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil || len(keys) == 0 {
		return 0
	}
	if err := s.deleteKeys(keys); err != nil {
		s.log.Warn("purging the audit log failed", slog.Int("entries", len(keys)), slog.Any("err", err))
		return 0
	}
	return len(keys)
}

// u64 reads a little-endian uint64.
func (d *decoder) u64() (uint64, bool) {
	if len(d.b)-d.off < 8 {
		return 0, d.fail("truncated")
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v, true
}
