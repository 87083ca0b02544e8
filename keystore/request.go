package keystore

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// An AccessRequest is an agent's request for a key (the AgentMsg flow): it
// waits, pending, until an administrator approves or denies it or it
// expires. The store keeps the SHA-256 of the request token, never the
// token. AccessRequests are values: the store hands out copies.
type AccessRequest struct {
	ID          string        // 22 base64url characters; normally derived from TokenDigest by the caller
	TokenDigest Digest        // SHA-256 of the request token
	Nonce       [16]byte      // random; lets the caller derive the token again (see verify)
	AgentID     string        // the agent asking; the subject of the key it gets
	Name        string        // the agent's name as it gave it
	Description string        // free text from the agent
	CallbackURL string        // stored only; verifyd never calls it
	ClientAddr  string        // the address the request came from
	Status      RequestStatus // pending, approved or denied; expiry is a matter of ExpiresAt
	CreatedAt   time.Time     // required
	ExpiresAt   time.Time     // end of the pending period; required
	DecidedAt   time.Time     // approval or denial; zero while pending
	DecidedBy   string        // who decided
	KeyID       string        // the key issued on approval; empty otherwise
	ForgetAt    time.Time     // when the store deletes the request; required
}

// RequestStatus is the stored state of an access request. Its numeric
// values are part of the encoding and never change.
type RequestStatus uint8

// The request statuses.
const (
	RequestPending  RequestStatus = 1
	RequestApproved RequestStatus = 2
	RequestDenied   RequestStatus = 3
)

var requestStatusNames = [...]string{RequestPending: "pending", RequestApproved: "approved", RequestDenied: "denied"}

// Valid reports whether st is one of the defined statuses.
func (st RequestStatus) Valid() bool { return st >= RequestPending && st <= RequestDenied }

// String returns "pending", "approved" or "denied", or "RequestStatus(n)".
func (st RequestStatus) String() string {
	if st.Valid() {
		return requestStatusNames[st]
	}
	return fmt.Sprintf("RequestStatus(%d)", uint8(st))
}

// PendingAt reports whether r is still waiting for a decision at now.
func (r *AccessRequest) PendingAt(now time.Time) bool {
	return r.Status == RequestPending && now.Before(r.ExpiresAt)
}

// MaxCallbackURLLen is the longest callback URL a request may store, in
// bytes.
const MaxCallbackURLLen = 2048

// Type tags of the encodings that share the revocations' layout.
const (
	typeAccessRequest = 3
	typeAuditEntry    = 4
)

// Validate checks r against the rules the store enforces and reports every
// problem in one *RecordError (errors.Is ErrInvalidRecord).
func (r *AccessRequest) Validate() error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if !validID(r.ID) {
		add("id must be 1 to %d characters of [A-Za-z0-9_-]", MaxIDLen)
	}
	if r.TokenDigest.IsZero() {
		add("token digest is zero")
	}
	if r.AgentID == "" || !validLabel(r.AgentID, MaxTextLen) {
		add("agent id must be 1 to %d bytes of UTF-8 without control characters", MaxTextLen)
	}
	if !validLabel(r.Name, MaxTextLen) {
		add("name must be at most %d bytes of UTF-8 without control characters", MaxTextLen)
	}
	if !validText(r.Description, MaxDescriptionLen) {
		add("description must be at most %d bytes of UTF-8", MaxDescriptionLen)
	}
	if !validLabel(r.CallbackURL, MaxCallbackURLLen) {
		add("callback url must be at most %d bytes without control characters", MaxCallbackURLLen)
	}
	if !validLabel(r.ClientAddr, MaxTextLen) || !validLabel(r.DecidedBy, MaxTextLen) {
		add("client address and decider must be at most %d bytes without control characters", MaxTextLen)
	}
	if !r.Status.Valid() {
		add("unknown status %d", r.Status)
	}
	if r.CreatedAt.IsZero() || r.ExpiresAt.IsZero() || r.ForgetAt.IsZero() {
		add("created_at, expires_at and forget_at are required")
	}
	for _, t := range []time.Time{r.CreatedAt, r.ExpiresAt, r.DecidedAt, r.ForgetAt} {
		if !t.IsZero() && (t.Unix() < minUnix || t.Unix() > maxUnix) {
			add("a time is outside years 1 to 9999")
			break
		}
	}
	switch {
	case r.Status == RequestPending && (!r.DecidedAt.IsZero() || r.DecidedBy != "" || r.KeyID != ""):
		add("a pending request has no decision")
	case r.Status == RequestApproved && !validID(r.KeyID):
		add("an approved request names its key")
	case r.Status == RequestDenied && r.KeyID != "":
		add("a denied request has no key")
	case r.Status != RequestPending && r.DecidedAt.IsZero():
		add("a decided request has a decision time")
	}
	if len(p) > 0 {
		return &RecordError{ID: r.ID, Problems: p}
	}
	return nil
}

func (r AccessRequest) normalize() AccessRequest {
	r.CreatedAt, r.ExpiresAt, r.DecidedAt, r.ForgetAt = utc(r.CreatedAt), utc(r.ExpiresAt), utc(r.DecidedAt), utc(r.ForgetAt)
	return r
}

// AppendEncode appends the binary encoding of r to dst and returns the
// extended buffer. The encoding is canonical, in the notation of
// [Record.AppendEncode]:
//
//	u8   format version (1)
//	u8   type (3: access request)
//	u8   status
//	str  id, agent_id, name, description, callback_url, client_addr, decided_by, key_id
//	[32] token digest
//	[16] nonce
//	time created_at, expires_at, decided_at, forget_at
//
// AppendEncode does not validate r.
func (r *AccessRequest) AppendEncode(dst []byte) []byte {
	dst = append(dst, formatVersion, typeAccessRequest, byte(r.Status))
	for _, s := range [...]string{r.ID, r.AgentID, r.Name, r.Description, r.CallbackURL, r.ClientAddr, r.DecidedBy, r.KeyID} {
		dst = appendStr(dst, s)
	}
	dst = append(dst, r.TokenDigest[:]...)
	dst = append(dst, r.Nonce[:]...)
	for _, t := range [...]time.Time{r.CreatedAt, r.ExpiresAt, r.DecidedAt, r.ForgetAt} {
		dst = appendTime(dst, t)
	}
	return dst
}

// DecodeAccessRequest decodes an access request encoded by
// [AccessRequest.AppendEncode], with the strictness of [DecodeRecord]: every
// accepted input is the canonical encoding of what it returns. It does not
// apply [AccessRequest.Validate]. On error it returns the zero value and a
// *DecodeError. It never panics, and the result does not alias b.
func DecodeAccessRequest(b []byte) (AccessRequest, error) {
	d := decoder{b: b}
	r, ok := d.accessRequest()
	if !ok {
		return AccessRequest{}, &DecodeError{What: "access request", Offset: d.off, Reason: d.err}
	}
	return r, nil
}

func (d *decoder) accessRequest() (r AccessRequest, ok bool) {
	if !d.header(typeAccessRequest) {
		return r, false
	}
	if d.off >= len(d.b) {
		return r, d.fail("truncated")
	}
	r.Status = RequestStatus(d.b[d.off])
	if !r.Status.Valid() {
		return r, d.fail(fmt.Sprintf("unknown request status %d", d.b[d.off]))
	}
	d.off++
	for _, s := range [...]*string{&r.ID, &r.AgentID, &r.Name, &r.Description, &r.CallbackURL, &r.ClientAddr, &r.DecidedBy, &r.KeyID} {
		if *s, ok = d.str(); !ok {
			return AccessRequest{}, false
		}
	}
	if !d.digest(&r.TokenDigest) || !d.fixed(r.Nonce[:]) {
		return AccessRequest{}, false
	}
	for _, t := range [...]*time.Time{&r.CreatedAt, &r.ExpiresAt, &r.DecidedAt, &r.ForgetAt} {
		if *t, ok = d.time(); !ok {
			return AccessRequest{}, false
		}
	}
	if d.off != len(d.b) {
		return AccessRequest{}, d.fail("trailing bytes")
	}
	return r, true
}

// header checks the length bound, format version and type tag of an
// encoding that starts "u8 version, u8 type", and moves past them.
func (d *decoder) header(typ byte) bool {
	if len(d.b) > MaxEncodedLen {
		return d.fail("value too long")
	}
	if len(d.b) < 2 {
		return d.fail("truncated")
	}
	d.s = string(d.b)
	if d.b[0] != formatVersion {
		return d.fail(fmt.Sprintf("unknown format version %d", d.b[0]))
	}
	if d.b[1] != typ {
		d.off = 1
		return d.fail(fmt.Sprintf("type %d, want %d", d.b[1], typ))
	}
	d.off = 2
	return true
}

// fixed reads len(dst) bytes into dst.
func (d *decoder) fixed(dst []byte) bool {
	if len(d.b)-d.off < len(dst) {
		return d.fail("truncated")
	}
	d.off += copy(dst, d.b[d.off:])
	return true
}

// Key encodings of requests: q <id> holds the request, g <agent id> the id
// of the agent's latest request.

func requestKey(id string) []byte {
	return append([]byte{prefixRequest}, id...)
}

func agentRequestKey(agentID string) []byte {
	return append([]byte{prefixAgentRequest}, agentID...)
}

// stageRequest adds c to b: the request, and the agent index when the
// request is new (a request's agent never changes). A nil c.New (only from
// a replication feed) deletes the request; the agent index is left to
// point at nothing, which readers treat as no request.
func stageRequest(b *pebble.Batch, c RequestChange) error {
	if c.New == nil {
		if err := b.Delete(requestKey(c.Old.ID), nil); err != nil {
			return fmt.Errorf("keystore: delete request %s: %w", c.Old.ID, err)
		}
		return nil
	}
	if err := b.Set(requestKey(c.New.ID), c.New.AppendEncode(nil), nil); err != nil {
		return fmt.Errorf("keystore: write request %s: %w", c.New.ID, err)
	}
	if c.Old == nil {
		if err := b.Set(agentRequestKey(c.New.AgentID), []byte(c.New.ID), nil); err != nil {
			return fmt.Errorf("keystore: write request %s: %w", c.New.ID, err)
		}
	}
	return nil
}

// A pendingRequest is what the store keeps in memory about a pending
// request, to count pending requests without reading them.
type pendingRequest struct {
	addr      string
	expiresAt time.Time
}

// notePending updates the in-memory index of pending requests with r. mu
// must be held (or the store not yet shared).
func (s *Store) notePending(r *AccessRequest) {
	if r.Status == RequestPending {
		s.pendingReqs[r.ID] = pendingRequest{addr: r.ClientAddr, expiresAt: r.ExpiresAt}
	} else {
		delete(s.pendingReqs, r.ID)
	}
}

// getRequest reads and decodes request id. closeMu must be held for
// reading, or mu.
func (s *Store) getRequest(id string) (AccessRequest, error) {
	v, closer, err := s.db.Get(requestKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return AccessRequest{}, ErrNotFound
	}
	if err != nil {
		return AccessRequest{}, fmt.Errorf("keystore: read request %s: %w", id, err)
	}
	r, err := DecodeAccessRequest(v)
	closer.Close()
	if err != nil {
		return AccessRequest{}, fmt.Errorf("keystore: request %s: %w", id, err)
	}
	return r, nil
}

// GetRequest returns the access request with the given ID, or ErrNotFound.
func (s *Store) GetRequest(id string) (AccessRequest, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return AccessRequest{}, ErrClosed
	}
	return s.getRequest(id)
}

// ListRequests returns every stored access request for which keep returns
// true (all when keep is nil), oldest first. It reads one consistent
// snapshot.
func (s *Store) ListRequests(keep func(*AccessRequest) bool) ([]AccessRequest, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var out []AccessRequest
	err := s.scanRequests(s.db, func(_ []byte, r *AccessRequest) error {
		if keep == nil || keep(r) {
			out = append(out, *r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b AccessRequest) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// scanRequests calls fn for every stored request, in key order. A value
// that does not decode, or whose ID disagrees with its key, is reported as
// corruption.
func (s *Store) scanRequests(r pebble.Reader, fn func(key []byte, req *AccessRequest) error) error {
	lower := []byte{prefixRequest}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return fmt.Errorf("keystore: read requests: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("keystore: read requests: %w", err)
		}
		req, err := DecodeAccessRequest(v)
		if err == nil && string(it.Key()[1:]) != req.ID {
			err = errors.New("keystore: key and value disagree")
		}
		if err != nil {
			return fmt.Errorf("%w: request %.64q: %w", ErrCorrupt, it.Key(), err)
		}
		if err := fn(it.Key(), &req); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("keystore: read requests: %w", err)
	}
	return nil
}

// loadRequests builds the in-memory index of pending requests. Open calls
// it before the store is shared; a request that does not decode makes the
// store corrupt.
func (s *Store) loadRequests() error {
	s.pendingReqs = make(map[string]pendingRequest)
	return s.scanRequests(s.db, func(_ []byte, r *AccessRequest) error {
		s.notePending(r)
		return nil
	})
}

// purgeRequests deletes requests whose ForgetAt is before now, with the
// agent index entries that still point at them: at most purgeBatch of them,
// among at most purgeScan examined, continuing where the previous pass
// stopped. Like purgeRevocations it is called by the flush loop, never
// waits for mu, and writes unsynced: a purge lost in a crash is done again.
// It returns how many requests it deleted.
func (s *Store) purgeRequests(now time.Time) int {
	if !s.mu.TryLock() {
		return 0
	}
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRequest}, UpperBound: []byte{prefixRequest + 1}})
	if err != nil {
		s.log.Warn("purging requests failed", slog.Any("err", err))
		return 0
	}
	var keys [][]byte
	var gone []AccessRequest
	scanned := 0
	ok := it.SeekGE(append([]byte{prefixRequest}, s.requestPurgeFrom...))
	if !ok {
		ok = it.First() // wrap around
	}
	s.requestPurgeFrom = nil
	for ; ok && scanned < purgeScan && len(gone) < purgeBatch; ok = it.Next() {
		scanned++
		v, err := it.ValueAndErr()
		if err != nil {
			break
		}
		r, err := DecodeAccessRequest(v)
		if err != nil {
			continue // reported by the reads that need it
		}
		if r.ForgetAt.Before(now) {
			keys = append(keys, slices.Clone(it.Key()))
			gone = append(gone, r)
		}
	}
	if ok {
		s.requestPurgeFrom = slices.Clone(it.Key()[1:])
	}
	if err := it.Close(); err != nil || len(gone) == 0 {
		return 0
	}
	for _, r := range gone {
		// The agent index names the agent's latest request: drop it only
		// if it still names this one.
		v, closer, err := s.db.Get(agentRequestKey(r.AgentID))
		if err == nil {
			if string(v) == r.ID {
				keys = append(keys, agentRequestKey(r.AgentID))
			}
			closer.Close()
		}
	}
	if err := s.deleteKeys(keys); err != nil {
		s.log.Warn("purging requests failed", slog.Int("requests", len(gone)), slog.Any("err", err))
		return 0
	}
	for _, r := range gone {
		delete(s.pendingReqs, r.ID)
	}
	return len(gone)
}

// pendingCounts returns how many requests are pending at now, in all and
// from addr, forgetting expired ones from the in-memory index. mu must be
// held.
func (s *Store) pendingCounts(addr string, now time.Time) (total, fromAddr int) {
	for id, p := range s.pendingReqs {
		if !now.Before(p.expiresAt) {
			delete(s.pendingReqs, id)
			continue
		}
		total++
		if p.addr == addr {
			fromAddr++
		}
	}
	return total, fromAddr
}
