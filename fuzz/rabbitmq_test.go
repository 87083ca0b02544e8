package fuzz

import (
	"context"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/ipc/compat/rabbitmq"
	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// rmqSecret is the imported key of the RabbitMQ fuzz targets: subject
// alice, who may read the queues q* of the default vhost and bind keys
// under a. on amq.topic.
const rmqSecret = "rabbitmq-fuzz-imported-key-0001"

// rmqTagMark in a fuzzed form stands for the binding tag of alice's login.
const rmqTagMark = "{tag}"

// amqpTopicMatch is RabbitMQ's topic matching: words separated by '.',
// "*" matches one word, "#" zero or more.
func amqpTopicMatch(binding, key string) bool {
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

// rmqKeys are the routing keys a binding's reach is checked on: every
// string of up to five characters over a, b and '.'.
var rmqKeys = func() []string {
	out, level := []string{""}, []string{""}
	for range 5 {
		var next []string
		for _, p := range level {
			for _, c := range []string{"a", "b", "."} {
				next = append(next, p+c)
			}
		}
		out, level = append(out, next...), next
	}
	return out
}()

// FuzzRabbitMQTopicScopes checks that a binding key never reaches more
// than a grant allows: whenever a pattern grants every scope TopicScopes
// gives for a read of the binding key, it grants every routing key the
// binding receives. It also checks that every scope given is valid, and
// that a literal check (write) gives one scope, or none for a key with a
// wildcard.
func FuzzRabbitMQTopicScopes(f *testing.F) {
	for _, s := range [][2]string{
		{"orders.#", "orders.*"}, {"#", "*"}, {"a.#.b", "a.*.b"}, {"#.a", "*.a"}, {"a.*", "a*"},
		{"a#.b", "a*"}, {"a/b.c", "a%2F*"}, {"#.#", "*"}, {"*.b", "*.b"}, {"a", "a"},
	} {
		f.Add(s[0], s[1])
	}
	m, err := rabbitmq.NewMapping("", "", "")
	if err != nil {
		f.Fatal(err)
	}
	const prefix = "rabbitmq/vhost/%2F/topic/x/"
	f.Fuzz(func(t *testing.T, binding, grant string) {
		for _, perm := range []string{"write", "configure"} {
			scopes, ok := m.TopicScopes("/", "x", binding, perm)
			if ok && (len(scopes) != 1 || strings.ContainsAny(binding, "*#")) {
				t.Fatalf("%s of %q gives %q", perm, binding, scopes)
			}
		}
		scopes, ok := m.TopicScopes("/", "x", binding, "read")
		if !ok {
			if scopes != nil {
				t.Fatalf("a refused binding %q gives scopes %q", binding, scopes)
			}
			return
		}
		for _, s := range scopes {
			if err := rbac.ValidateScope(s); err != nil {
				t.Fatalf("binding %q gives the invalid scope %q: %v", binding, s, err)
			}
		}
		pattern := prefix + grant + ":read"
		matcher, err := rbac.Compile([]string{pattern})
		if err != nil {
			return
		}
		for _, s := range scopes {
			if _, ok := matcher.Match(s); !ok {
				return
			}
		}
		for _, k := range rmqKeys {
			if !amqpTopicMatch(binding, k) {
				continue
			}
			if _, ok := matcher.Match(prefix + k + ":read"); !ok {
				t.Fatalf("the grant %q allows binding %q (scopes %q), which receives %q, which it does not grant", pattern, binding, scopes, k)
			}
		}
	})
}

// FuzzRabbitMQTemplates checks that the scope templates are accepted only
// when they give valid scopes, and that a refused set gives no mapping.
func FuzzRabbitMQTemplates(f *testing.F) {
	f.Add(rabbitmq.DefaultVhostScope, rabbitmq.DefaultResourceScope, rabbitmq.DefaultTopicScope)
	f.Add("rmq:{vhost}", "rmq:{vhost}:{resource}:{name}:{permission}", "rmq:{vhost}:{name}:{routing_key}:{permission}")
	f.Add("{vhost", "{x}", "t/{name}:{permission}")
	f.Add("a::{vhost}", "*{name}:{permission}", "{routing_key}{permission}")
	f.Fuzz(func(t *testing.T, vhost, resource, topic string) {
		m, err := rabbitmq.NewMapping(vhost, resource, topic)
		if err != nil {
			if m != nil {
				t.Fatalf("NewMapping failed (%v) but returned a mapping", err)
			}
			return
		}
		check := func(what, s string, ok bool) {
			if ok && rbac.ValidateScope(s) != nil {
				t.Fatalf("%s: invalid scope %q from templates %q %q %q", what, s, vhost, resource, topic)
			}
		}
		s, ok := m.VhostScope("v")
		check("vhost", s, ok)
		s, ok = m.ResourceScope("v", "queue", "q", "read")
		check("resource", s, ok)
		scopes, ok := m.TopicScopes("v", "x", "a.#", "read")
		for _, s := range scopes {
			check("topic", s, ok)
		}
	})
}

// FuzzRabbitMQRequest sends fuzzed requests to the adapter over a real
// verifier: every answer is 200, text/plain, and exactly allow, deny or
// allow <tags>; a login is allowed only with alice's key, and a check only
// with her binding tag and within her grants.
func FuzzRabbitMQRequest(f *testing.F) {
	f.Add(false, "user", "username=alice&password="+rmqSecret)
	f.Add(true, "user", "username=alice&password="+rmqSecret)
	f.Add(false, "user", "username=bob&password="+rmqSecret)
	f.Add(false, "vhost", "username=alice&vhost=%2F&ip=127.0.0.1&tags=management+"+rmqTagMark)
	f.Add(false, "resource", "username=alice&vhost=%2F&resource=queue&name=q1&permission=read&tags="+rmqTagMark)
	f.Add(false, "resource", "username=alice&vhost=%2F&resource=queue&name=q1&name=q2&permission=read&tags="+rmqTagMark)
	f.Add(true, "topic", "username=alice&vhost=%2F&resource=topic&name=amq.topic&permission=read&routing_key=a.%23&tags="+rmqTagMark)
	f.Add(false, "topic", "username=alice&vhost=%2F&resource=topic&name=amq.topic&permission=read&routing_key=a.*&tags="+rmqTagMark)
	f.Add(false, "other", "")

	store, err := keystore.Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	ck, _ := credential.NewChecksumKey()
	minter, err := credential.NewMinter(ck)
	if err != nil {
		f.Fatal(err)
	}
	v, err := verify.New(store, minter, nil)
	if err != nil {
		f.Fatal(err)
	}
	m := verify.NewManager(store, minter, keystore.Sum("fuzz-admin-key-0123456789"), nil)
	if _, err := m.ImportKey(context.Background(), verify.KeySpec{Subject: "alice", Secret: rmqSecret, Roles: []string{"ops"}, Scopes: []string{
		"rabbitmq/vhost/%2F/queue/q*:read", "rabbitmq/vhost/%2F/topic/amq.topic/a.*:read",
	}}); err != nil {
		f.Fatal(err)
	}
	a, err := rabbitmq.New(rabbitmq.Config{Tags: map[string][]string{"ops": {"management"}}}, v, nil)
	if err != nil {
		f.Fatal(err)
	}
	send := func(get bool, path, form string) (*fasthttp.RequestCtx, string) {
		var ctx fasthttp.RequestCtx
		if get {
			ctx.Request.Header.SetMethod(fasthttp.MethodGet)
			ctx.Request.SetRequestURI(rabbitmq.Prefix + path + "?" + form)
		} else {
			ctx.Request.Header.SetMethod(fasthttp.MethodPost)
			ctx.Request.SetRequestURI(rabbitmq.Prefix + path)
			ctx.Request.Header.SetContentType("application/x-www-form-urlencoded")
			ctx.Request.SetBodyString(form)
		}
		a.Handler(&ctx)
		return &ctx, string(ctx.Response.Body())
	}
	_, login := send(false, "user", "username=alice&password="+rmqSecret)
	tags := strings.Fields(login)
	if len(tags) != 3 || tags[0] != "allow" || tags[1] != "management" {
		f.Fatalf("alice's login: %q", login)
	}
	tag := tags[2]

	f.Fuzz(func(t *testing.T, get bool, path, form string) {
		form = strings.ReplaceAll(form, rmqTagMark, tag)
		ctx, body := send(get, path, form)
		if ctx.Response.StatusCode() != 200 || string(ctx.Response.Header.ContentType()) != "text/plain" {
			t.Fatalf("status %d, Content-Type %q", ctx.Response.StatusCode(), ctx.Response.Header.ContentType())
		}
		if body == "deny" {
			return
		}
		if body != "allow" && !strings.HasPrefix(body, "allow ") || strings.ContainsAny(body, "\r\n") {
			t.Fatalf("body %q", body)
		}
		var args fasthttp.Args
		args.Parse(form)
		field := func(k string) string { return string(args.Peek(k)) }
		if path == "user" {
			if field("username") != "alice" || field("password") != rmqSecret {
				t.Fatalf("login allowed for %q", form)
			}
			return
		}
		if !strings.Contains(field("tags"), tag) || field("username") != "alice" || field("vhost") != "/" {
			t.Fatalf("%s allowed without alice's binding: %q", path, form)
		}
		switch path {
		case "resource":
			if field("resource") != "queue" || field("permission") != "read" || !strings.HasPrefix(field("name"), "q") {
				t.Fatalf("resource allowed beyond the grant: %q", form)
			}
		case "topic":
			key := field("routing_key")
			if field("name") != "amq.topic" || field("permission") != "read" {
				t.Fatalf("topic allowed beyond the grant: %q", form)
			}
			for _, k := range rmqKeys {
				if amqpTopicMatch(key, k) && !strings.HasPrefix(k, "a.") {
					t.Fatalf("binding %q allowed, which receives %q: %q", key, k, form)
				}
			}
		default:
			t.Fatalf("%s allowed, but alice may access no vhost: %q", path, form)
		}
	})
}
