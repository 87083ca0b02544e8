package mqtt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/verifyd/verifyd/rbac"
)

// The values of the scope template's {action}.
const (
	ActionPublish   = "publish"
	ActionSubscribe = "subscribe"
)

// DefaultScope is the default scope template.
const DefaultScope = "mqtt/topic/{topic}:{action}"

// sharePrefix starts an MQTT 5 shared subscription: $share/<group>/<filter>.
const sharePrefix = "$share/"

// Why a topic or filter is refused.
var (
	errEmptyTopic   = errors.New("empty topic")
	errWildcardName = errors.New("a topic name holds '+' or '#'")
	errBadPlus      = errors.New("'+' does not fill a whole level")
	errBadHash      = errors.New("'#' is not the whole last level")
	errBadShare     = errors.New("a shared subscription needs $share/<group>/<filter>, the group without '/', '+' or '#'")
	errScopeChar    = errors.New("the topic holds a character a scope cannot hold (':', '*', a space, a control or non-ASCII character)")
	errScopeTooLong = fmt.Errorf("the scope would be longer than %d bytes", rbac.MaxLen)
)

// A scopeTemplate renders the scope a topic needs for an action. It is
// immutable once parsed.
type scopeTemplate struct {
	pieces []piece
}

// piece is a literal run of a template, or one of its placeholders.
type piece struct {
	lit string
	ph  placeholder
}

type placeholder uint8

const (
	literal placeholder = iota
	phTopic
	phAction
)

// parseTemplate parses a scope template: {topic} and {action} each exactly
// once, any other text literal. The literal text must make a valid scope
// with a topic and an action filled in, and hold no '*'.
func parseTemplate(t string) (scopeTemplate, error) {
	var st scopeTemplate
	var seen [3]int
	rest := t
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			st.pieces = append(st.pieces, piece{lit: rest})
			break
		}
		if i > 0 {
			st.pieces = append(st.pieces, piece{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return scopeTemplate{}, fmt.Errorf("%q has a '{' without '}'", t)
		}
		name := rest[i : i+j+1]
		switch name {
		case "{topic}":
			st.pieces = append(st.pieces, piece{ph: phTopic})
			seen[phTopic]++
		case "{action}":
			st.pieces = append(st.pieces, piece{ph: phAction})
			seen[phAction]++
		default:
			return scopeTemplate{}, fmt.Errorf("%q has the unknown placeholder %s (known: {topic}, {action})", t, name)
		}
		rest = rest[i+j+1:]
	}
	if seen[phTopic] != 1 || seen[phAction] != 1 {
		return scopeTemplate{}, fmt.Errorf("%q must hold {topic} and {action} exactly once each", t)
	}
	if strings.ContainsRune(t, rbac.Wildcard) {
		return scopeTemplate{}, fmt.Errorf("%q holds '*': a template's literal text cannot widen a scope", t)
	}
	sample := st.render("t", ActionPublish)
	if err := rbac.ValidateScope(sample); err != nil {
		return scopeTemplate{}, fmt.Errorf("%q does not make a valid scope (topic t gives %q: %v)", t, sample, err)
	}
	return st, nil
}

// render fills the template.
func (st scopeTemplate) render(topic, action string) string {
	var b strings.Builder
	for _, p := range st.pieces {
		switch p.ph {
		case phTopic:
			b.WriteString(topic)
		case phAction:
			b.WriteString(action)
		default:
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

// topicOf returns the topic whose scope for action is scope, if there is
// one: the text between what the template puts before and after {topic}.
func (st scopeTemplate) topicOf(scope, action string) (string, bool) {
	var before, after strings.Builder
	dst := &before
	for _, p := range st.pieces {
		switch p.ph {
		case phTopic:
			dst = &after
		case phAction:
			dst.WriteString(action)
		default:
			dst.WriteString(p.lit)
		}
	}
	b, a := before.String(), after.String()
	if len(scope) < len(b)+len(a) || !strings.HasPrefix(scope, b) || !strings.HasSuffix(scope, a) {
		return "", false
	}
	return scope[len(b) : len(scope)-len(a)], true
}

// isScopeError reports whether err refuses a topic that is valid MQTT but
// that no scope can name, rather than an invalid topic.
func isScopeError(err error) bool {
	return errors.Is(err, errScopeChar) || errors.Is(err, errScopeTooLong)
}

// scope renders the scope of one topic value (a topic name, or a filter
// whose wildcards are already '*') and checks it.
func (st scopeTemplate) scope(value, action string) (string, error) {
	s := st.render(value, action)
	if len(s) > rbac.MaxLen {
		return "", errScopeTooLong
	}
	if rbac.ValidateScope(s) != nil {
		return "", errScopeChar
	}
	return s, nil
}

// checkChars refuses a topic holding ':' or '*', which a scope would read
// as a separator or a wildcard. The other characters are checked on the
// rendered scope.
func checkChars(topic string) error {
	if strings.ContainsAny(topic, ":*") {
		return errScopeChar
	}
	return nil
}

// nameValue checks an MQTT topic name (of a PUBLISH, or of a message
// delivered to a subscriber) and returns the value {topic} takes: the name
// itself.
func nameValue(topic string) (string, error) {
	switch {
	case topic == "":
		return "", errEmptyTopic
	case strings.ContainsAny(topic, "+#"):
		return "", errWildcardName
	}
	return topic, checkChars(topic)
}

// A filter is a checked MQTT topic filter (of a SUBSCRIBE).
type filter struct {
	// topics is the filter itself, without the $share/<group>/ of a
	// shared subscription, which receives a part of what its filter does.
	topics string
	// values are the values {topic} takes, every one of which must be
	// granted: the filter with each wildcard level ('+', '#') written
	// '*', and for a filter ending in "/#" also its parent, which '#'
	// matches too ("a/#" receives "a").
	values []string
}

// wildcard reports whether the filter has a wildcard level.
func (f filter) wildcard() bool { return strings.ContainsAny(f.topics, "+#") }

// parseFilter checks an MQTT topic filter and maps it to scope values.
//
// This is sound because a requested '*' is an ordinary character to
// rbac: a pattern grants a scope holding one only if it matches whatever
// the '*' stands for, and '*' stands for any run of characters other than
// ':', more than '+' (one level) or '#' (any levels) can stand for. No '+'
// or '#' ever reaches a scope, so a granted pattern holding a literal '+'
// covers no filter.
func parseFilter(s string) (filter, error) {
	if strings.HasPrefix(s, sharePrefix) {
		group, rest, ok := strings.Cut(s[len(sharePrefix):], "/")
		if !ok || group == "" || strings.ContainsAny(group, "+#") || rest == "" {
			return filter{}, errBadShare
		}
		s = rest
	}
	if s == "" {
		return filter{}, errEmptyTopic
	}
	var b strings.Builder
	b.Grow(len(s))
	hash := false
	for level, rest, more := "", s, true; more; {
		level, rest, more = strings.Cut(rest, "/")
		switch {
		case level == "+":
			b.WriteByte(byte(rbac.Wildcard))
		case level == "#":
			if more {
				return filter{}, errBadHash
			}
			hash = true
		case strings.ContainsRune(level, '+'):
			return filter{}, errBadPlus
		case strings.ContainsRune(level, '#'):
			return filter{}, errBadHash
		default:
			b.WriteString(level)
		}
		if more {
			b.WriteByte('/')
		}
	}
	if err := checkChars(s); err != nil {
		return filter{}, err
	}
	f := filter{topics: s}
	v := b.String()
	switch {
	case !hash:
		f.values = []string{v}
	case v == "": // the filter "#"
		f.values = []string{string(rbac.Wildcard)}
	case v == "/": // the filter "/#": its parent would be the empty topic
		f.values = []string{v + string(rbac.Wildcard)}
	default: // v is the parent followed by '/'
		f.values = []string{v + string(rbac.Wildcard), v[:len(v)-1]}
	}
	return f, nil
}

// matches reports whether the filter matches the topic name topic, as
// MQTT 3.1.1 §4.7 defines it: '+' one level, '#' any number of levels, its
// parent level included. Topics beginning with '$' are matched like the
// others: a filter is taken to receive more, never less, than a broker
// delivers it.
func (f filter) matches(topic string) bool {
	fs, ts := f.topics, topic
	for {
		fl, frest, fmore := strings.Cut(fs, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(ts, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			return !fmore && !tmore || fmore && frest == "#"
		}
		fs, ts = frest, trest
	}
}
