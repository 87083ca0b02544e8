package mqtt

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/rbac"
)

// expand returns topics a filter matches: each '+' level filled with a
// few values, a trailing '#' with a few runs of levels and with nothing
// (its parent). Wildcards past the fourth are filled with "x" only.
func expand(topics string) []string {
	levels := strings.Split(topics, "/")
	out := []string{""}
	wild := 0
	for i, l := range levels {
		fills := []string{l}
		switch l {
		case "+":
			fills = []string{"x", "", "$y"}
		case "#":
			fills = []string{"x", "", "x/y"}
		}
		if len(fills) > 1 {
			if wild++; wild > 4 {
				fills = fills[:1]
			}
		}
		var next []string
		for _, o := range out {
			if l == "#" && i > 0 {
				next = append(next, o) // the parent level
			}
			for _, v := range fills {
				if i == 0 {
					next = append(next, v)
				} else {
					next = append(next, o+"/"+v)
				}
			}
		}
		out = next
	}
	return out
}

// FuzzFilterScope: a filter that parses maps to scope values such that a
// pattern granting all of them grants the scope of every topic the filter
// matches; a filter that does not parse leaves nothing behind.
func FuzzFilterScope(f *testing.F) {
	for _, seed := range [][2]string{
		{"sensors/+/temp", "mqtt/topic/sensors/*:subscribe"},
		{"a/#", "mqtt/topic/a*:subscribe"},
		{"a/#", "mqtt/topic/a/*:subscribe"},
		{"+/x", "mqtt/topic/+*:subscribe"},
		{"#", "mqtt/topic/*:subscribe"},
		{"$share/g/a//#", "mqtt/topic/a/*:*"},
		{"a/#/b", "*"},
	} {
		f.Add(seed[0], seed[1])
	}
	st, err := parseTemplate(DefaultScope)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s, pattern string) {
		flt, err := parseFilter(s)
		if err != nil {
			if flt.topics != "" || flt.values != nil {
				t.Fatalf("parseFilter(%q) failed with a partial result %+v", s, flt)
			}
			return
		}
		for _, topic := range expand(flt.topics) {
			if !flt.matches(topic) {
				t.Fatalf("%q does not match %q, which it expands to", flt.topics, topic)
			}
		}
		m, err := rbac.Compile([]string{pattern})
		if err != nil {
			return
		}
		for _, v := range flt.values {
			scope, err := st.scope(v, ActionSubscribe)
			if err != nil {
				return
			}
			if _, ok := m.Match(scope); !ok {
				return
			}
		}
		for _, topic := range expand(flt.topics) {
			if _, err := nameValue(topic); err != nil {
				continue
			}
			scope, err := st.scope(topic, ActionSubscribe)
			if err != nil {
				continue
			}
			if _, ok := m.Match(scope); !ok {
				t.Fatalf("%q grants filter %q but not its topic %q", pattern, s, topic)
			}
		}
	})
}

// FuzzRequestBody: the JSON and form readers accept only what they can
// give back: a JSON body that parses is valid JSON holding the fields
// read, a form that parses encodes to one that reads the same; a failed
// read returns nothing.
func FuzzRequestBody(f *testing.F) {
	for _, seed := range []string{
		`{"username":"alice","password":"vk_x","clientid":"c1","topic":"a/+","acc":4}`,
		`{"username":"alice","username":"bob"}`,
		`{"acc":2.0,"topic":"a"}`,
		"username=alice&password=vk_x&clientid=c1&topic=a%2F%2B&acc=4",
		"topic=a&topic=b",
		"username=%zz",
	} {
		f.Add([]byte(seed))
	}
	all := with(fUsername, fPassword, fClientID, fTopic, fAcc)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseJSON(body, all)
		switch {
		case err != nil && r != (request{}):
			t.Fatalf("parseJSON failed with a partial result %q", r)
		case err == nil:
			if !json.Valid(body) {
				t.Fatalf("parseJSON accepted invalid JSON %q", body)
			}
			var back map[string]any
			if err := json.Unmarshal(body, &back); err != nil {
				t.Fatal(err)
			}
			for _, fl := range []field{fUsername, fPassword, fClientID, fTopic} {
				if back[fieldNames[fl]] != r[fl] {
					t.Fatalf("%s: read %q, encoding/json reads %q", fieldNames[fl], r[fl], back[fieldNames[fl]])
				}
			}
		}
		r, err = parseForm(body, all)
		switch {
		case err != nil && r != (request{}):
			t.Fatalf("parseForm failed with a partial result %q", r)
		case err == nil:
			vals := url.Values{}
			for fl := range numFields {
				if all.has(fl) {
					vals.Set(fieldNames[fl], r[fl])
				}
			}
			again, err := parseForm([]byte(vals.Encode()), all)
			if err != nil || again != r {
				t.Fatalf("form %q read %q, its encoding %q reads %q (%v)", body, r, vals.Encode(), again, err)
			}
		}
	})
}

// FuzzTemplate: a template that parses renders valid scopes, and topicOf
// inverts render.
func FuzzTemplate(f *testing.F) {
	for _, seed := range []string{DefaultScope, "{action}:{topic}", "t:{topic}/x:{action}", "{topic}{action}", "a/{topic}:{nope}"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		st, err := parseTemplate(tmpl)
		if err != nil {
			if st.pieces != nil {
				t.Fatalf("parseTemplate(%q) failed with a partial result", tmpl)
			}
			return
		}
		for _, topic := range []string{"a", "a/b", "x/*/y", "$SYS/z"} {
			for _, action := range []string{ActionPublish, ActionSubscribe} {
				s := st.render(topic, action)
				if err := rbac.ValidateScope(s); err != nil {
					t.Fatalf("%q renders %q: %v", tmpl, s, err)
				}
				if back, ok := st.topicOf(s, action); !ok || back != topic {
					t.Fatalf("%q: topicOf(%q) = %q, %v, want %q", tmpl, s, back, ok, topic)
				}
			}
		}
	})
}
