package strictjson

import (
	"bytes"
	"iter"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// A Value is one value of a parsed [Doc]. It is small and passed by value.
// The zero Value has kind [Invalid], and every method is safe to call on it
// (and on a Value invalidated by a later Parse into its Doc), returning the
// zero result.
//
// A Value reads the Doc's nodes and the parsed bytes; neither is copied, so
// the bytes must not change while the Value is in use.
type Value struct {
	d   *Doc
	i   int32
	gen uint32
}

// node returns v's node, or nil if v is the zero Value or stale.
func (v Value) node() *node {
	if v.d == nil || v.gen != v.d.gen || uint(v.i) >= uint(len(v.d.nodes)) {
		return nil
	}
	return &v.d.nodes[v.i]
}

// Kind returns the kind of v: Invalid for the zero Value.
func (v Value) Kind() Kind {
	if n := v.node(); n != nil {
		return n.kind
	}
	return Invalid
}

// Len returns the number of elements of an array or members of an object,
// and 0 for any other value.
func (v Value) Len() int {
	if n := v.node(); n != nil {
		return int(n.n)
	}
	return 0
}

// Raw returns the exact source bytes of v, strings including their quotes,
// or nil for the zero Value. The slice aliases the parsed input and its
// capacity is limited to its length; it must not be modified.
func (v Value) Raw() []byte {
	n := v.node()
	if n == nil {
		return nil
	}
	return v.d.src[n.start:n.end:n.end]
}

// Get returns the member of object v whose name, unescaped, equals name
// exactly (case-sensitively). It reports false if v is not an object or has
// no such member. Member names are unique, so there is at most one.
// Get allocates nothing.
func (v Value) Get(name string) (Value, bool) {
	n := v.node()
	if n == nil || n.kind != Object {
		return Value{}, false
	}
	nodes, src := v.d.nodes, v.d.src
	for j := v.i + 1; j < n.next; j = nodes[j+1].next {
		k := &nodes[j]
		if k.flags&flagEscaped == 0 {
			if string(content(src, k)) == name {
				return Value{d: v.d, i: j + 1, gen: v.gen}, true
			}
		} else if equalUnescaped(content(src, k), name, false) {
			return Value{d: v.d, i: j + 1, gen: v.gen}, true
		}
	}
	return Value{}, false
}

// Elems returns an iterator over the elements of array v, in order. It
// yields nothing if v is not an array. Iterating allocates nothing.
func (v Value) Elems() iter.Seq[Value] {
	return func(yield func(Value) bool) {
		n := v.node()
		if n == nil || n.kind != Array {
			return
		}
		end := n.next
		for j := v.i + 1; j < end && v.d.gen == v.gen; j = v.d.nodes[j].next {
			if !yield(Value{d: v.d, i: j, gen: v.gen}) {
				return
			}
		}
	}
}

// Members returns an iterator over the members of object v, in order: the
// member's name (a [String] Value) and its value. It yields nothing if v is
// not an object. Iterating allocates nothing.
func (v Value) Members() iter.Seq2[Value, Value] {
	return func(yield func(Value, Value) bool) {
		n := v.node()
		if n == nil || n.kind != Object {
			return
		}
		end := n.next
		for j := v.i + 1; j < end && v.d.gen == v.gen; j = v.d.nodes[j+1].next {
			if !yield(Value{d: v.d, i: j, gen: v.gen}, Value{d: v.d, i: j + 1, gen: v.gen}) {
				return
			}
		}
	}
}

// str returns the content of string v between its quotes and whether it
// has escapes, or ok false if v is not a string.
func (v Value) str() (raw []byte, escaped, ok bool) {
	n := v.node()
	if n == nil || n.kind != String {
		return nil, false, false
	}
	return content(v.d.src, n), n.flags&flagEscaped != 0, true
}

// Str returns the unescaped content of string v as a new string, or false
// if v is not a string. It allocates the string; to compare, use
// [Value.StrEqual], and to reuse a buffer, [Value.AppendStr].
func (v Value) Str() (string, bool) {
	raw, escaped, ok := v.str()
	if !ok {
		return "", false
	}
	if !escaped {
		return string(raw), true
	}
	// Unescape on the stack when the string is short (unescaping never
	// lengthens), so that the conversion is the only allocation.
	var buf [64]byte
	return string(appendUnescaped(buf[:0], raw)), true
}

// AppendStr appends the unescaped content of string v to dst and returns
// the extended slice. It appends nothing if v is not a string. It allocates
// only if dst lacks room.
func (v Value) AppendStr(dst []byte) []byte {
	raw, escaped, ok := v.str()
	switch {
	case !ok:
		return dst
	case !escaped:
		return append(dst, raw...)
	}
	return appendUnescaped(dst, raw)
}

// StrEqual reports whether v is a string whose unescaped content equals s
// byte for byte. It allocates nothing, escapes or not.
func (v Value) StrEqual(s string) bool {
	raw, escaped, ok := v.str()
	switch {
	case !ok:
		return false
	case !escaped:
		return string(raw) == s
	}
	return equalUnescaped(raw, s, false)
}

// StrEqualFold is like [Value.StrEqual] but ignores ASCII case: 'A'-'Z'
// match 'a'-'z', and every other byte must be equal. It is meant for
// case-insensitive protocol values such as the JWT "typ" header. It
// allocates nothing.
func (v Value) StrEqualFold(s string) bool {
	raw, _, ok := v.str()
	if !ok {
		return false
	}
	return equalUnescaped(raw, s, true)
}

// Float returns number v as a float64. It reports false if v is not a
// number or if the number's magnitude is too large for a finite float64
// (1e400); a number too small to represent rounds to zero (1e-400 is 0) and
// is reported as true. The result is the float64 nearest to the number, so
// integers beyond 2^53 may be rounded; [Value.Raw] gives the exact text.
// Float allocates nothing.
func (v Value) Float() (float64, bool) {
	n := v.node()
	if n == nil || n.kind != Number {
		return 0, false
	}
	raw := v.d.src[n.start:n.end]
	// Checking the range first keeps strconv off its error path, which
	// allocates a *NumError.
	if !finite(raw) {
		return 0, false
	}
	f, err := strconv.ParseFloat(view(raw), 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

// view returns a string that shares b's bytes, without copying. It is only
// for arguments the callee does not keep, and b must not change while the
// string is in use. Its one use is strconv.ParseFloat, which reads its
// argument and keeps nothing of it (its errors copy the text, and Float
// never reaches its error path for a valid number anyway).
func view(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// overflow is the decimal expansion of 2^1024 - 2^970, the midpoint between
// math.MaxFloat64 and 2^1024. A magnitude at or above it rounds (to even)
// to infinity; anything below rounds to a finite float64.
const overflow = "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671" +
	"505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792"

// finite reports whether the JSON number raw, whose grammar Parse checked,
// rounds to a finite float64. It compares the number exactly against
// [overflow]: raw is written as 0.D × 10^e with D's first digit nonzero,
// and overflow as 0.T × 10^309.
func finite(raw []byte) bool {
	if raw[0] == '-' {
		raw = raw[1:]
	}
	// Split raw into its digits (integer and fraction, without the '.') and
	// its exponent.
	mant, exp := raw, int64(0)
	if k := bytes.IndexAny(raw, "eE"); k >= 0 {
		mant = raw[:k]
		e := raw[k+1:]
		neg := e[0] == '-'
		if e[0] == '+' || e[0] == '-' {
			e = e[1:]
		}
		for _, c := range e {
			// Saturate far beyond any length a mantissa can have.
			if exp < 1<<40 {
				exp = exp*10 + int64(c-'0')
			}
		}
		if neg {
			exp = -exp
		}
	}
	frac := 0
	if k := bytes.IndexByte(mant, '.'); k >= 0 {
		frac = len(mant) - k - 1
	}
	// Skip leading zeros (and the '.') to the first significant digit.
	lead := 0
	for lead < len(mant) && (mant[lead] == '0' || mant[lead] == '.') {
		lead++
	}
	if lead == len(mant) {
		return true // zero
	}
	sig := mant[lead:]
	digitsLeft := int64(len(sig))
	if frac > 0 && bytes.IndexByte(sig, '.') >= 0 {
		digitsLeft-- // the '.' is among them
	}
	e := digitsLeft + exp - int64(frac)
	switch {
	case e < int64(len(overflow)):
		return true
	case e > int64(len(overflow)):
		return false
	}
	// Same magnitude: compare the digits of D with those of T.
	t := 0
	for _, c := range sig {
		if c == '.' {
			continue
		}
		if t == len(overflow) {
			return false // D has more digits after matching all of T: D >= T
		}
		if c != overflow[t] {
			return c < overflow[t]
		}
		t++
	}
	// D is a prefix of T: equal (overflow) only if T has no nonzero digit left.
	for ; t < len(overflow); t++ {
		if overflow[t] != '0' {
			return true
		}
	}
	return false
}

// equalUnescaped reports whether the unescaped form of the string content
// raw equals s, ignoring ASCII case if fold is set.
func equalUnescaped(raw []byte, s string, fold bool) bool {
	for len(raw) > 0 {
		k := bytes.IndexByte(raw, '\\')
		if k < 0 {
			k = len(raw)
		}
		if k > len(s) || !equalBytes(raw[:k], s[:k], fold) {
			return false
		}
		raw, s = raw[k:], s[k:]
		if len(raw) == 0 {
			break
		}
		r, n := decodeEscape(raw)
		raw = raw[n:]
		var buf [utf8.UTFMax]byte
		m := utf8.EncodeRune(buf[:], r)
		if m > len(s) || !equalBytes(buf[:m], s[:m], fold) {
			return false
		}
		s = s[m:]
	}
	return len(s) == 0
}

// equalBytes reports whether b equals s (of the same length), ignoring
// ASCII case if fold is set.
func equalBytes(b []byte, s string, fold bool) bool {
	if !fold {
		return string(b) == s
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// appendUnescaped appends the unescaped form of the string content raw.
func appendUnescaped(dst, raw []byte) []byte {
	for {
		k := bytes.IndexByte(raw, '\\')
		if k < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:k]...)
		r, n := decodeEscape(raw[k:])
		dst = utf8.AppendRune(dst, r)
		raw = raw[k+n:]
	}
}

// decodeEscape decodes the escape sequence at the start of s (s[0] is the
// backslash), which Parse validated, and returns the code point and the
// sequence's length. A surrogate pair decodes to one code point.
func decodeEscape(s []byte) (rune, int) {
	switch s[1] {
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r, _ := hex4(s, 2)
		if r < 0xD800 || r > 0xDBFF {
			return r, 6
		}
		lo, _ := hex4(s, 8)
		return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12
	}
	return rune(s[1]), 2 // '"', '\\' or '/'
}

// unescaper yields the bytes of the unescaped form of a validated string
// content one at a time.
type unescaper struct {
	s      []byte
	buf    [utf8.UTFMax]byte
	bi, bn int8
}

func (u *unescaper) next() (byte, bool) {
	if u.bi < u.bn {
		c := u.buf[u.bi]
		u.bi++
		return c, true
	}
	if len(u.s) == 0 {
		return 0, false
	}
	if c := u.s[0]; c != '\\' {
		u.s = u.s[1:]
		return c, true
	}
	r, n := decodeEscape(u.s)
	u.s = u.s[n:]
	u.bn = int8(utf8.EncodeRune(u.buf[:], r))
	u.bi = 1
	return u.buf[0], true
}
