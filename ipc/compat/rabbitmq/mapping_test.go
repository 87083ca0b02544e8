package rabbitmq

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/rbac"
)

func TestMappingDefaults(t *testing.T) {
	m, err := NewMapping("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		got  func() (string, bool)
		want string // "" when no scope
	}{
		{"default vhost", func() (string, bool) { return m.VhostScope("/") }, "rabbitmq/vhost/%2F:access"},
		{"named vhost", func() (string, bool) { return m.VhostScope("prod") }, "rabbitmq/vhost/prod:access"},
		{"vhost with % and /", func() (string, bool) { return m.VhostScope("a%2Fb/c") }, "rabbitmq/vhost/a%252Fb%2Fc:access"},
		{"empty vhost", func() (string, bool) { return m.VhostScope("") }, ""},
		{"vhost with ':'", func() (string, bool) { return m.VhostScope("a:b") }, ""},
		{"queue", func() (string, bool) { return m.ResourceScope("/", "queue", "q1", "configure") }, "rabbitmq/vhost/%2F/queue/q1:configure"},
		{"queue with '/'", func() (string, bool) { return m.ResourceScope("v", "queue", "a/b", "read") }, "rabbitmq/vhost/v/queue/a%2Fb:read"},
		{"default exchange", func() (string, bool) { return m.ResourceScope("/", "exchange", "", "write") }, "rabbitmq/vhost/%2F/exchange/:write"},
		{"queue with '*'", func() (string, bool) { return m.ResourceScope("/", "queue", "q*", "read") }, ""},
		{"queue with '#'", func() (string, bool) { return m.ResourceScope("/", "queue", "q#", "read") }, ""},
		{"queue with a space", func() (string, bool) { return m.ResourceScope("/", "queue", "q 1", "read") }, ""},
		{"queue with a newline", func() (string, bool) { return m.ResourceScope("/", "queue", "q\n", "read") }, ""},
		{"unknown kind", func() (string, bool) { return m.ResourceScope("/", "stream", "q", "read") }, ""},
		{"unknown permission", func() (string, bool) { return m.ResourceScope("/", "queue", "q", "delete") }, ""},
		{"too long", func() (string, bool) { return m.ResourceScope("/", "queue", strings.Repeat("q", rbac.MaxLen), "read") }, ""},
	} {
		got, ok := tc.got()
		if ok != (tc.want != "") || ok && got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, got, ok, tc.want)
		}
	}
	// Values never read as more than one: no two different checks give
	// the same scope.
	a, _ := m.ResourceScope("v", "queue", "b/queue/c", "read")
	b, _ := m.ResourceScope("v/queue/b", "queue", "c", "read")
	if a == b {
		t.Errorf("vhost v queue b/queue/c and vhost v/queue/b queue c share the scope %q", a)
	}
}

func TestTopicScopes(t *testing.T) {
	m, err := NewMapping("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	const p = "rabbitmq/vhost/%2F/topic/amq.topic/"
	for _, tc := range []struct {
		key, permission string
		want            []string // nil when refused
	}{
		{"orders.created", "write", []string{"orders.created"}},
		{"orders.*", "write", nil},
		{"orders.#", "write", nil},
		{"", "write", []string{""}},
		{"orders.created", "read", []string{"orders.created"}},
		{"orders.*", "read", []string{"orders.*"}},
		{"orders.#", "read", []string{"orders.*", "orders"}},
		{"#", "read", []string{"*", ""}},
		{"#.b", "read", []string{"*.b", "b"}},
		{"a.#.b", "read", []string{"a.*.b", "a.b"}},
		{"#.#", "read", []string{"*.*", "*", ""}},
		{"a#.b*", "read", []string{"a*.b*"}},
		{"a/b.c%", "read", []string{"a%2Fb.c%25"}},
		{"#.#.#.#", "read", []string{"*.*.*.*", "*.*.*", "*.*", "*", ""}},
		{"#.#.#.#.#", "read", nil},
		{"a:b", "read", nil},
		{"a b", "read", nil},
		{"orders.created", "configure", []string{"orders.created"}},
		{"orders.created", "delete", nil},
	} {
		got, ok := m.TopicScopes("/", "amq.topic", tc.key, tc.permission)
		var want []string
		for _, w := range tc.want {
			want = append(want, p+w+":"+tc.permission)
		}
		if ok != (tc.want != nil) || !slices.Equal(got, want) {
			t.Errorf("%q %s: %q %v, want %q", tc.key, tc.permission, got, ok, want)
		}
	}
}

func TestParseTemplate(t *testing.T) {
	for _, tc := range []struct {
		vhost, resource, topic string
		err                    string // "" when valid
	}{
		{"", "", "", ""},
		{"rmq:{vhost}", "rmq:{vhost}:{resource}:{name}:{permission}", "rmq:{vhost}:{name}:{routing_key}:{permission}", ""},
		{"vhosts/{vhost}", "res/{name}:{permission}", "t/{routing_key}:{permission}", ""},
		{"{vhost}:{name}", "", "", "unknown placeholder {name}"},
		{"", "{vhost}/{routing_key}:{permission}", "", "unknown placeholder {routing_key}"},
		{"", "", "{vhost}/{name}/{key}:{permission}", "unknown placeholder {key}"},
		{"", "{vhost}/{name}:read", "", "must hold {permission}"},
		{"", "", "{vhost}/{name}:{permission}", "must hold {routing_key}"},
		{"x/{vhost", "", "", "'{' without '}'"},
		{"x/vhost}", "", "", "'}' without '{'"},
		{"x/*/{vhost}", "", "", "'*' outside a placeholder"},
		{"x {vhost}", "", "", "not a valid scope template"},
		{"x::{vhost}", "", "", "not a valid scope template"},
	} {
		_, err := NewMapping(tc.vhost, tc.resource, tc.topic)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q %q %q: %v", tc.vhost, tc.resource, tc.topic, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q %q %q: error %v, want one with %q", tc.vhost, tc.resource, tc.topic, err, tc.err)
		}
	}
	// Every problem at once.
	_, err := NewMapping("{x}", "{y}", "{z}")
	if err == nil || strings.Count(err.Error(), "unknown placeholder") != 3 {
		t.Errorf("three bad templates: %v", err)
	}
}

// amqpMatch is RabbitMQ's topic matching: words separated by '.', "*"
// matches one word, "#" zero or more.
func amqpMatch(binding, key string) bool {
	var match func(b, k []string) bool
	match = func(b, k []string) bool {
		if len(b) == 0 {
			return len(k) == 0
		}
		switch b[0] {
		case "#":
			for i := 0; i <= len(k); i++ {
				if match(b[1:], k[i:]) {
					return true
				}
			}
			return false
		case "*":
			return len(k) > 0 && match(b[1:], k[1:])
		}
		return len(k) > 0 && b[0] == k[0] && match(b[1:], k[1:])
	}
	return match(strings.Split(binding, "."), strings.Split(key, "."))
}

func TestAMQPMatch(t *testing.T) {
	for _, tc := range []struct {
		binding, key string
		want         bool
	}{
		{"#", "", true}, {"#", "a.b", true}, {"orders.#", "orders", true}, {"orders.#", "orders.a.b", true},
		{"orders.*", "orders", false}, {"orders.*", "orders.a", true}, {"a.#.b", "a.b", true}, {"a.#.b", "a.x.y.b", true},
		{"*", "", true}, {"*", "a.b", false}, {"a*", "ab", false},
	} {
		if got := amqpMatch(tc.binding, tc.key); got != tc.want {
			t.Errorf("amqpMatch(%q, %q) = %v", tc.binding, tc.key, got)
		}
	}
}

// TestBindingKeySound: whenever a pattern grants every scope of a binding
// key, it grants every routing key the binding receives. Random binding
// keys and patterns made of a few words; every routing key of up to six
// characters over a, b and '.' is tried.
func TestBindingKeySound(t *testing.T) {
	m, err := NewMapping("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	keys := routingKeys("ab.", 6)
	rng := rand.New(rand.NewPCG(1, 2))
	words := func(choices ...string) string {
		w := make([]string, 1+rng.IntN(3))
		for i := range w {
			w[i] = choices[rng.IntN(len(choices))]
		}
		return strings.Join(w, ".")
	}
	granted := 0
	for range 5000 {
		binding := words("a", "b", "*", "#", "ab", "a#", "*b")
		// A pattern's routing key part holds at most one '*'.
		lit := words("a", "b", "")
		i := rng.IntN(len(lit) + 1)
		suffix := lit[:i] + "*" + lit[i:]
		if rng.IntN(4) == 0 {
			suffix = lit
		}
		pattern := "rabbitmq/vhost/%2F/topic/x/" + suffix + ":read"
		if rbac.ValidatePattern(pattern) != nil {
			continue
		}
		if !sound(t, m, pattern, binding, keys) {
			return
		}
		scopes, _ := m.TopicScopes("/", "x", binding, "read")
		if len(scopes) > 0 && allMatch(t, pattern, scopes) {
			granted++
		}
	}
	if granted < 100 {
		t.Errorf("only %d random bindings were granted: the test checks too little", granted)
	}
}

// sound reports (and fails t) whether pattern grants every key among keys
// that binding receives, if it grants every scope of binding.
func sound(t *testing.T, m *Mapping, pattern, binding string, keys []string) bool {
	t.Helper()
	scopes, ok := m.TopicScopes("/", "x", binding, "read")
	if !ok || !allMatch(t, pattern, scopes) {
		return true
	}
	for _, k := range keys {
		if !amqpMatch(binding, k) {
			continue
		}
		s, _ := m.TopicScopes("/", "x", k, "write")
		s[0] = strings.TrimSuffix(s[0], ":write") + ":read"
		if !allMatch(t, pattern, s) {
			t.Errorf("pattern %q grants binding %q (scopes %q) but not the key %q it receives", pattern, binding, scopes, k)
			return false
		}
	}
	return true
}

func allMatch(t *testing.T, pattern string, scopes []string) bool {
	t.Helper()
	mt, err := rbac.Compile([]string{pattern})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scopes {
		if _, ok := mt.Match(s); !ok {
			return false
		}
	}
	return true
}

// routingKeys returns every string over alphabet up to n characters.
func routingKeys(alphabet string, n int) []string {
	out := []string{""}
	level := []string{""}
	for range n {
		var next []string
		for _, p := range level {
			for i := 0; i < len(alphabet); i++ {
				next = append(next, p+alphabet[i:i+1])
			}
		}
		out = append(out, next...)
		level = next
	}
	return out
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		scope, s string
		want     bool
	}{
		{"a/*:read", "a/b.c:read", true},
		{"a/*:read", "a/:read", true},
		{"a/*:read", "a/b:write", false},
		{"a/*.x:read", "a/b.c.x:read", true},
		{"a/*.x:read", "a/b.c.y:read", false},
		{"a/*.*:read", "a/b:read", false},
		{"a/*:read", "a/b:c:read", false},
		{"a/b:read", "a/b:read", true},
		{"*", "x", true},
	} {
		if got := globMatch(tc.scope, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v", tc.scope, tc.s, got)
		}
	}
}
