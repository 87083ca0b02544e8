package strictjson

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxDepth is the maximum nesting of arrays and objects. The top-level
// container counts as depth 1, so `[[1]]` has depth 2.
const MaxDepth = 16

// maxInput is the largest input Parse accepts: node offsets are int32.
const maxInput = math.MaxInt32

// pairwiseMax is the largest object whose member names are checked for
// duplicates by comparing every pair; larger objects sort their names.
const pairwiseMax = 32

// A Kind is the type of a JSON value.
type Kind uint8

// The kinds of JSON values. Invalid is the kind of the zero [Value] and of
// any value read from a Doc that holds no document.
const (
	Invalid Kind = iota
	Null
	False
	True
	Number
	String
	Array
	Object
)

var kindNames = [...]string{
	Invalid: "invalid",
	Null:    "null",
	False:   "false",
	True:    "true",
	Number:  "number",
	String:  "string",
	Array:   "array",
	Object:  "object",
}

// String returns the lower-case JSON name of k: "null", "false", "true",
// "number", "string", "array" or "object", and "invalid" for Invalid.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// A SyntaxError reports why and where [Doc.Parse] refused its input.
type SyntaxError struct {
	// Offset is the byte offset in the input of the offending byte, or the
	// length of the input when it ended too early.
	Offset int
	// Msg describes the problem. It never quotes input bytes.
	Msg string
}

// Error returns "strictjson: <Msg> at offset <Offset>".
func (e *SyntaxError) Error() string {
	return "strictjson: " + e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

func errAt(off int, msg string) error {
	return &SyntaxError{Offset: off, Msg: msg}
}

// node is one value of a Doc. Nodes are stored in document order: a
// container is followed by its subtree, an object member by its name (a
// String node) and then its value's subtree.
type node struct {
	start int32 // offset of the value's first byte
	end   int32 // offset just past the value's last byte
	next  int32 // index of the node after this node's subtree
	n     int32 // Array: elements; Object: members
	kind  Kind
	flags uint8
}

// flagEscaped marks a String node whose raw bytes contain a backslash
// escape, so that its unescaped content differs from its raw content.
const flagEscaped = 1

// A Doc is a parsed JSON document: a flat slice of nodes over the input
// bytes. The zero Doc is ready to use and holds no document.
//
// [Doc.Parse] resets the Doc and reuses its memory, so a Doc kept in a
// sync.Pool parses without allocating. A Doc refers to the bytes it parsed:
// they must not change while the Doc, or any [Value] from it, is in use.
// Values from one Parse are invalidated by the next Parse into the same Doc
// (they then read as the zero Value). A Doc is not safe for concurrent use.
type Doc struct {
	src     []byte
	nodes   []node
	gen     uint32  // incremented by every Parse; stale Values carry an older one
	scratch []int32 // member name indices, for duplicate checks of large objects
}

// Parse parses src as exactly one JSON value under the rules in the package
// documentation, replacing whatever the Doc held. On error the Doc holds no
// value (Root().Kind() == Invalid) and the error is a [*SyntaxError].
//
// Parse keeps src: it must not be modified while the Doc or its Values are
// in use. Once the Doc's node slice has grown large enough, Parse allocates
// nothing.
func (d *Doc) Parse(src []byte) error {
	d.gen++
	d.src = nil
	d.nodes = d.nodes[:0]
	if len(src) > maxInput {
		return errAt(maxInput, "input too large")
	}
	nodes, err := d.parse(src, d.nodes)
	if err != nil {
		d.nodes = nodes[:0]
		return err
	}
	d.nodes = nodes
	d.src = src
	return nil
}

// Root returns the document's top-level value, or the zero Value if the Doc
// holds no document (it was never parsed into, or the last Parse failed).
func (d *Doc) Root() Value {
	if len(d.nodes) == 0 {
		return Value{}
	}
	return Value{d: d, i: 0, gen: d.gen}
}

// parse appends the nodes of src to nodes and returns them (also on error,
// so the caller keeps the grown slice). It walks the input iteratively with
// an explicit stack of open containers bounded by MaxDepth.
func (d *Doc) parse(src []byte, nodes []node) ([]node, error) {
	var stack [MaxDepth]int32 // indices of the open containers
	depth := 0
	i := skipWS(src, 0)
	for {
		// A value starts at i.
		if i >= len(src) {
			return nodes, errAt(i, "unexpected end of input")
		}
		idx := int32(len(nodes))
		switch c := src[i]; c {
		case '{', '[':
			if depth == MaxDepth {
				return nodes, errAt(i, "nesting too deep")
			}
			k, closer := Array, byte(']')
			if c == '{' {
				k, closer = Object, '}'
			}
			nodes = append(nodes, node{start: int32(i), kind: k})
			stack[depth] = idx
			depth++
			i = skipWS(src, i+1)
			if i < len(src) && src[i] == closer {
				nodes[idx].end = int32(i + 1)
				nodes[idx].next = idx + 1
				depth--
				i++
				break
			}
			nodes[idx].n = 1
			if k == Object {
				var err error
				if nodes, i, err = memberName(src, i, nodes); err != nil {
					return nodes, err
				}
			}
			continue
		case '"':
			end, flags, err := scanString(src, i)
			if err != nil {
				return nodes, err
			}
			nodes = append(nodes, node{start: int32(i), end: int32(end), next: idx + 1, kind: String, flags: flags})
			i = end
		case 't', 'f', 'n':
			lit, k := "null", Null
			switch c {
			case 't':
				lit, k = "true", True
			case 'f':
				lit, k = "false", False
			}
			if len(src)-i < len(lit) || string(src[i:i+len(lit)]) != lit {
				return nodes, errAt(i, "invalid literal")
			}
			nodes = append(nodes, node{start: int32(i), end: int32(i + len(lit)), next: idx + 1, kind: k})
			i += len(lit)
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			end, err := scanNumber(src, i)
			if err != nil {
				return nodes, err
			}
			nodes = append(nodes, node{start: int32(i), end: int32(end), next: idx + 1, kind: Number})
			i = end
		default:
			return nodes, errAt(i, "invalid character at start of value")
		}

		// A value ended at i: close containers until one continues.
	after:
		for depth > 0 {
			i = skipWS(src, i)
			if i >= len(src) {
				return nodes, errAt(i, "unexpected end of input")
			}
			top := stack[depth-1]
			isObj := nodes[top].kind == Object
			switch src[i] {
			case ',':
				nodes[top].n++
				i = skipWS(src, i+1)
				if isObj {
					var err error
					if nodes, i, err = memberName(src, i, nodes); err != nil {
						return nodes, err
					}
				}
				break after
			case ']', '}':
				if (src[i] == '}') != isObj {
					break
				}
				nodes[top].end = int32(i + 1)
				nodes[top].next = int32(len(nodes))
				if isObj {
					if err := d.checkDuplicates(src, nodes, top); err != nil {
						return nodes, err
					}
				}
				depth--
				i++
				continue
			}
			if isObj {
				return nodes, errAt(i, "expected ',' or '}' after object member")
			}
			return nodes, errAt(i, "expected ',' or ']' after array element")
		}
		if depth == 0 {
			if i = skipWS(src, i); i != len(src) {
				return nodes, errAt(i, "trailing data")
			}
			return nodes, nil
		}
	}
}

// memberName parses an object member name at src[i], appends its String
// node, and consumes the ':' after it and the whitespace after that.
func memberName(src []byte, i int, nodes []node) ([]node, int, error) {
	if i >= len(src) {
		return nodes, i, errAt(i, "unexpected end of input")
	}
	if src[i] != '"' {
		return nodes, i, errAt(i, "expected string for object member name")
	}
	end, flags, err := scanString(src, i)
	if err != nil {
		return nodes, i, err
	}
	idx := int32(len(nodes))
	nodes = append(nodes, node{start: int32(i), end: int32(end), next: idx + 1, kind: String, flags: flags})
	i = skipWS(src, end)
	if i >= len(src) {
		return nodes, i, errAt(i, "unexpected end of input")
	}
	if src[i] != ':' {
		return nodes, i, errAt(i, "expected ':' after object member name")
	}
	return nodes, skipWS(src, i+1), nil
}

// skipWS returns the offset of the first byte at or after i that is not
// JSON whitespace (space, tab, line feed, carriage return).
func skipWS(src []byte, i int) int {
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plain reports the string bytes that need no further look: printable
// ASCII other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString checks the string whose opening quote is at src[i] and returns
// the offset just past its closing quote and its flags.
func scanString(src []byte, i int) (int, uint8, error) {
	var flags uint8
	i++
	for {
		for i < len(src) && plain[src[i]] {
			i++
		}
		if i >= len(src) {
			return 0, 0, errAt(i, "unterminated string")
		}
		switch c := src[i]; {
		case c == '"':
			return i + 1, flags, nil
		case c == '\\':
			flags |= flagEscaped
			n, err := checkEscape(src, i)
			if err != nil {
				return 0, 0, err
			}
			i += n
		case c < 0x20:
			return 0, 0, errAt(i, "control character in string")
		default:
			r, size := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, 0, errAt(i, "invalid UTF-8 in string")
			}
			i += size
		}
	}
}

// checkEscape checks the escape sequence whose backslash is at src[i] and
// returns its length: 2, 6 for \uXXXX, or 12 for a surrogate pair.
func checkEscape(src []byte, i int) (int, error) {
	if i+1 >= len(src) {
		return 0, errAt(len(src), "unterminated string")
	}
	switch src[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
	default:
		return 0, errAt(i, "invalid escape in string")
	}
	r, ok := hex4(src, i+2)
	if !ok {
		return 0, errAt(i, "invalid \\u escape in string")
	}
	switch {
	case r < 0xD800 || r > 0xDFFF:
		return 6, nil
	case r >= 0xDC00:
		return 0, errAt(i, "unpaired surrogate escape in string")
	}
	if i+7 >= len(src) || src[i+6] != '\\' || src[i+7] != 'u' {
		return 0, errAt(i, "unpaired surrogate escape in string")
	}
	lo, ok := hex4(src, i+8)
	if !ok {
		return 0, errAt(i+6, "invalid \\u escape in string")
	}
	if lo < 0xDC00 || lo > 0xDFFF {
		return 0, errAt(i, "unpaired surrogate escape in string")
	}
	return 12, nil
}

// hex4 decodes the four hexadecimal digits at src[i:i+4].
func hex4(src []byte, i int) (rune, bool) {
	if len(src)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range src[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// scanNumber checks the number starting at src[i] against RFC 8259's
// grammar and returns the offset just past it.
func scanNumber(src []byte, i int) (int, error) {
	if src[i] == '-' {
		i++
	}
	switch {
	case i >= len(src):
		return 0, errAt(i, "unexpected end of input")
	case src[i] == '0':
		i++
	case isDigit(src[i]):
		i = digits(src, i)
	default:
		return 0, errAt(i, "invalid number")
	}
	if i < len(src) && src[i] == '.' {
		i++
		if i >= len(src) || !isDigit(src[i]) {
			return 0, errAt(i, "invalid number")
		}
		i = digits(src, i)
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if i >= len(src) || !isDigit(src[i]) {
			return 0, errAt(i, "invalid number")
		}
		i = digits(src, i)
	}
	if i < len(src) {
		switch c := src[i]; {
		case isDigit(c), c == '.', c == 'e', c == 'E', c == '+', c == '-':
			// "01", "1.2.3", "1e5e5": the grammar ended inside what is
			// plainly meant as one number.
			return 0, errAt(i, "invalid number")
		}
	}
	return i, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digits(src []byte, i int) int {
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	return i
}

// checkDuplicates reports a duplicate member name in the object at
// nodes[obj], whose subtree is complete. Names are compared unescaped.
// Small objects compare every pair, comparing raw bytes when neither name
// has escapes; larger ones sort their name indices (in d.scratch, reused
// across parses) so the check stays O(n log n).
func (d *Doc) checkDuplicates(src []byte, nodes []node, obj int32) error {
	o := &nodes[obj]
	if o.n < 2 {
		return nil
	}
	if o.n <= pairwiseMax {
		var names [pairwiseMax]int32
		k := 0
		for j := obj + 1; j < o.next; j = nodes[j+1].next {
			a := &nodes[j]
			alen := a.end - a.start
			for _, p := range names[:k] {
				b := &nodes[p]
				// Unescaped names of different raw lengths, or whose
				// last characters differ, differ (many JWT claim names
				// share a length: exp, nbf, iat, iss, aud, sub, jti).
				if (a.flags|b.flags)&flagEscaped == 0 && (b.end-b.start != alen || src[b.end-2] != src[a.end-2]) {
					continue
				}
				if sameName(src, a, b) {
					return errAt(int(a.start), "duplicate member name")
				}
			}
			names[k] = j
			k++
		}
		return nil
	}
	names := d.scratch[:0]
	for j := obj + 1; j < o.next; j = nodes[j+1].next {
		names = append(names, j)
	}
	d.scratch = names
	slices.SortFunc(names, func(a, b int32) int {
		if c := compareNames(src, &nodes[a], &nodes[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	// Report the earliest member that repeats an earlier name.
	first := int32(-1)
	for k := 1; k < len(names); k++ {
		if sameName(src, &nodes[names[k-1]], &nodes[names[k]]) && (first < 0 || names[k] < first) {
			first = names[k]
		}
	}
	if first >= 0 {
		return errAt(int(nodes[first].start), "duplicate member name")
	}
	return nil
}

// content returns the bytes between the quotes of the String node n.
func content(src []byte, n *node) []byte {
	return src[n.start+1 : n.end-1]
}

// sameName reports whether the String nodes a and b have equal unescaped
// contents.
func sameName(src []byte, a, b *node) bool {
	if (a.flags|b.flags)&flagEscaped == 0 {
		return bytes.Equal(content(src, a), content(src, b))
	}
	return compareNames(src, a, b) == 0
}

// compareNames compares the unescaped contents of the String nodes a and b
// byte by byte.
func compareNames(src []byte, a, b *node) int {
	if (a.flags|b.flags)&flagEscaped == 0 {
		return bytes.Compare(content(src, a), content(src, b))
	}
	ua := unescaper{s: content(src, a)}
	ub := unescaper{s: content(src, b)}
	for {
		ca, oka := ua.next()
		cb, okb := ub.next()
		switch {
		case !oka && !okb:
			return 0
		case !oka:
			return -1
		case !okb:
			return 1
		case ca != cb:
			return cmp.Compare(ca, cb)
		}
	}
}
