package jwt

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/verifyd/verifyd/internal/strictjson"
)

// DefaultMaxTokenBytes is the default size cap on a token.
const DefaultMaxTokenBytes = 8192

// maxNumericDate is 9999-12-31T23:59:59Z: a NumericDate beyond it (or
// before the epoch) is refused before any conversion, since converting an
// out-of-range float64 to int64 is implementation-defined in Go.
const maxNumericDate = 253402300799

// Options configures a Verifier. The zero value is usable.
type Options struct {
	// MaxTokenBytes caps the token length, checked before anything else.
	// Zero means DefaultMaxTokenBytes.
	MaxTokenBytes int
}

// Verifier is the strict compact-JWS front end: it accepts exactly the
// ES256 and HS256 JWTs that verifyd's profile allows (the package
// documentation lists the rules) and never hands a token to a general
// purpose JOSE library. It is safe for concurrent use.
type Verifier struct {
	keys     Resolver
	maxBytes int
	scratch  sync.Pool // *scratch
	headers  headerMemo
}

// maxMemoHeaders bounds the remembered header segments. Issuers use a few
// header spellings (one per key, typically), so a full memo means someone
// is sending many distinct valid headers; parsing then simply continues.
const maxMemoHeaders = 256

// headerMemo remembers the parse of accepted header segments: a header is
// a pure function of its exact text, and the same few headers come back on
// every token of an issuer.
type headerMemo struct {
	mu sync.RWMutex
	m  map[string]parsedHeader
}

type parsedHeader struct {
	alg Alg
	kid string
}

// header returns the algorithm and key id of an accepted header segment,
// from the memo or by parsing it.
func (v *Verifier) header(s *scratch, seg string) (Alg, string, error) {
	v.headers.mu.RLock()
	h, ok := v.headers.m[seg]
	v.headers.mu.RUnlock()
	if ok {
		return h.alg, h.kid, nil
	}
	alg, kid, err := s.parseHeader(seg)
	if err != nil {
		return 0, "", err
	}
	v.headers.mu.Lock()
	if len(v.headers.m) < maxMemoHeaders {
		if v.headers.m == nil {
			v.headers.m = make(map[string]parsedHeader)
		}
		v.headers.m[strings.Clone(seg)] = parsedHeader{alg, kid}
	}
	v.headers.mu.Unlock()
	return alg, kid, nil
}

// scratch holds one verification's decode buffers and parser.
type scratch struct {
	buf []byte
	doc strictjson.Doc
}

// NewVerifier returns a Verifier that takes its keys from keys.
func NewVerifier(keys Resolver, opts *Options) (*Verifier, error) {
	if keys == nil {
		return nil, fmt.Errorf("jwt: a key resolver is required")
	}
	v := &Verifier{keys: keys, maxBytes: DefaultMaxTokenBytes}
	if opts != nil && opts.MaxTokenBytes != 0 {
		if opts.MaxTokenBytes < 0 {
			return nil, fmt.Errorf("jwt: MaxTokenBytes is negative")
		}
		v.maxBytes = opts.MaxTokenBytes
	}
	v.scratch.New = func() any { return &scratch{buf: make([]byte, 0, 1024)} }
	return v, nil
}

// Refusals of the compact grammar, made once (see segErrors).
var (
	errNoDot    = fmt.Errorf("%w: not a compact JWS (no '.')", ErrMalformed)
	errOneDot   = fmt.Errorf("%w: not a compact JWS (one '.', need two)", ErrMalformed)
	errManyDots = fmt.Errorf("%w: not a compact JWS (more than two '.'; JWE and JSON serializations are refused)", ErrMalformed)
)

// Verify checks token at time now and returns its claims and the key that
// verified it. Checks run in this order, and the first failure is returned:
// size cap, compact grammar, base64url, header, key selection, signature
// over the bytes as received, then the claims, which are parsed only after
// the signature has been verified.
func (v *Verifier) Verify(token string, now time.Time) (Claims, *Key, error) {
	if len(token) > v.maxBytes {
		return Claims{}, nil, fmt.Errorf("%w: token is %d bytes, the limit is %d", ErrMalformed, len(token), v.maxBytes)
	}
	dot1 := strings.IndexByte(token, '.')
	if dot1 < 0 {
		return Claims{}, nil, errNoDot
	}
	dot2 := strings.IndexByte(token[dot1+1:], '.')
	if dot2 < 0 {
		return Claims{}, nil, errOneDot
	}
	dot2 += dot1 + 1
	if strings.IndexByte(token[dot2+1:], '.') >= 0 {
		return Claims{}, nil, errManyDots
	}
	header, payload, signature := token[:dot1], token[dot1+1:dot2], token[dot2+1:]
	for i, seg := range [3]string{header, payload, signature} {
		if p := checkSegment(seg); p >= 0 {
			return Claims{}, nil, segErrors[i][p]
		}
	}

	s := v.scratch.Get().(*scratch)
	defer v.scratch.Put(s)

	alg, kid, err := v.header(s, header)
	if err != nil {
		return Claims{}, nil, err
	}
	key, err := v.keys.ResolveKey(alg, kid)
	if err != nil {
		if !errors.Is(err, ErrUntrustedKey) {
			// Whatever went wrong, no key was found: refuse as untrusted.
			err = fmt.Errorf("%w: %w", ErrUntrustedKey, err)
		}
		return Claims{}, nil, err
	}
	if key == nil || key.Alg() != alg || key.Retired() {
		return Claims{}, nil, fmt.Errorf("%w: no trusted %s key for this token", ErrUntrustedKey, alg)
	}
	if !s.checkSignature(key, token[:dot2], signature) {
		return Claims{}, nil, fmt.Errorf("%w: the %s signature does not verify", ErrBadSignature, alg)
	}
	claims, err := s.parseClaims(payload, key.Profile(), now)
	if err != nil {
		return Claims{}, nil, err
	}
	return claims, key, nil
}

// b64Value maps a base64url character (RFC 4648 §5) to its 6-bit value,
// and every other byte to 0xFF.
var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = byte(i)
	}
	return
}()

// The ways a segment can fail checkSegment.
const (
	segEmpty = iota
	segAlphabet
	segLength
	segUnusedBits
	numSegProblems
)

// segErrors holds every checkSegment refusal, made once: malformed tokens
// arrive in floods, and refusing one allocates nothing.
var segErrors = func() (t [3][numSegProblems]error) {
	for i, seg := range [3]string{"header", "payload", "signature"} {
		t[i][segEmpty] = fmt.Errorf("%w: %s segment is empty", ErrMalformed, seg)
		t[i][segAlphabet] = fmt.Errorf("%w: %s segment has a character outside unpadded base64url ('=', '+', '/' and whitespace are refused)", ErrMalformed, seg)
		t[i][segLength] = fmt.Errorf("%w: %s segment has an impossible base64url length", ErrMalformed, seg)
		t[i][segUnusedBits] = fmt.Errorf("%w: %s segment is not canonical base64url (unused bits set)", ErrMalformed, seg)
	}
	return
}()

// checkSegment accepts only the canonical unpadded base64url spelling of
// some bytes: the alphabet (Go's decoders would skip '\r' and '\n'), a
// possible length, and zero unused bits in the last character, so that no
// two accepted tokens decode to the same bytes. It returns a segErrors
// index, or -1.
func checkSegment(seg string) int {
	if seg == "" {
		return segEmpty
	}
	for i := 0; i < len(seg); i++ {
		if b64Value[seg[i]] == 0xFF {
			return segAlphabet
		}
	}
	last := b64Value[seg[len(seg)-1]]
	switch len(seg) % 4 {
	case 1:
		return segLength
	case 2:
		if last&0x0F != 0 {
			return segUnusedBits
		}
	case 3:
		if last&0x03 != 0 {
			return segUnusedBits
		}
	}
	return -1
}

var b64 = base64.RawURLEncoding.Strict()

// decode decodes a checked segment into s.buf, refusing non-zero unused
// bits (one canonical spelling per value).
func (s *scratch) decode(seg string) ([]byte, error) {
	n := b64.DecodedLen(len(seg))
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	buf := s.buf[:n]
	m, err := b64.Decode(buf, stringBytes(seg))
	if err != nil || m != n {
		return nil, fmt.Errorf("non-canonical base64url (unused bits set)")
	}
	return buf, nil
}

// The header members that are refused by name, with the reason.
var refusedHeader = map[string]string{
	"crit": "crit (no extensions are understood)",
	"b64":  "b64 (unencoded payloads are not JWTs)",
	"jku":  "jku (keys come only from the trust registry)",
	"x5u":  "x5u (keys come only from the trust registry)",
	"x5c":  "x5c (keys come only from the trust registry)",
	"jwk":  "jwk (keys come only from the trust registry)",
	"cty":  "cty (nested tokens are refused)",
	"enc":  "enc (encrypted tokens are refused)",
	"zip":  "zip (compressed tokens are refused)",
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// parseHeader applies the header allowlist: alg (ES256 or HS256), kid (a
// non-empty string) and typ (JWT or at+jwt) are the only members allowed.
func (s *scratch) parseHeader(seg string) (Alg, string, error) {
	raw, err := s.decode(seg)
	if err != nil {
		return 0, "", malformed("header: %s", err)
	}
	if err := s.doc.Parse(raw); err != nil {
		return 0, "", malformed("header: %s", err)
	}
	root := s.doc.Root()
	if root.Kind() != strictjson.Object {
		return 0, "", malformed("header is a JSON %s, not an object", root.Kind())
	}
	var alg Alg
	var kid string
	for name, val := range root.Members() {
		switch {
		case name.StrEqual("alg"):
			a, ok := algOf(val)
			if !ok {
				return 0, "", malformed(`header "alg" is not "ES256" or "HS256"`)
			}
			alg = a
		case name.StrEqual("kid"):
			k, ok := val.Str()
			if !ok || k == "" || len(k) > MaxKeyIDBytes {
				return 0, "", malformed(`header "kid" is not a string of 1 to %d bytes`, MaxKeyIDBytes)
			}
			kid = k
		case name.StrEqual("typ"):
			if !val.StrEqualFold("JWT") && !val.StrEqualFold("at+jwt") {
				return 0, "", malformed(`header "typ" is not "JWT" or "at+jwt"`)
			}
		default:
			for refused, why := range refusedHeader {
				if name.StrEqual(refused) {
					return 0, "", malformed("header member %s is not allowed", why)
				}
			}
			return 0, "", malformed("header has a member other than alg, kid and typ")
		}
	}
	if alg == 0 {
		return 0, "", malformed(`header has no "alg"`)
	}
	return alg, kid, nil
}

func algOf(v strictjson.Value) (Alg, bool) {
	switch {
	case v.StrEqual("ES256"):
		return ES256, true
	case v.StrEqual("HS256"):
		return HS256, true
	}
	return 0, false
}

// checkSignature verifies sig, still base64url, over input with key. The
// decoded length must be exactly what the algorithm produces: 64 bytes of
// R‖S for ES256 (never DER), 32 bytes for HS256 (never truncated).
func (s *scratch) checkSignature(key *Key, input, sig string) bool {
	want := 64
	if key.Alg() == HS256 {
		want = 32
	}
	if b64.DecodedLen(len(sig)) != want {
		return false
	}
	raw, err := s.decode(sig)
	if err != nil {
		return false
	}
	if key.Alg() == HS256 {
		return key.verifyHS256(input, raw)
	}
	return key.verifyES256(input, raw)
}

// ecdsaVerify checks a 64-byte R‖S signature. ecdsa.Verify refuses r or s
// outside [1, n-1].
func ecdsaVerify(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, digest, r, s)
}

func invalidClaims(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidClaims}, args...)...)
}

// parseClaims parses and checks the claims of a token whose signature has
// been verified.
func (s *scratch) parseClaims(seg string, p *Profile, now time.Time) (Claims, error) {
	raw, err := s.decode(seg)
	if err != nil {
		return Claims{}, malformed("payload: %s", err)
	}
	if err := s.doc.Parse(raw); err != nil {
		return Claims{}, malformed("payload: %s", err)
	}
	root := s.doc.Root()
	if root.Kind() != strictjson.Object {
		return Claims{}, malformed("payload is a JSON %s, not an object", root.Kind())
	}

	// One pass collects the registered claims; a zero Value is an absent
	// claim.
	var reg registered
	var nameBuf [32]byte
	for name, val := range root.Members() {
		switch memberName(name, &nameBuf) {
		case "exp":
			reg.exp = val
		case "nbf":
			reg.nbf = val
		case "iat":
			reg.iat = val
		case "iss":
			reg.iss = val
		case "aud":
			reg.aud = val
		case "sub":
			reg.sub = val
		case "jti":
			reg.jti = val
		case "azp":
			reg.azp = val
		}
	}

	var c Claims
	var err2 error
	if c.ExpiresAt, err2 = optionalDate("exp", reg.exp); err2 != nil {
		return Claims{}, err2
	}
	if c.NotBefore, err2 = optionalDate("nbf", reg.nbf); err2 != nil {
		return Claims{}, err2
	}
	if c.IssuedAt, err2 = optionalDate("iat", reg.iat); err2 != nil {
		return Claims{}, err2
	}
	if reg.exp.Kind() == strictjson.Invalid && !p.AllowNoExp {
		return Claims{}, invalidClaims(`"exp" is required`)
	}
	for _, m := range [...]struct {
		name string
		v    strictjson.Value
	}{{"iss", reg.iss}, {"jti", reg.jti}, {"sub", reg.sub}} {
		if k := m.v.Kind(); k != strictjson.Invalid && k != strictjson.String {
			return Claims{}, invalidClaims("%q is a JSON %s, not a string", m.name, k)
		}
	}
	if p.Issuer != "" && !reg.iss.StrEqual(p.Issuer) {
		return Claims{}, invalidClaims(`"iss" is not the issuer this key's source trusts`)
	}
	if p.Issuer != "" {
		c.Issuer = p.Issuer // equal, and already a string of its own
	} else {
		c.Issuer, _ = reg.iss.Str()
	}
	if err := checkAudience(reg.aud, p.Audience); err != nil {
		return Claims{}, err
	}
	c.Audience = audience(reg.aud)
	c.ID, _ = reg.jti.Str()
	c.AuthorizedParty, _ = reg.azp.Str()

	if !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt.Add(p.Leeway)) {
		return Claims{}, fmt.Errorf("%w: expired at %s", ErrExpired, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	late := now.Add(p.Leeway)
	if c.NotBefore.After(late) {
		return Claims{}, fmt.Errorf("%w: not valid before %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if c.IssuedAt.After(late) {
		return Claims{}, fmt.Errorf("%w: issued in the future, at %s", ErrNotYetValid, c.IssuedAt.UTC().Format(time.RFC3339))
	}

	if err := c.readIdentity(root, reg.sub, p); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// registered holds the registered claims of a token, found in one pass.
type registered struct {
	exp, nbf, iat, iss, aud, sub, jti, azp strictjson.Value
}

// memberName returns an object member's name for comparison: a view of
// the raw bytes, or of buf when the name has escapes to decode (or is too
// long for buf, in which case it matches no registered claim). The view is
// valid until the next call and must not be kept.
func memberName(name strictjson.Value, buf *[32]byte) string {
	raw := name.Raw()
	if len(raw) < 2 {
		return ""
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return unsafe.String(unsafe.SliceData(inner), len(inner))
	}
	if len(inner) > len(buf) {
		return ""
	}
	b := name.AppendStr(buf[:0])
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// optionalDate reads a NumericDate claim, zero when absent.
func optionalDate(name string, v strictjson.Value) (time.Time, error) {
	if v.Kind() == strictjson.Invalid {
		return time.Time{}, nil
	}
	t, err := numericDate(v)
	if err != nil {
		return time.Time{}, invalidClaims("%q %s", name, err)
	}
	return t, nil
}

// numericDate converts a NumericDate (RFC 7519 §2), a JSON number of
// seconds since the epoch, fractions allowed, range-checked before any
// integer conversion.
func numericDate(v strictjson.Value) (time.Time, error) {
	if v.Kind() != strictjson.Number {
		return time.Time{}, fmt.Errorf("is a JSON %s, not a number", v.Kind())
	}
	// Fast path: a plain integer of at most 12 digits (the grammar has
	// already excluded leading zeros and signs other than '-').
	if raw := v.Raw(); len(raw) <= 12 && raw[0] != '-' {
		n := int64(0)
		for _, c := range raw {
			if c < '0' || c > '9' {
				n = -1
				break
			}
			n = n*10 + int64(c-'0')
		}
		if n >= 0 {
			if n > maxNumericDate {
				return time.Time{}, fmt.Errorf("is out of range (0 to %d)", maxNumericDate)
			}
			return time.Unix(n, 0), nil
		}
	}
	f, ok := v.Float()
	if !ok || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("is out of range (0 to %d)", maxNumericDate)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// checkAudience applies RFC 7519 §4.1.3 when the profile names audiences:
// "aud" must be a string or a non-empty array of strings naming one of
// them. Without configured audiences, a present "aud" is still type-checked.
func checkAudience(aud strictjson.Value, ours []string) error {
	if aud.Kind() == strictjson.Invalid {
		if len(ours) > 0 {
			return invalidClaims(`"aud" is required`)
		}
		return nil
	}
	match := func(v strictjson.Value) bool {
		for _, a := range ours {
			if v.StrEqual(a) {
				return true
			}
		}
		return false
	}
	found := false
	switch aud.Kind() {
	case strictjson.String:
		found = match(aud)
	case strictjson.Array:
		if aud.Len() == 0 {
			return invalidClaims(`"aud" is an empty array`)
		}
		for e := range aud.Elems() {
			if e.Kind() != strictjson.String {
				return invalidClaims(`"aud" has an element that is not a string`)
			}
			found = found || match(e)
		}
	default:
		return invalidClaims(`"aud" is a JSON %s, not a string or an array`, aud.Kind())
	}
	if len(ours) > 0 && !found {
		return invalidClaims(`"aud" does not name this service`)
	}
	return nil
}

// audience returns the audiences of an "aud" that checkAudience accepted:
// its one string, or the strings of its array; nil when absent.
func audience(aud strictjson.Value) []string {
	switch aud.Kind() {
	case strictjson.String:
		s, _ := aud.Str()
		return []string{s}
	case strictjson.Array:
		out := make([]string, 0, aud.Len())
		for e := range aud.Elems() {
			s, _ := e.Str()
			out = append(out, s)
		}
		return out
	}
	return nil
}

// readIdentity fills the subject, roles, realm and scopes from the claims
// the profile names.
func (c *Claims) readIdentity(root, sub strictjson.Value, p *Profile) error {
	for _, name := range p.subjectClaims() {
		v, ok := sub, sub.Kind() != strictjson.Invalid
		if name != "sub" {
			v, ok = lookupPath(root, name)
		}
		if !ok {
			continue
		}
		sub, ok := v.Str()
		if !ok || sub == "" {
			return invalidClaims("subject claim %q is not a non-empty string", name)
		}
		if strings.IndexByte(sub, '@') >= 0 {
			sub = lowerASCII(sub)
		}
		c.Subject = sub
		break
	}
	if c.Subject == "" {
		return invalidClaims("no subject claim (tried %s)", strings.Join(p.subjectClaims(), ", "))
	}
	if v, ok := lookupPath(root, p.rolesClaim()); ok {
		roles, err := stringList(v, false)
		if err != nil {
			return invalidClaims("roles claim %q %s", p.rolesClaim(), err)
		}
		c.Roles = roles
	}
	if v, ok := lookupPath(root, p.realmClaim()); ok {
		realm, ok := v.Str()
		if !ok {
			return invalidClaims("realm claim %q is not a string", p.realmClaim())
		}
		c.Realm = realm
	}
	for _, name := range p.scopeClaims() {
		v, ok := lookupPath(root, name)
		if !ok {
			continue
		}
		scopes, err := stringList(v, true)
		if err != nil {
			return invalidClaims("scope claim %q %s", name, err)
		}
		c.Scopes = scopes
		break
	}
	return nil
}

// lookupPath finds a claim by name, or by a "."-separated path through
// nested objects when no top-level claim has the whole name.
func lookupPath(root strictjson.Value, path string) (strictjson.Value, bool) {
	if v, ok := root.Get(path); ok {
		return v, true
	}
	v := root
	for rest := path; ; {
		name, tail, more := strings.Cut(rest, ".")
		if !more && rest == path {
			return strictjson.Value{}, false // no '.': the top-level lookup was the only one
		}
		next, ok := v.Get(name)
		if !ok {
			return strictjson.Value{}, false
		}
		if !more {
			return next, true
		}
		v, rest = next, tail
	}
}

// stringList reads an array of strings, or one string; with split, one
// string is a space-separated list (the OAuth "scope" form).
func stringList(v strictjson.Value, split bool) ([]string, error) {
	switch v.Kind() {
	case strictjson.String:
		s, _ := v.Str()
		if split {
			return splitSpaces(s), nil
		}
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	case strictjson.Array:
		out := make([]string, 0, v.Len())
		for e := range v.Elems() {
			s, ok := e.Str()
			if !ok {
				return nil, fmt.Errorf("has an element that is not a string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("is a JSON %s, not a string or an array of strings", v.Kind())
}

// lowerASCII lower-cases the ASCII letters of s and nothing else: Unicode
// case mapping would fold distinct addresses into one ("\u212Aate" — with
// a Kelvin sign — into "kate").
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// splitSpaces splits an OAuth scope string on U+0020 only (RFC 6749
// §3.3), dropping empty parts.
func splitSpaces(s string) []string {
	out := make([]string, 0, strings.Count(s, " ")+1)
	for part := range strings.SplitSeq(s, " ") {
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

// stringBytes views s as a byte slice without copying. The callers only
// read the slice (hash input, base64 source) and never keep it.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// writeString feeds s to h without copying it.
func writeString(h interface{ Write([]byte) (int, error) }, s string) {
	h.Write(stringBytes(s))
}
