package mqtt

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// mqttMatch is the MQTT 3.1.1 §4.7 reference: whether filter matches the
// topic name topic ('+' one level, '#' the rest, its parent level
// included). The rule that a leading wildcard does not match a '$' topic
// is left out: it only narrows what a filter receives.
func mqttMatch(filter, topic string) bool {
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) || f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}

func TestMQTTMatch(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true}, {"a/+", "a/b", true}, {"a/+", "a", false}, {"a/+", "a/b/c", false},
		{"a/#", "a", true}, {"a/#", "a/", true}, {"a/#", "a/b/c", true}, {"a/#", "ab", false},
		{"#", "x/y", true}, {"+/+", "/", true}, {"+", "", true}, {"a//b", "a//b", true}, {"+/b", "a/c", false},
	} {
		if got := mqttMatch(tc.filter, tc.topic); got != tc.want {
			t.Errorf("mqttMatch(%q, %q) = %v", tc.filter, tc.topic, got)
		}
	}
}

// topicsUpTo lists every string over alphabet of length 1 to n.
func topicsUpTo(alphabet string, n int) []string {
	out := []string{""}
	var all []string
	for range n {
		var next []string
		for _, p := range out {
			for i := range len(alphabet) {
				next = append(next, p+alphabet[i:i+1])
			}
		}
		all = append(all, next...)
		out = next
	}
	return all
}

// TestFilterSoundness is the property that makes wildcard subscriptions
// safe: under random policies (role patterns, some holding a literal '+',
// acl_exempt or not, and ACLs on concrete topics), whenever the adapter
// allows a subscription to a filter, it allows the delivery of every
// topic the filter matches, decided on the topic alone, ACLs included.
// With one pattern in the role, that is the same grant.
func TestFilterSoundness(t *testing.T) {
	e := newEnv(t, Config{})
	_, k := e.key("alice", nil)
	e.login("alice", "c1", k)
	topics := topicsUpTo("ab/", 4)
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(s string) string { i := rng.IntN(len(s)); return s[i : i+1] }
	word := func(alphabet string, max int) string {
		var b strings.Builder
		for range rng.IntN(max + 1) {
			b.WriteString(pick(alphabet))
		}
		return b.String()
	}
	pattern := func() string {
		body := word("ab/+", 4)
		if rng.IntN(3) > 0 { // one '*' somewhere
			i := rng.IntN(len(body) + 1)
			body = body[:i] + "*" + body[i:]
		}
		if body == "" {
			body = "a"
		}
		if rng.IntN(20) == 0 {
			return "*"
		}
		return "mqtt/topic/" + body + ":" + []string{"subscribe", "subscribe", "*", "publish"}[rng.IntN(4)]
	}
	filter := func() string {
		if rng.IntN(2) == 0 {
			return word("ab/+#", 5)
		}
		levels := make([]string, 1+rng.IntN(3))
		for i := range levels {
			levels[i] = []string{"a", "b", "", "+", "ab", "+"}[rng.IntN(6)]
		}
		if rng.IntN(2) == 0 {
			levels = append(levels, "#")
		}
		return strings.Join(levels, "/")
	}
	var allowedWild, deniedWithAllowedTopic int
	for it := range 200 {
		var pol strings.Builder
		pol.WriteString("mode: rbac\nroles:\n  r:\n    scopes:\n")
		patterns := 1 + rng.IntN(3)
		for range patterns {
			fmt.Fprintf(&pol, "      - %q\n", pattern())
		}
		fmt.Fprintf(&pol, "    acl_exempt: %v\nsubjects:\n  alice: {roles: [r]}\n", rng.IntN(4) == 0)
		if n := rng.IntN(3); n > 0 {
			pol.WriteString("acls:\n")
			seen := map[string]bool{}
			for range n {
				topic, who := topics[rng.IntN(len(topics))], []string{"alice", "bob"}[rng.IntN(2)]
				if !seen[topic] {
					seen[topic] = true
					fmt.Fprintf(&pol, "  %q: {subscribe: [%s]}\n", "mqtt/topic/"+topic, who)
				}
			}
		}
		e.policy(pol.String())
		for range 20 {
			f := filter()
			d := e.a.authorize("alice", "c1", f, accSubscribe)
			anyAllowed := false
			for _, topic := range topics {
				if !mqttMatch(f, topic) {
					continue
				}
				td := e.a.authorize("alice", "c1", topic, accRead)
				anyAllowed = anyAllowed || td.outcome == allowed
				if d.outcome == allowed && td.outcome != allowed {
					t.Fatalf("iteration %d: filter %q is allowed, topic %q it matches is not (%s, %s); policy:\n%s",
						it, f, topic, outcomeNames[td.outcome], td.reason, pol.String())
				}
			}
			if d.outcome == allowed && strings.ContainsAny(f, "+#") {
				allowedWild++
			}
			if d.outcome != allowed && anyAllowed {
				deniedWithAllowedTopic++
			}
		}
	}
	// The property would hold trivially if nothing were allowed.
	if allowedWild < 100 {
		t.Errorf("only %d wildcard filters allowed: the property was barely exercised", allowedWild)
	}
	t.Logf("%d wildcard filters allowed; %d filters denied although a topic they match is allowed", allowedWild, deniedWithAllowedTopic)
}

// TestFilterExamples: the examples of the documentation.
func TestFilterExamples(t *testing.T) {
	e := newEnv(t, Config{})
	for _, tc := range []struct {
		grant, filter string
		want          outcome
	}{
		{"mqtt/topic/a/*:subscribe", "a/+/c", allowed},
		{"mqtt/topic/a/*:subscribe", "a/+", allowed},
		{"mqtt/topic/a/*:subscribe", "a/#", denied}, // a/# also receives a
		{"mqtt/topic/a*:subscribe", "a/#", allowed},
		{"mqtt/topic/a/b:subscribe", "a/+", denied},
		{"mqtt/topic/+*:subscribe", "+/x", denied},
		{"mqtt/topic/+:subscribe", "+", denied},
		{"mqtt/topic/*:subscribe", "#", allowed},
		{"mqtt/topic/*:publish", "#", denied},
	} {
		_, k := e.key("alice", []string{tc.grant})
		e.login("alice", "c1", k)
		e.want("alice", "c1", tc.filter, accSubscribe, tc.want, "")
	}
}
