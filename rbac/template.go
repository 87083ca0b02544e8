package rbac

import (
	"fmt"
	"strings"
)

// Template variables, as bits of tmpl.vars.
const (
	varSub     = 1 << iota // ${sub}: the principal's subject
	varProject             // ${project}: the project, domain or realm of the assignment
	varRealm               // ${realm}: the principal's realm
)

// varNames maps each variable's name to its bit.
var varNames = map[string]uint8{"sub": varSub, "project": varProject, "realm": varRealm}

// tmpl is a role pattern split into literal text and template variables.
// A pattern without variables has no parts.
type tmpl struct {
	parts []tpart
	vars  uint8 // the variables used, as a bit set
}

// tpart is literal text (v == 0) or one variable.
type tpart struct {
	lit string
	v   uint8
}

// parseTemplate splits p into its literal parts and ${...} variables. Every
// "${" starts a variable: '{' and '}' are not scope characters, so nothing
// else could be meant.
func parseTemplate(p string) (tmpl, error) {
	var t tmpl
	rest := p
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return tmpl{}, fmt.Errorf("unterminated template variable at byte %d", len(p)-len(rest)+i)
		}
		name := rest[i+2 : i+j]
		v, ok := varNames[name]
		if !ok {
			if name == "" {
				return tmpl{}, fmt.Errorf("empty template variable ${} (known: ${sub}, ${project}, ${realm})")
			}
			return tmpl{}, fmt.Errorf("unknown template variable ${%s} (known: ${sub}, ${project}, ${realm})", truncate(name, 32))
		}
		if i > 0 {
			t.parts = append(t.parts, tpart{lit: rest[:i]})
		}
		t.parts = append(t.parts, tpart{v: v})
		t.vars |= v
		rest = rest[i+j+1:]
	}
	if t.vars == 0 {
		return tmpl{}, nil
	}
	if rest != "" {
		t.parts = append(t.parts, tpart{lit: rest})
	}
	return t, nil
}

// placeholder returns the pattern with every variable replaced by a short
// literal, to check the grammar of the pattern at load time: a filled value
// is a non-empty run of segment characters with no '*', '/' or ':', so the
// placeholder stands for any of them.
func (t tmpl) placeholder(p string) string {
	if t.vars == 0 {
		return p
	}
	var b strings.Builder
	for _, part := range t.parts {
		if part.v != 0 {
			b.WriteByte('x')
		} else {
			b.WriteString(part.lit)
		}
	}
	return b.String()
}

// templateValues are the values a binding fills variables with; "" means
// the value is absent (or not a valid value), and a pattern that needs it is
// dropped.
type templateValues struct {
	sub, project, realm string
}

// fill returns pattern p with its variables filled from vals, and false when
// a variable it uses has no valid value.
func (t tmpl) fill(p string, vals templateValues) (string, bool) {
	if t.vars == 0 {
		return p, true
	}
	var b strings.Builder
	b.Grow(len(p) + 32)
	for _, part := range t.parts {
		var v string
		switch part.v {
		case 0:
			b.WriteString(part.lit)
			continue
		case varSub:
			v = vals.sub
		case varProject:
			v = vals.project
		case varRealm:
			v = vals.realm
		}
		if !validTemplateValue(v) {
			return "", false
		}
		b.WriteString(v)
	}
	return b.String(), true
}

// validTemplateValue reports whether v may fill a template variable: a
// non-empty run of segment characters other than '/' (and so without ':' or
// '*'), at most MaxLen bytes. A value with '*' would widen the pattern, one
// with ':' would shift its segments, and one with '/' could reach into
// another name's sub-path (project "a/b" under projects/${project}/...).
func validTemplateValue(v string) bool {
	if v == "" || len(v) > MaxLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !segmentChar[c] || c == '/' {
			return false
		}
	}
	return true
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
