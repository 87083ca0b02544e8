package rbac

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLen is the longest scope or pattern, in bytes, that verifyd accepts.
const MaxLen = 1024

// Separator separates the segments of a scope.
const Separator = ':'

// Wildcard is the pattern character that matches any run of characters other
// than [Separator] within one segment. The whole pattern "*" is the
// super-scope.
const Wildcard = '*'

// SuperScope is the pattern that matches every scope.
const SuperScope = "*"

// PatternError reports an invalid pattern or scope and why it is invalid.
type PatternError struct {
	Pattern string // the offending pattern or scope, truncated to 64 bytes
	Reason  string // what is wrong with it
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("rbac: invalid scope pattern %q: %s", e.Pattern, e.Reason)
}

// segmentChar reports for each byte whether it may appear in a segment.
var segmentChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()+,;=@/%" {
		t[c] = true
	}
	return t
}()

// ValidatePattern reports whether p is a valid granted pattern. The error,
// when not nil, is a *PatternError.
func ValidatePattern(p string) error {
	return validate(p, true)
}

// ValidateScope reports whether s is a valid requested scope. A requested
// scope follows the pattern grammar, except that '*' is an ordinary
// character in it (see the package documentation). The error, when not nil,
// is a *PatternError.
func ValidateScope(s string) error {
	return validate(s, false)
}

func validate(p string, pattern bool) error {
	fail := func(format string, args ...any) error {
		shown := p
		if len(shown) > 64 {
			shown = shown[:64] + "..."
		}
		return &PatternError{Pattern: shown, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case p == "":
		return fail("empty")
	case len(p) > MaxLen:
		return fail("longer than %d bytes", MaxLen)
	case pattern && p == SuperScope:
		return nil
	}
	segStart, stars := 0, 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == Separator {
			if i == segStart {
				return fail("empty segment at byte %d", i)
			}
			segStart, stars = i+1, 0
			continue
		}
		c := p[i]
		if c == Wildcard {
			stars++
			if pattern && stars > 1 {
				return fail("more than one '*' in a segment at byte %d", i)
			}
			continue
		}
		if !segmentChar[c] {
			if c < 0x20 || c > 0x7e {
				return fail("control or non-ASCII byte 0x%02x at byte %d is not allowed", c, i)
			}
			return fail("character %q at byte %d is not allowed", c, i)
		}
	}
	return nil
}

// A Matcher is an immutable set of compiled patterns. It is safe for
// concurrent use, and its zero value matches nothing.
//
// A small set (at most smallSet patterns, the common case of a single
// credential's grants) is kept as its patterns and matched one by one: a few
// string comparisons, and almost no memory per cached credential. A larger
// set is compiled into a trie of segments.
//
// A Matcher holds no pointers into itself, so a copy of one (for example
// embedded in a larger cached object, to keep it in one allocation) is an
// equivalent Matcher.
type Matcher struct {
	smallN int              // number of patterns in small; 0 for a trie
	small  [smallSet]string // the patterns of a small set
	root   *node            // the trie of a large set; nil for a small one
	super  string           // the super-scope pattern when present, else ""
	n      int              // number of distinct patterns
}

// smallSet is the largest pattern set matched without a trie.
const smallSet = 4

// node is one segment position of the trie.
type node struct {
	grant string           // pattern that ends here, or "" when none
	lit   map[string]*node // children by literal segment
	// wild holds the children reached through a segment with a '*',
	// indexed by the literal prefix before the '*'. wildLens lists the
	// distinct prefix lengths present, ascending.
	wild     map[string][]wildEdge
	wildLens []int
}

// wildEdge is a segment pattern prefix*suffix; the prefix is its map key.
type wildEdge struct {
	suffix string
	next   *node
}

// Compile validates patterns and compiles them into a Matcher. Every invalid
// pattern is reported, joined into one error of *PatternError values; on
// error no Matcher is returned. Duplicates are allowed and collapse.
func Compile(patterns []string) (*Matcher, error) {
	return compile(patterns, smallSet)
}

// compile is Compile with the largest set kept without a trie as a
// parameter, so that tests can force either form.
func compile(patterns []string, small int) (*Matcher, error) {
	var errs []error
	for _, p := range patterns {
		if err := ValidatePattern(p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m := &Matcher{}
	distinct := make([]string, 0, len(patterns))
	seen := make(map[string]bool, len(patterns))
	for _, p := range patterns {
		if !seen[p] {
			seen[p] = true
			distinct = append(distinct, p)
		}
	}
	if len(distinct) <= min(small, smallSet) && !seen[SuperScope] {
		m.smallN = copy(m.small[:], distinct)
		m.n = m.smallN
		return m, nil
	}
	b := builder{wildBySeg: map[*node]map[string]*node{}}
	for _, p := range distinct {
		if p == SuperScope {
			if m.super == "" {
				m.n++
			}
			m.super = p
			continue
		}
		if m.root == nil {
			m.root = &node{}
		}
		n := m.root
		for seg := range strings.SplitSeq(p, string(Separator)) {
			n = b.child(n, seg)
		}
		if n.grant == "" {
			m.n++
			n.grant = p
		}
	}
	return m, nil
}

// MustCompile is like Compile but panics on an invalid pattern. It is meant
// for patterns fixed in the program's source.
func MustCompile(patterns ...string) *Matcher {
	m, err := Compile(patterns)
	if err != nil {
		panic(err)
	}
	return m
}

// builder shares one child node between identical wildcard segments.
type builder struct {
	wildBySeg map[*node]map[string]*node
}

func (b *builder) child(n *node, seg string) *node {
	star := strings.IndexByte(seg, Wildcard)
	if star < 0 {
		if c := n.lit[seg]; c != nil {
			return c
		}
		if n.lit == nil {
			n.lit = map[string]*node{}
		}
		c := &node{}
		n.lit[seg] = c
		return c
	}
	if c := b.wildBySeg[n][seg]; c != nil {
		return c
	}
	if b.wildBySeg[n] == nil {
		b.wildBySeg[n] = map[string]*node{}
	}
	c := &node{}
	b.wildBySeg[n][seg] = c
	prefix := seg[:star]
	if n.wild == nil {
		n.wild = map[string][]wildEdge{}
	}
	if _, ok := n.wild[prefix]; !ok {
		i := 0
		for i < len(n.wildLens) && n.wildLens[i] < len(prefix) {
			i++
		}
		if i == len(n.wildLens) || n.wildLens[i] != len(prefix) {
			n.wildLens = append(n.wildLens[:i], append([]int{len(prefix)}, n.wildLens[i:]...)...)
		}
	}
	n.wild[prefix] = append(n.wild[prefix], wildEdge{suffix: seg[star+1:], next: c})
	return c
}

// Len returns the number of distinct patterns in m.
func (m *Matcher) Len() int {
	if m == nil {
		return 0
	}
	return m.n
}

// Match reports whether some pattern of m matches scope, and returns one such
// pattern: the super-scope when m holds it; otherwise which of several
// matching patterns is returned is unspecified.
// It allocates nothing. A scope that is not valid per [ValidateScope] may
// still be passed; it never matches through an empty segment.
func (m *Matcher) Match(scope string) (grant string, ok bool) {
	if m == nil {
		return "", false
	}
	if m.super != "" {
		return m.super, true
	}
	if scope == "" || len(scope) > MaxLen {
		return "", false
	}
	if m.smallN > 0 {
		for _, p := range m.small[:m.smallN] {
			if matchPattern(p, scope) {
				return p, true
			}
		}
		return "", false
	}
	if m.root == nil {
		return "", false
	}
	g := m.root.match(scope)
	return g, g != ""
}

// matchPattern matches one valid pattern (not the super-scope) against
// scope, segment by segment.
func matchPattern(p, scope string) bool {
	for {
		pseg, prest, pmore := cutSegment(p)
		sseg, srest, smore := cutSegment(scope)
		if pmore != smore || !matchSegment(pseg, sseg) {
			return false
		}
		if !pmore {
			return true
		}
		p, scope = prest, srest
	}
}

// cutSegment splits s at its first separator.
func cutSegment(s string) (seg, rest string, more bool) {
	if i := strings.IndexByte(s, Separator); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// matchSegment matches one pattern segment against one scope segment.
func matchSegment(p, s string) bool {
	if s == "" {
		return false
	}
	star := strings.IndexByte(p, Wildcard)
	if star < 0 {
		return p == s
	}
	suffix := p[star+1:]
	return len(s) >= len(p)-1 && s[:star] == p[:star] && s[len(s)-len(suffix):] == suffix
}

// match matches scope, the segments still to consume, below n.
func (n *node) match(scope string) string {
	seg, rest, more := cutSegment(scope)
	if seg == "" {
		return ""
	}
	if c := n.lit[seg]; c != nil {
		if g := c.next(rest, more); g != "" {
			return g
		}
	}
	for _, l := range n.wildLens {
		if l > len(seg) {
			break
		}
		for _, e := range n.wild[seg[:l]] {
			if len(seg)-l >= len(e.suffix) && strings.HasSuffix(seg, e.suffix) {
				if g := e.next.next(rest, more); g != "" {
					return g
				}
			}
		}
	}
	return ""
}

// next continues the match at n: the scope ends here unless more is set.
func (n *node) next(rest string, more bool) string {
	if !more {
		return n.grant
	}
	return n.match(rest)
}
