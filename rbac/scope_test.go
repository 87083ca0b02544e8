package rbac

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestDataDriven runs the scope grammar vectors in testdata/grammar (the
// policy vectors in testdata/policy have their own runner). "compile" takes
// one pattern per input line and keeps the matcher (or prints the errors);
// "match" takes one scope per input line and prints the decision of the last
// compiled matcher. The matcher, the same set compiled into a trie and the
// reference matcher must all agree.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/grammar", func(t *testing.T, path string) {
		var m, trie *Matcher
		var patterns []string
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "compile":
				patterns = lines(d.Input)
				var err error
				m, err = Compile(patterns)
				if err != nil {
					m = nil
					return err.Error()
				}
				if trie, err = compile(patterns, 0); err != nil {
					d.Fatalf(t, "the trie form fails where Compile succeeds: %v", err)
				}
				return fmt.Sprintf("ok: %d patterns", m.Len())
			case "match":
				var b strings.Builder
				for _, s := range lines(d.Input) {
					grant, ok := m.Match(s)
					if ok != referenceMatch(patterns, s) {
						t.Errorf("%s: matcher says %v, reference matcher disagrees", s, ok)
					}
					if g, tok := trie.Match(s); tok != ok || tok && !referenceMatch([]string{g}, s) {
						t.Errorf("%s: trie form says %v (%q), reference matcher disagrees", s, tok, g)
					}
					if ok {
						fmt.Fprintf(&b, "%s: allow (%s)\n", s, grant)
					} else {
						fmt.Fprintf(&b, "%s: deny\n", s)
					}
				}
				return b.String()
			case "validate-scope":
				var b strings.Builder
				for _, s := range lines(d.Input) {
					if err := ValidateScope(s); err != nil {
						fmt.Fprintf(&b, "%s\n", err)
					} else {
						fmt.Fprintf(&b, "%s: ok\n", s)
					}
				}
				return b.String()
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
				return ""
			}
		})
	})
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// referenceMatch is the grammar of the package documentation written as
// directly as possible, with no trie: the oracle for tests and fuzzing.
func referenceMatch(patterns []string, scope string) bool {
	for _, p := range patterns {
		if ValidatePattern(p) != nil {
			continue
		}
		if p == SuperScope {
			return true
		}
		ps, ss := strings.Split(p, ":"), strings.Split(scope, ":")
		if len(ps) != len(ss) {
			continue
		}
		all := true
		for i := range ps {
			if !segmentMatches(ps[i], ss[i]) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func segmentMatches(p, s string) bool {
	if s == "" {
		return false
	}
	pre, suf, star := strings.Cut(p, "*")
	if !star {
		return p == s
	}
	return len(s) >= len(pre)+len(suf) && strings.HasPrefix(s, pre) && strings.HasSuffix(s, suf)
}

func TestCompileReportsEveryInvalidPattern(t *testing.T) {
	_, err := Compile([]string{"ok:fine", "", "a::b", "a:b**:c", "a b", "ok:*"})
	if err == nil {
		t.Fatal("Compile accepted invalid patterns")
	}
	var pes []*PatternError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var pe *PatternError
		if !errors.As(e, &pe) {
			t.Fatalf("error %v is not a *PatternError", e)
		}
		pes = append(pes, pe)
	}
	want := []string{"", "a::b", "a:b**:c", "a b"}
	if len(pes) != len(want) {
		t.Fatalf("got %d errors (%v), want %d", len(pes), err, len(want))
	}
	for i, pe := range pes {
		if pe.Pattern != want[i] || pe.Reason == "" {
			t.Errorf("error %d = %+v, want pattern %q with a reason", i, pe, want[i])
		}
	}
}

func TestPatternErrorTruncatesLongPatterns(t *testing.T) {
	err := ValidatePattern(strings.Repeat("a", MaxLen+1))
	var pe *PatternError
	if !errors.As(err, &pe) || len(pe.Pattern) > 70 || !strings.Contains(pe.Reason, "longer than") {
		t.Fatalf("got %v", err)
	}
}

func TestNilAndZeroMatcherMatchNothing(t *testing.T) {
	var m *Matcher
	if _, ok := m.Match("a"); ok {
		t.Error("nil matcher matched")
	}
	if _, ok := (&Matcher{}).Match("a"); ok {
		t.Error("zero matcher matched")
	}
	if m.Len() != 0 {
		t.Error("nil matcher has patterns")
	}
}

func TestPrincipalAllows(t *testing.T) {
	p := &Principal{Profile: &Profile{Scopes: []string{"mailbox:alice:*"}, Grants: MustCompile("mailbox:alice:*")}}
	if g, ok := p.Allows("mailbox:alice:read"); !ok || g != "mailbox:alice:*" {
		t.Errorf("Allows own mailbox = %q, %v", g, ok)
	}
	if _, ok := p.Allows("mailbox:bob:read"); ok {
		t.Error("Allows another mailbox")
	}
	if _, ok := (&Principal{Profile: &Profile{}}).Allows("x"); ok {
		t.Error("principal without grants allowed a scope")
	}
}

func TestMustCompilePanicsOnInvalidPattern(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustCompile did not panic")
		}
	}()
	MustCompile("a::b")
}
