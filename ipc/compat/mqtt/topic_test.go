package mqtt

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	for _, tc := range []struct {
		tmpl  string
		scope string // of topic a/b, publish; "" when the template is invalid
		why   string // in the error
	}{
		{DefaultScope, "mqtt/topic/a/b:publish", ""},
		{"{action}:mqtt:{topic}", "publish:mqtt:a/b", ""},
		{"tenant:t1:mqtt/{topic}:{action}", "tenant:t1:mqtt/a/b:publish", ""},
		{"mqtt/{topic}/{action}", "mqtt/a/b/publish", ""},
		{"mqtt/topic/{topic}", "", "exactly once"},
		{"mqtt/{topic}/{topic}:{action}", "", "exactly once"},
		{"mqtt/{topic}:{action}:{user}", "", "unknown placeholder {user}"},
		{"mqtt/{topic:{action}", "", "unknown placeholder"},
		{"mqtt/{topic}:{action", "", "without '}'"},
		{"mqtt/*/{topic}:{action}", "", "holds '*'"},
		{"mqtt topic/{topic}:{action}", "", "valid scope"},
		{"mqtt/{topic}::{action}", "", "valid scope"},
		{"", "", "exactly once"},
	} {
		t.Run(tc.tmpl, func(t *testing.T) {
			st, err := parseTemplate(tc.tmpl)
			if tc.scope == "" {
				if err == nil || !strings.Contains(err.Error(), tc.why) {
					t.Fatalf("parseTemplate(%q) = %v, want an error with %q", tc.tmpl, err, tc.why)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := st.render("a/b", ActionPublish); got != tc.scope {
				t.Errorf("render = %q, want %q", got, tc.scope)
			}
		})
	}
}

func TestNameValue(t *testing.T) {
	for _, tc := range []struct {
		topic string
		err   error
	}{
		{"sensors/temp", nil},
		{"a//b", nil},
		{"/a", nil},
		{"a/", nil},
		{"$SYS/broker/load", nil},
		{"x+y", errWildcardName},
		{"a/+", errWildcardName},
		{"a/#", errWildcardName},
		{"", errEmptyTopic},
		{"a:b", errScopeChar},
		{"a/*", errScopeChar},
	} {
		v, err := nameValue(tc.topic)
		if !errors.Is(err, tc.err) {
			t.Errorf("nameValue(%q) = %v, want %v", tc.topic, err, tc.err)
		}
		if err == nil && v != tc.topic {
			t.Errorf("nameValue(%q) = %q, want the topic itself", tc.topic, v)
		}
	}
}

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		filter string
		topics string // without $share/<group>/
		values []string
		err    error
	}{
		{"sensors/temp", "sensors/temp", []string{"sensors/temp"}, nil},
		{"a//b", "a//b", []string{"a//b"}, nil},
		{"a/+/c", "a/+/c", []string{"a/*/c"}, nil},
		{"+", "+", []string{"*"}, nil},
		{"+/+", "+/+", []string{"*/*"}, nil},
		{"/+", "/+", []string{"/*"}, nil},
		{"#", "#", []string{"*"}, nil},
		{"a/#", "a/#", []string{"a/*", "a"}, nil},
		{"a/b/#", "a/b/#", []string{"a/b/*", "a/b"}, nil},
		{"+/#", "+/#", []string{"*/*", "*"}, nil},
		{"/#", "/#", []string{"/*"}, nil},
		{"a//#", "a//#", []string{"a//*", "a/"}, nil},
		{"$share/g/a/+", "a/+", []string{"a/*"}, nil},
		{"$share/g/#", "#", []string{"*"}, nil},
		{"$share/g/a", "a", []string{"a"}, nil},
		{"$share/g", "", nil, errBadShare},
		{"$share//a", "", nil, errBadShare},
		{"$share/+/a", "", nil, errBadShare},
		{"$share/g/", "", nil, errBadShare},
		{"$shared/g/a", "$shared/g/a", []string{"$shared/g/a"}, nil},
		{"a/#/b", "", nil, errBadHash},
		{"#/a", "", nil, errBadHash},
		{"#x", "", nil, errBadHash},
		{"a/b#", "", nil, errBadHash},
		{"a+", "", nil, errBadPlus},
		{"a/+b/c", "", nil, errBadPlus},
		{"", "", nil, errEmptyTopic},
		{"a/*", "", nil, errScopeChar},
		{"a:b/+", "", nil, errScopeChar},
		{"a:b/#/c", "", nil, errBadHash},
		{"a*+", "", nil, errBadPlus},
	} {
		f, err := parseFilter(tc.filter)
		if !errors.Is(err, tc.err) || f.topics != tc.topics || !slices.Equal(f.values, tc.values) {
			t.Errorf("parseFilter(%q) = %q %q, %v; want %q %q, %v", tc.filter, f.topics, f.values, err, tc.topics, tc.values, tc.err)
		}
		if err == nil && f.wildcard() != strings.ContainsAny(tc.topics, "+#") {
			t.Errorf("parseFilter(%q).wildcard() = %v", tc.filter, f.wildcard())
		}
	}
}

// TestFilterMatches: filter.matches agrees with the reference matcher on
// every valid filter and topic over a small alphabet.
func TestFilterMatches(t *testing.T) {
	topics := topicsUpTo("ab/", 4)
	n := 0
	for _, s := range topicsUpTo("a/+#", 5) {
		f, err := parseFilter(s)
		if err != nil {
			continue
		}
		n++
		for _, topic := range topics {
			if got, want := f.matches(topic), mqttMatch(s, topic); got != want {
				t.Fatalf("%q matches %q: %v, want %v", s, topic, got, want)
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d valid filters", n)
	}
}

func TestTopicOf(t *testing.T) {
	for _, tc := range []struct {
		tmpl, scope, action, topic string
		ok                         bool
	}{
		{DefaultScope, "mqtt/topic/a/b:subscribe", ActionSubscribe, "a/b", true},
		{DefaultScope, "mqtt/topic/a/b:publish", ActionSubscribe, "", false},
		{DefaultScope, "mqtt/other/a:subscribe", ActionSubscribe, "", false},
		{DefaultScope, "mqtt/topic/:subscribe", ActionSubscribe, "", true},
		{DefaultScope, "mqtt/topic:subscribe", ActionSubscribe, "", false},
		{"{action}:mqtt:{topic}", "subscribe:mqtt:x/y", ActionSubscribe, "x/y", true},
		{"{action}:mqtt:{topic}", "publish:mqtt:x/y", ActionSubscribe, "", false},
	} {
		st, err := parseTemplate(tc.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if topic, ok := st.topicOf(tc.scope, tc.action); ok != tc.ok || topic != tc.topic {
			t.Errorf("%s topicOf(%q) = %q, %v; want %q, %v", tc.tmpl, tc.scope, topic, ok, tc.topic, tc.ok)
		}
		if tc.ok && st.render(tc.topic, tc.action) != tc.scope {
			t.Errorf("%s: render(topicOf(%q)) differs", tc.tmpl, tc.scope)
		}
	}
}

// TestTemplateScope: a value the scope alphabet cannot hold is refused on
// the rendered scope, never escaped.
func TestTemplateScope(t *testing.T) {
	st, err := parseTemplate(DefaultScope)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"a b", "a\tb", "caf\u00e9", "a\"b", "a<b", "a?b", "a[b", "a\\b", "a{b", "a|b", "a\x00b", "a#b", strings.Repeat("x", 1024)} {
		if s, err := st.scope(bad, ActionPublish); err == nil {
			t.Errorf("scope(%q) = %q, want an error", bad, s)
		}
	}
	for _, good := range []string{"a/b", "$SYS/x", "a-b_c.d~e!f$g&h'i(j)k+l,m;n=o@p%q", "*"} {
		if _, err := st.scope(good, ActionSubscribe); err != nil {
			t.Errorf("scope(%q): %v", good, err)
		}
	}
}
