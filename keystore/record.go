package keystore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/verifyd/verifyd/rbac"
)

// A Record is the stored state of one credential. Records are values: the
// store hands out copies, and a Record obtained from the store may be
// modified freely by its holder.
type Record struct {
	ID           string              // immutable identifier chosen by the caller (normally 22 base64url characters)
	Kind         Kind                // credential kind
	Subject      string              // who the credential belongs to
	Name         string              // short human-readable label
	Description  string              // free text
	Roles        []string            // global roles
	ProjectRoles map[string][]string // roles per project, domain or realm
	Scopes       []string            // granted scope patterns, see [rbac.ValidatePattern]
	Creator      string              // who created the credential
	Metadata     map[string]string   // small free-form annotations
	CreatedAt    time.Time           // creation time; Create fills in the current time when zero
	ExpiresAt    time.Time           // end of validity; zero means the credential never expires
	RevokedAt    time.Time           // revocation time; zero means not revoked
	Digest       Digest              // digest of the current secret
	PrevDigest   Digest              // digest of the previous secret during a rotation grace; zero when none
	PrevNotAfter time.Time           // end of the rotation grace; zero exactly when PrevDigest is
	Version      uint64              // set by the store: 1 on create, +1 on every write
}

// MetaRateLimit is the metadata key of a credential's own rate limit,
// such as "100/s"; see package verify/throttle. The store copies it into
// the entry's principal ([rbac.Principal.RateLimit]).
const MetaRateLimit = "rate_limit"

// Revoked reports whether the record has been revoked.
func (r *Record) Revoked() bool {
	return !r.RevokedAt.IsZero()
}

// Limits on a record accepted by Create and Update. DecodeRecord applies only
// the wider structural bounds below them, so that records written under
// these limits stay readable if the limits change.
const (
	MaxIDLen          = 64   // bytes of ID, all from the base64url alphabet
	MaxTextLen        = 512  // bytes of Subject, Name, Creator, each role and each project name
	MaxDescriptionLen = 4096 // bytes of Description
	MaxListLen        = 256  // roles, scopes, projects, and roles per project
	MaxMetadata       = 64   // metadata entries
	MaxMetadataKeyLen = 128  // bytes of a metadata key
	MaxMetadataValLen = 1024 // bytes of a metadata value
)

// Structural bounds applied by DecodeRecord.
const (
	formatVersion = 1
	maxDecodeStr  = 1 << 16 // bytes of any one string
	maxDecodeList = 1 << 12 // elements of any one list or map
	// MaxEncodedLen is the largest encoded record DecodeRecord accepts.
	MaxEncodedLen = 1 << 20
)

// Encodable time range: years 1 through 9999, in Unix seconds.
const (
	minUnix = -62135596800 // 0001-01-01T00:00:00Z
	maxUnix = 253402300799 // 9999-12-31T23:59:59Z
)

// ErrInvalidRecord is matched (with errors.Is) by every error that reports a
// record failing validation; the error itself is a *RecordError.
var ErrInvalidRecord = errors.New("keystore: invalid record")

// A RecordError lists every problem found in a record.
type RecordError struct {
	ID       string   // the record's ID as given (possibly empty or invalid)
	Problems []string // one entry per problem, in field order
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("keystore: invalid record %q: %s", e.ID, strings.Join(e.Problems, "; "))
}

// Unwrap returns ErrInvalidRecord.
func (e *RecordError) Unwrap() error { return ErrInvalidRecord }

// Validate checks r against the rules Create and Update enforce and reports
// every problem in one *RecordError. Version is not checked: the store sets
// it.
func (r *Record) Validate() error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if !validID(r.ID) {
		add("id must be 1 to %d characters of [A-Za-z0-9_-]", MaxIDLen)
	}
	if !r.Kind.Valid() {
		add("unknown kind %d", r.Kind)
	}
	if r.Subject == "" {
		add("subject is empty")
	} else if !validLabel(r.Subject, MaxTextLen) {
		add("subject must be at most %d bytes of UTF-8 without control characters", MaxTextLen)
	}
	if !validText(r.Name, MaxTextLen) {
		add("name must be at most %d bytes of UTF-8", MaxTextLen)
	}
	if !validText(r.Description, MaxDescriptionLen) {
		add("description must be at most %d bytes of UTF-8", MaxDescriptionLen)
	}
	if !validText(r.Creator, MaxTextLen) {
		add("creator must be at most %d bytes of UTF-8", MaxTextLen)
	}
	validRoles := func(field string, roles []string) {
		if len(roles) > MaxListLen {
			add("%s: more than %d roles", field, MaxListLen)
		}
		for _, role := range roles {
			if role == "" || !validLabel(role, MaxTextLen) {
				add("%s: role %.64q must be 1 to %d bytes of UTF-8 without control characters", field, role, MaxTextLen)
			}
		}
	}
	validRoles("roles", r.Roles)
	if len(r.ProjectRoles) > MaxListLen {
		add("project roles: more than %d projects", MaxListLen)
	}
	for _, proj := range slices.Sorted(maps.Keys(r.ProjectRoles)) {
		if proj == "" || !validLabel(proj, MaxTextLen) {
			add("project roles: project %.64q must be 1 to %d bytes of UTF-8 without control characters", proj, MaxTextLen)
		}
		validRoles(fmt.Sprintf("project roles of %.64q", proj), r.ProjectRoles[proj])
	}
	if len(r.Scopes) > MaxListLen {
		add("more than %d scopes", MaxListLen)
	}
	for _, s := range r.Scopes {
		if err := rbac.ValidatePattern(s); err != nil {
			add("scope: %v", err)
		}
	}
	if len(r.Metadata) > MaxMetadata {
		add("more than %d metadata entries", MaxMetadata)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		if k == "" || !validLabel(k, MaxMetadataKeyLen) {
			add("metadata key %.64q must be 1 to %d bytes of UTF-8 without control characters", k, MaxMetadataKeyLen)
		}
		if !validText(r.Metadata[k], MaxMetadataValLen) {
			add("metadata value of %.64q must be at most %d bytes of UTF-8", k, MaxMetadataValLen)
		}
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"created_at", r.CreatedAt}, {"expires_at", r.ExpiresAt}, {"revoked_at", r.RevokedAt}, {"prev_not_after", r.PrevNotAfter}} {
		if !t.t.IsZero() && (t.t.Unix() < minUnix || t.t.Unix() > maxUnix) {
			add("%s is outside years 1 to 9999", t.name)
		}
	}
	if r.Digest.IsZero() {
		add("digest is zero")
	}
	switch {
	case r.PrevDigest.IsZero() && !r.PrevNotAfter.IsZero():
		add("prev_not_after is set without a previous digest")
	case !r.PrevDigest.IsZero() && r.PrevNotAfter.IsZero():
		add("previous digest is set without prev_not_after")
	case !r.PrevDigest.IsZero() && r.PrevDigest == r.Digest:
		add("previous digest equals the current digest")
	}
	if len(p) > 0 {
		return &RecordError{ID: r.ID, Problems: p}
	}
	return nil
}

// validID reports whether id is 1 to MaxIDLen characters of the base64url
// alphabet.
func validID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validText reports whether s is valid UTF-8 of at most max bytes.
func validText(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s)
}

// validLabel is validText without C0 controls, DEL or C1 controls. Labels
// appear in index keys (subjects: NUL separates the subject from the ID) and
// in logs.
func validLabel(s string, max int) bool {
	if !validText(s, max) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || (c >= 0x7f && c < 0xa0) {
			return false
		}
	}
	return true
}

// normalize returns r with times in UTC without monotonic readings, and
// empty slices and maps as nil: the form DecodeRecord returns, so that a
// record returned by a write equals the one read back.
func (r Record) normalize() Record {
	utc := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.UTC()
	}
	r.CreatedAt, r.ExpiresAt, r.RevokedAt, r.PrevNotAfter = utc(r.CreatedAt), utc(r.ExpiresAt), utc(r.RevokedAt), utc(r.PrevNotAfter)
	if len(r.Roles) == 0 {
		r.Roles = nil
	}
	if len(r.Scopes) == 0 {
		r.Scopes = nil
	}
	if len(r.Metadata) == 0 {
		r.Metadata = nil
	}
	if len(r.ProjectRoles) == 0 {
		r.ProjectRoles = nil
	} else {
		pr := make(map[string][]string, len(r.ProjectRoles))
		for k, v := range r.ProjectRoles {
			if len(v) == 0 {
				v = nil
			}
			pr[k] = v
		}
		r.ProjectRoles = pr
	}
	return r
}

// clone returns a deep copy of r.
func (r *Record) clone() Record {
	c := *r
	c.Roles = slices.Clone(r.Roles)
	c.Scopes = slices.Clone(r.Scopes)
	c.Metadata = maps.Clone(r.Metadata)
	if r.ProjectRoles != nil {
		c.ProjectRoles = make(map[string][]string, len(r.ProjectRoles))
		for k, v := range r.ProjectRoles {
			c.ProjectRoles[k] = slices.Clone(v)
		}
	}
	return c
}

// AppendEncode appends the binary encoding of r to dst and returns the
// extended buffer. The encoding is canonical: maps are written in ascending
// key order, times in UTC to the nanosecond, so equal records (after
// [DecodeRecord]'s normalization) encode to equal bytes. Little-endian
// throughout; a uvarint is minimal-length:
//
//	u8   format version (1)
//	u8   kind
//	str  id, subject, name, description, creator
//	list roles
//	uvarint n, then n × (str project, list roles)   ascending by project
//	list scopes
//	uvarint n, then n × (str key, str value)         ascending by key
//	time created_at, expires_at, revoked_at
//	[32] digest
//	[32] prev_digest
//	time prev_not_after
//	u64  version
//
//	str  = uvarint length, UTF-8 bytes
//	list = uvarint count, count × str
//	time = u8 0 (zero time) | u8 1, i64 Unix seconds, u32 nanoseconds
//
// AppendEncode does not validate r; a record that fails [Record.Validate]
// may encode to bytes that DecodeRecord rejects.
func (r *Record) AppendEncode(dst []byte) []byte {
	dst = append(dst, formatVersion, byte(r.Kind))
	for _, s := range [...]string{r.ID, r.Subject, r.Name, r.Description, r.Creator} {
		dst = appendStr(dst, s)
	}
	dst = appendList(dst, r.Roles)
	dst = binary.AppendUvarint(dst, uint64(len(r.ProjectRoles)))
	for _, k := range slices.Sorted(maps.Keys(r.ProjectRoles)) {
		dst = appendStr(dst, k)
		dst = appendList(dst, r.ProjectRoles[k])
	}
	dst = appendList(dst, r.Scopes)
	dst = binary.AppendUvarint(dst, uint64(len(r.Metadata)))
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		dst = appendStr(dst, k)
		dst = appendStr(dst, r.Metadata[k])
	}
	dst = appendTime(dst, r.CreatedAt)
	dst = appendTime(dst, r.ExpiresAt)
	dst = appendTime(dst, r.RevokedAt)
	dst = append(dst, r.Digest[:]...)
	dst = append(dst, r.PrevDigest[:]...)
	dst = appendTime(dst, r.PrevNotAfter)
	return binary.LittleEndian.AppendUint64(dst, r.Version)
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendList(dst []byte, l []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(l)))
	for _, s := range l {
		dst = appendStr(dst, s)
	}
	return dst
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t.Unix()))
	return binary.LittleEndian.AppendUint32(dst, uint32(t.Nanosecond()))
}

// A DecodeError reports why DecodeRecord, DecodeTokenRevocation or
// DecodeSubjectRevocation rejected its input.
type DecodeError struct {
	What   string // what was decoded: "token revocation", "subject revocation"; empty for a record
	Offset int    // byte offset at which decoding failed
	Reason string // what was wrong there
}

func (e *DecodeError) Error() string {
	what := e.What
	if what == "" {
		what = "record"
	}
	return fmt.Sprintf("keystore: decode %s: %s at byte %d", what, e.Reason, e.Offset)
}

// DecodeRecord decodes a record encoded by [Record.AppendEncode]. It is
// strict, so that every accepted input is the canonical encoding of the
// record it returns: it rejects an unknown format version or kind,
// truncation, trailing bytes, non-minimal uvarints, strings that are not
// valid UTF-8, map keys that are not strictly ascending, times outside years
// 1 to 9999 or with nanoseconds ≥ 1e9 or spelling the zero time as set, and
// lengths beyond its structural bounds (any one string 64 KiB, any one list
// 4096 elements, the whole input [MaxEncodedLen]). It does not apply
// [Record.Validate]. On error it returns the zero Record and a *DecodeError.
// It never panics. The result does not alias b. Times are in UTC, and empty
// lists and maps are nil.
func DecodeRecord(b []byte) (Record, error) {
	d := decoder{b: b}
	r, ok := d.record()
	if !ok {
		return Record{}, &DecodeError{Offset: d.off, Reason: d.err}
	}
	return r, nil
}

type decoder struct {
	b   []byte
	s   string // one copy of b; decoded strings are substrings of it
	off int
	err string
}

func (d *decoder) fail(reason string) bool {
	if d.err == "" {
		d.err = reason
	}
	return false
}

func (d *decoder) record() (r Record, ok bool) {
	if len(d.b) > MaxEncodedLen {
		return r, d.fail("record too long")
	}
	if len(d.b) < 2 {
		return r, d.fail("truncated")
	}
	d.s = string(d.b)
	if d.b[0] != formatVersion {
		return r, d.fail(fmt.Sprintf("unknown format version %d", d.b[0]))
	}
	r.Kind = Kind(d.b[1])
	if !r.Kind.Valid() {
		d.off = 1
		return r, d.fail(fmt.Sprintf("unknown kind %d", d.b[1]))
	}
	d.off = 2
	for _, s := range [...]*string{&r.ID, &r.Subject, &r.Name, &r.Description, &r.Creator} {
		if *s, ok = d.str(); !ok {
			return r, false
		}
	}
	if r.Roles, ok = d.list(); !ok {
		return r, false
	}
	if !d.sortedMap("project names", func(n int) { r.ProjectRoles = make(map[string][]string, n) }, func(k string) bool {
		r.ProjectRoles[k], ok = d.list()
		return ok
	}) {
		return r, false
	}
	if r.Scopes, ok = d.list(); !ok {
		return r, false
	}
	if !d.sortedMap("metadata keys", func(n int) { r.Metadata = make(map[string]string, n) }, func(k string) bool {
		r.Metadata[k], ok = d.str()
		return ok
	}) {
		return r, false
	}
	for _, t := range [...]*time.Time{&r.CreatedAt, &r.ExpiresAt, &r.RevokedAt} {
		if *t, ok = d.time(); !ok {
			return r, false
		}
	}
	if !d.digest(&r.Digest) || !d.digest(&r.PrevDigest) {
		return r, false
	}
	if r.PrevNotAfter, ok = d.time(); !ok {
		return r, false
	}
	if len(d.b)-d.off < 8 {
		return r, d.fail("truncated")
	}
	r.Version = binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	if d.off != len(d.b) {
		return r, d.fail("trailing bytes")
	}
	return r, true
}

// uvarint reads a minimal-length uvarint no larger than max.
func (d *decoder) uvarint(max uint64) (uint64, bool) {
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		return 0, d.fail("truncated")
	case n < 0:
		return 0, d.fail("uvarint overflow")
	case n > 1 && d.b[d.off+n-1] == 0:
		return 0, d.fail("non-minimal uvarint")
	case v > max:
		return 0, d.fail("length out of bounds")
	}
	d.off += n
	return v, true
}

// count reads an element count; each element takes at least one byte, so a
// count beyond the remaining input is rejected before anything is
// allocated.
func (d *decoder) count() (int, bool) {
	n, ok := d.uvarint(maxDecodeList)
	if !ok {
		return 0, false
	}
	if n > uint64(len(d.b)-d.off) {
		return 0, d.fail("truncated")
	}
	return int(n), true
}

// sortedMap decodes a count and that many entries, each a key (strictly
// ascending, so that the encoding is canonical) followed by a value that
// value decodes. alloc is called with the count when it is not zero.
func (d *decoder) sortedMap(what string, alloc func(n int), value func(k string) bool) bool {
	n, ok := d.count()
	if !ok {
		return false
	}
	if n > 0 {
		alloc(n)
	}
	prev := ""
	for i := range n {
		at := d.off
		k, ok := d.str()
		if !ok {
			return false
		}
		if i > 0 && k <= prev {
			d.off = at
			return d.fail(what + " not strictly ascending")
		}
		prev = k
		if !value(k) {
			return false
		}
	}
	return true
}

func (d *decoder) str() (string, bool) {
	at := d.off
	n, ok := d.uvarint(maxDecodeStr)
	if !ok {
		return "", false
	}
	if n > uint64(len(d.b)-d.off) {
		return "", d.fail("truncated")
	}
	s := d.s[d.off : d.off+int(n)]
	if !utf8.ValidString(s) {
		d.off = at
		return "", d.fail("invalid UTF-8")
	}
	d.off += int(n)
	return s, true
}

func (d *decoder) list() ([]string, bool) {
	n, ok := d.count()
	if !ok || n == 0 {
		return nil, ok
	}
	l := make([]string, n)
	for i := range l {
		if l[i], ok = d.str(); !ok {
			return nil, false
		}
	}
	return l, true
}

func (d *decoder) time() (time.Time, bool) {
	if d.off >= len(d.b) {
		return time.Time{}, d.fail("truncated")
	}
	switch d.b[d.off] {
	case 0:
		d.off++
		return time.Time{}, true
	case 1:
	default:
		return time.Time{}, d.fail("invalid time tag")
	}
	if len(d.b)-d.off < 13 {
		return time.Time{}, d.fail("truncated")
	}
	sec := int64(binary.LittleEndian.Uint64(d.b[d.off+1:]))
	nsec := binary.LittleEndian.Uint32(d.b[d.off+9:])
	if sec < minUnix || sec > maxUnix || nsec >= 1e9 {
		return time.Time{}, d.fail("time out of range")
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.IsZero() {
		return time.Time{}, d.fail("zero time encoded as set")
	}
	d.off += 13
	return t, true
}

func (d *decoder) digest(dst *Digest) bool {
	if len(d.b)-d.off < len(dst) {
		return d.fail("truncated")
	}
	d.off += copy(dst[:], d.b[d.off:])
	return true
}
