package rabbitmq

import (
	"errors"
	"fmt"
	"strings"

	"github.com/verifyd/verifyd/rbac"
)

// The default scope templates.
const (
	DefaultVhostScope    = "rabbitmq/vhost/{vhost}:access"
	DefaultResourceScope = "rabbitmq/vhost/{vhost}/{resource}/{name}:{permission}"
	DefaultTopicScope    = "rabbitmq/vhost/{vhost}/topic/{name}/{routing_key}:{permission}"
)

// MaxHashWords is the largest number of '#' words a binding key may hold
// in a topic read check: each one doubles the scopes checked (see
// [Mapping.TopicScopes]), and a binding key with more is refused.
const MaxHashWords = 4

// field is a placeholder of a scope template.
type field uint8

const (
	literal field = iota
	fieldVhost
	fieldResource
	fieldName
	fieldPermission
	fieldRoutingKey
)

var fieldNames = map[string]field{
	"vhost":       fieldVhost,
	"resource":    fieldResource,
	"name":        fieldName,
	"permission":  fieldPermission,
	"routing_key": fieldRoutingKey,
}

// part is one piece of a compiled template: literal text, or a field.
type part struct {
	text  string
	field field
}

// template is a compiled scope template.
type template []part

// values are the fields of one check, each already in its scope form
// (see appendValue).
type values [fieldRoutingKey + 1]string

// render returns the scope t gives for v, or false when it is not a valid
// scope (an empty segment, too long).
func (t template) render(v *values) (string, bool) {
	var b strings.Builder
	for _, p := range t {
		if p.field == literal {
			b.WriteString(p.text)
		} else {
			b.WriteString(v[p.field])
		}
	}
	s := b.String()
	return s, rbac.ValidateScope(s) == nil
}

// parseTemplate compiles text, a template whose placeholders must be
// among allowed and whose required placeholders must all appear. key
// names the template in errors.
func parseTemplate(key, text string, allowed, required []field) (template, error) {
	if text == "" {
		return nil, fmt.Errorf("rabbitmq.scopes.%s: empty template", key)
	}
	var t template
	var probe values
	for i := range probe {
		probe[i] = "x"
	}
	seen := map[field]bool{}
	rest := text
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		lit := rest
		if open >= 0 {
			lit = rest[:open]
		}
		if strings.ContainsAny(lit, "}*") {
			return nil, fmt.Errorf("rabbitmq.scopes.%s: %q: '}' without '{', or '*' outside a placeholder", key, text)
		}
		if lit != "" {
			t = append(t, part{text: lit})
		}
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("rabbitmq.scopes.%s: %q: '{' without '}'", key, text)
		}
		name := rest[open+1 : open+end]
		f, known := fieldNames[name]
		ok := false
		for _, a := range allowed {
			ok = ok || known && a == f
		}
		if !ok {
			return nil, fmt.Errorf("rabbitmq.scopes.%s: %q: unknown placeholder {%s} (use %s)", key, text, name, fieldList(allowed))
		}
		seen[f] = true
		t = append(t, part{field: f})
		rest = rest[open+end+1:]
	}
	for _, r := range required {
		if !seen[r] {
			return nil, fmt.Errorf("rabbitmq.scopes.%s: %q must hold {%s}", key, text, placeholderName(r))
		}
	}
	if s, ok := t.render(&probe); !ok {
		return nil, fmt.Errorf("rabbitmq.scopes.%s: %q is not a valid scope template: %v", key, text, rbac.ValidateScope(s))
	}
	return t, nil
}

func placeholderName(f field) string {
	for n, g := range fieldNames {
		if g == f {
			return n
		}
	}
	return "?"
}

func fieldList(fs []field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = "{" + placeholderName(f) + "}"
	}
	return strings.Join(names, ", ")
}

// Mapping turns RabbitMQ's questions into scopes, through three
// templates. It is immutable and safe for concurrent use.
//
// A value (vhost, name, routing key) enters a scope with '/' written as
// %2F and '%' as %25, so that a value never reads as more than one: the
// default vhost "/" is %2F, and the queue "a/b" of vhost "v" (scope
// rabbitmq/vhost/v/queue/a%2Fb:read) differs from the queue "b" of vhost
// "v/queue/a". Every other byte must be a scope character other than ':'
// and '*' (letters, digits and -._~!$&'()+,;=@); a value holding any
// other byte (':', '*', '#', a space, a control or non-ASCII byte) maps
// to no scope, and the check is denied. Only the routing key of a topic
// read check may hold '*' and '#', as the wildcards of a binding key
// (see TopicScopes).
type Mapping struct {
	vhost, resource, topic template
}

// NewMapping compiles the templates: vhost may use {vhost}; resource
// {vhost}, {resource}, {name} and {permission}, and must use
// {permission}; topic the same and {routing_key}, and must use
// {permission} and {routing_key}. Each must give a valid scope for plain
// values. Empty templates take the defaults.
func NewMapping(vhost, resource, topic string) (*Mapping, error) {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&vhost, DefaultVhostScope)
	def(&resource, DefaultResourceScope)
	def(&topic, DefaultTopicScope)
	var m Mapping
	var errs []error
	var err error
	if m.vhost, err = parseTemplate("vhost", vhost, []field{fieldVhost}, nil); err != nil {
		errs = append(errs, err)
	}
	resFields := []field{fieldVhost, fieldResource, fieldName, fieldPermission}
	if m.resource, err = parseTemplate("resource", resource, resFields, []field{fieldPermission}); err != nil {
		errs = append(errs, err)
	}
	if m.topic, err = parseTemplate("topic", topic, append(resFields, fieldRoutingKey), []field{fieldPermission, fieldRoutingKey}); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &m, nil
}

// The resource kinds and permissions RabbitMQ asks about.
var (
	resources   = []string{"queue", "exchange", "topic"}
	permissions = []string{"configure", "write", "read"}
)

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// VhostScope returns the scope that grants access to vhost, or false
// when vhost cannot be part of a scope.
func (m *Mapping) VhostScope(vhost string) (string, bool) {
	var v values
	var ok bool
	if v[fieldVhost], ok = scopeValue(vhost, false); !ok || vhost == "" {
		return "", false
	}
	return m.vhost.render(&v)
}

// ResourceScope returns the scope that grants permission (configure,
// write or read) on the resource (queue, exchange or topic) name of
// vhost, or false when a value cannot be part of a scope. The default
// exchange has the empty name.
func (m *Mapping) ResourceScope(vhost, resource, name, permission string) (string, bool) {
	v, ok := resourceValues(vhost, resource, name, permission)
	if !ok {
		return "", false
	}
	return m.resource.render(&v)
}

func resourceValues(vhost, resource, name, permission string) (values, bool) {
	var v values
	if vhost == "" || !oneOf(resource, resources) || !oneOf(permission, permissions) {
		return v, false
	}
	var ok1, ok2 bool
	v[fieldVhost], ok1 = scopeValue(vhost, false)
	v[fieldName], ok2 = scopeValue(name, false)
	v[fieldResource], v[fieldPermission] = resource, permission
	return v, ok1 && ok2
}

// TopicScopes returns the scopes that must all be granted for permission
// on routing key of the topic exchange of vhost, or false when a value
// cannot be part of a scope.
//
// For write and configure the routing key is literal, and it gives one
// scope. For read, RabbitMQ asks about a binding key (queue.bind, an MQTT
// subscription), whose words ('.'-separated) "*" and "#" match one word
// and any number of words. The binding must reach no routing key that is
// not granted, so every '*' and '#' becomes the scope character '*',
// which a granted pattern matches only inside its own wildcard: a pattern
// that matches the scope matches it whatever the wildcard stands for.
// Since "#" also matches zero words ("orders.#" receives "orders"), each
// "#" word is tried both as '*' and dropped with its dot, and every
// resulting scope must be granted: binding "orders.#" needs both
// .../orders.*:read and .../orders:read, which the grant .../orders*:read
// gives at once. A key with more than [MaxHashWords] "#" words is
// refused.
func (m *Mapping) TopicScopes(vhost, exchange, routingKey, permission string) ([]string, bool) {
	v, ok := resourceValues(vhost, "topic", exchange, permission)
	if !ok {
		return nil, false
	}
	keys := []string{routingKey}
	wild := permission == "read"
	if wild {
		if keys, ok = bindingVariants(routingKey); !ok {
			return nil, false
		}
	}
	scopes := make([]string, 0, len(keys))
	for _, k := range keys {
		if v[fieldRoutingKey], ok = scopeValue(k, wild); !ok {
			return nil, false
		}
		s, ok := m.topic.render(&v)
		if !ok {
			return nil, false
		}
		scopes = append(scopes, s)
	}
	return scopes, true
}

// bindingVariants returns key with each subset of its "#" words dropped,
// without duplicates: every routing key the binding key matches is one of
// the variants with each remaining '*' and '#' replaced by some text.
func bindingVariants(key string) ([]string, bool) {
	words := strings.Split(key, ".")
	var hashes []int
	for i, w := range words {
		if w == "#" {
			hashes = append(hashes, i)
		}
	}
	if len(hashes) > MaxHashWords {
		return nil, false
	}
	seen := map[string]bool{}
	var out []string
	kept := make([]string, 0, len(words))
	for mask := 0; mask < 1<<len(hashes); mask++ {
		kept = kept[:0]
		h := 0
		for i, w := range words {
			if h < len(hashes) && hashes[h] == i {
				drop := mask&(1<<h) != 0
				h++
				if drop {
					continue
				}
			}
			kept = append(kept, w)
		}
		if k := strings.Join(kept, "."); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, true
}

// valueChar reports for each byte whether it enters a scope as itself:
// the scope characters other than ':', '*', '/' and '%'.
var valueChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()+,;=@" {
		t[c] = true
	}
	return t
}()

// scopeValue returns v as it enters a scope: '/' as %2F, '%' as %25, and,
// when wild is set, '*' and '#' as '*'. It returns false when v holds any
// other byte that is not a scope character, or ':' or '*'.
func scopeValue(v string, wild bool) (string, bool) {
	clean := true
	for i := 0; i < len(v); i++ {
		if !valueChar[v[i]] {
			clean = false
			break
		}
	}
	if clean {
		return v, true
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case valueChar[c]:
			b.WriteByte(c)
		case c == '/':
			b.WriteString("%2F")
		case c == '%':
			b.WriteString("%25")
		case wild && (c == '*' || c == '#'):
			b.WriteByte('*')
		default:
			return "", false
		}
	}
	return b.String(), true
}
