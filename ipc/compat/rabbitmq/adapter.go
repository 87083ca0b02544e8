package rabbitmq

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// Prefix is the path under which the adapter serves RabbitMQ's four
// endpoints: Prefix + "user", "vhost", "resource" and "topic".
const Prefix = "/v1/compat/rabbitmq/"

// Route is the route label of the adapter's requests in the HTTP metrics.
const Route = "rabbitmq"

// Limits on the fields of a request, in bytes. Longer fields are denied.
const (
	maxTokenBytes = 65536 // the password: an API key or a JWT
	maxNameBytes  = 1024  // username, vhost, name, routing key: no scope is longer
	maxTagsBytes  = 4096  // the space-separated tags RabbitMQ sends back
)

// bindingTagPrefix starts the tag that names a login's binding.
const bindingTagPrefix = "verifyd-"

// Verifier decides: *verify.Verifier implements it.
type Verifier interface {
	// Verify checks token and, when scope is not empty, whether it grants
	// scope.
	Verify(token, scope string) verify.Result
	// Policy returns the authorization policy in force, whose ACLs the
	// wildcards of a binding key must not get around.
	Policy() *rbac.Policy
}

var _ Verifier = (*verify.Verifier)(nil)

// Options configures an Adapter. The zero value is usable.
type Options struct {
	// Registerer receives the adapter's metrics. nil means none.
	Registerer prometheus.Registerer
	// Logger receives the denials, at debug level. nil means
	// slog.Default().
	Logger *slog.Logger
	// Now returns the current time. The default is time.Now.
	Now func() time.Time
}

// Adapter answers RabbitMQ's HTTP auth backend (rabbitmq_auth_backend_http)
// for AMQP 0-9-1, MQTT and every other protocol RabbitMQ authorizes
// through it. It is safe for concurrent use.
type Adapter struct {
	v             Verifier
	mapping       *Mapping
	matchUsername bool
	tags          map[string][]string // role -> tags
	ttl           time.Duration
	bindings      *bindings
	tagKey        []byte // HMAC key of the binding tags, new on every start
	now           func() time.Time
	log           *slog.Logger
	counts        *[numEndpoints][numOutcomes]prometheus.Counter // nil without a registerer
}

// New returns an Adapter that decides with v as cfg says.
func New(cfg Config, v Verifier, opts *Options) (*Adapter, error) {
	if v == nil {
		return nil, fmt.Errorf("rabbitmq: a verifier is required")
	}
	cfg.EnsureDefaults()
	m, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Adapter{
		v: v, mapping: m, matchUsername: cfg.Username == UsernameMatch,
		tags: cfg.Tags, ttl: cfg.BindingTTL, bindings: newBindings(cfg.MaxBindings),
		tagKey: make([]byte, 32), now: o.Now, log: o.Logger,
	}
	if _, err := rand.Read(a.tagKey); err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	if o.Registerer != nil {
		if err := a.register(o.Registerer); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// The endpoints, as metric labels.
type endpoint uint8

const (
	epUser endpoint = iota
	epVhost
	epResource
	epTopic
	epOther // an unknown path
	numEndpoints
)

var endpointNames = [numEndpoints]string{"user", "vhost", "resource", "topic", "other"}

// The outcomes of a request, as metric labels.
type outcome uint8

const (
	allow       outcome = iota
	deny                // the credential is not valid, or does not grant the scope
	badRequest          // a field is missing, repeated, too long or unknown; a wrong method or path
	unmappable          // a value cannot be part of a scope
	noBinding           // no login is known for the check (verifyd restarted, or it was forgotten)
	unavailable         // the store could not be read
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"allow", "deny", "bad_request", "unmappable", "no_binding", "unavailable"}

func (a *Adapter) register(reg prometheus.Registerer) error {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "verifyd",
		Subsystem: "rabbitmq",
		Name:      "requests_total",
		Help:      "RabbitMQ auth backend requests by endpoint and outcome.",
	}, []string{"endpoint", "outcome"})
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "verifyd",
		Subsystem: "rabbitmq",
		Name:      "bindings",
		Help:      "Logins remembered for the checks of their connections.",
	}, func() float64 { return float64(a.bindings.len()) })
	for _, c := range []prometheus.Collector{vec, size} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("rabbitmq: %w", err)
		}
	}
	a.counts = new([numEndpoints][numOutcomes]prometheus.Counter)
	for e := range a.counts {
		for o := range a.counts[e] {
			a.counts[e][o] = vec.WithLabelValues(endpointNames[e], outcomeNames[o])
		}
	}
	return nil
}

// request holds the fields of one request.
type request struct {
	username, password, vhost, resource, name, permission, routingKey, tags string
	present                                                                 uint16 // bits of the fields present
}

// The fields, as bits of request.present.
const (
	hasUsername uint16 = 1 << iota
	hasPassword
	hasVhost
	hasResource
	hasName
	hasPermission
	hasRoutingKey
	hasTags
)

// required lists the fields each endpoint needs.
var required = [numEndpoints]uint16{
	epUser:     hasUsername | hasPassword,
	epVhost:    hasUsername | hasVhost,
	epResource: hasUsername | hasVhost | hasResource | hasName | hasPermission,
	epTopic:    hasUsername | hasVhost | hasResource | hasName | hasPermission | hasRoutingKey,
}

// readRequest reads the fields of args. Unknown fields (ip, client_id,
// variable_map.*) are ignored; a known field that appears twice or is
// too long makes the request bad, as does a missing required one.
func readRequest(args *fasthttp.Args, ep endpoint) (request, string) {
	var r request
	problem := ""
	for k, v := range args.All() {
		var dst *string
		var bit uint16
		limit := maxNameBytes
		switch string(k) {
		case "username":
			dst, bit = &r.username, hasUsername
		case "password":
			dst, bit, limit = &r.password, hasPassword, maxTokenBytes
		case "vhost":
			dst, bit = &r.vhost, hasVhost
		case "resource":
			dst, bit = &r.resource, hasResource
		case "name":
			dst, bit = &r.name, hasName
		case "permission":
			dst, bit = &r.permission, hasPermission
		case "routing_key":
			dst, bit = &r.routingKey, hasRoutingKey
		case "tags":
			dst, bit, limit = &r.tags, hasTags, maxTagsBytes
		default:
			continue
		}
		switch {
		case r.present&bit != 0:
			problem = "field " + string(k) + " is repeated"
		case len(v) > limit:
			problem = fmt.Sprintf("field %s is longer than %d bytes", k, limit)
		}
		if problem != "" {
			return r, problem
		}
		r.present |= bit
		*dst = string(v)
	}
	if missing := required[ep] &^ r.present; missing != 0 {
		return r, "missing fields: " + requestFields(missing)
	}
	if r.username == "" || ep == epUser && r.password == "" {
		return r, "the username or the password is empty"
	}
	return r, ""
}

// requestFields names the fields whose bits are set.
func requestFields(bits uint16) string {
	names := []string{"username", "password", "vhost", "resource", "name", "permission", "routing_key", "tags"}
	var out []string
	for i, n := range names {
		if bits&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, " ")
}

// decision is the answer to one request.
type decision struct {
	outcome outcome
	body    string // the reply: "allow", "allow <tags>" or "deny"
	why     string // for the debug log
	scope   string // the scope denied, if any
}

func denied(o outcome, why string) decision { return decision{outcome: o, body: "deny", why: why} }

// Handler serves RabbitMQ's requests under [Prefix], with the method
// auth_http.http_method sets: GET (fields in the query string) or POST
// (a form body). Every answer is 200 with the text/plain body "allow",
// "allow <tags>" (user endpoint) or "deny", without a newline; a bad
// request is denied like any other, and counted and logged (debug) as
// such.
func (a *Adapter) Handler(ctx *fasthttp.RequestCtx) {
	ep := endpointOf(ctx.Path())
	var d decision
	switch {
	case ep == epOther:
		d = denied(badRequest, "unknown path "+string(ctx.Path()))
	case ctx.IsGet():
		d = a.decide(ep, ctx.QueryArgs())
	case ctx.IsPost():
		d = a.decide(ep, ctx.PostArgs())
	default:
		d = denied(badRequest, "method "+string(ctx.Method())+" is not GET or POST")
	}
	if a.counts != nil {
		a.counts[ep][d.outcome].Inc()
	}
	if d.outcome != allow {
		a.log.Debug("rabbitmq: denied", "endpoint", endpointNames[ep], "outcome", outcomeNames[d.outcome], "reason", d.why, "scope", d.scope)
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("text/plain")
	ctx.SetBodyString(d.body)
}

// endpointOf returns the endpoint of a request path.
func endpointOf(path []byte) endpoint {
	if len(path) < len(Prefix) || string(path[:len(Prefix)]) != Prefix {
		return epOther
	}
	switch string(path[len(Prefix):]) {
	case "user":
		return epUser
	case "vhost":
		return epVhost
	case "resource":
		return epResource
	case "topic":
		return epTopic
	}
	return epOther
}

// decide answers the request of endpoint ep whose fields are args.
func (a *Adapter) decide(ep endpoint, args *fasthttp.Args) decision {
	r, problem := readRequest(args, ep)
	if problem != "" {
		return denied(badRequest, problem)
	}
	if ep == epUser {
		return a.login(r)
	}
	tag := bindingTag(r.tags)
	if tag == "" {
		return denied(noBinding, "the tags name no login of this verifyd (user "+r.username+")")
	}
	username, token, ok := a.bindings.get(tag, a.now())
	if !ok || username != r.username {
		return denied(noBinding, "no login of user "+r.username+" is remembered (verifyd restarted, or the binding expired or was evicted): the client must reconnect")
	}
	var scopes []string
	switch ep {
	case epVhost:
		scopes, ok = one(a.mapping.VhostScope(r.vhost))
	case epResource:
		scopes, ok = one(a.mapping.ResourceScope(r.vhost, r.resource, r.name, r.permission))
	case epTopic:
		if r.resource != "topic" {
			return denied(badRequest, "resource "+r.resource+" on the topic endpoint")
		}
		scopes, ok = a.mapping.TopicScopes(r.vhost, r.name, r.routingKey, r.permission)
	}
	if !ok {
		return denied(unmappable, "a value cannot be part of a scope (resource, permission, or a vhost, name or routing key holding ':', '*', '#', a space, a control or non-ASCII byte)")
	}
	for _, s := range scopes {
		pr, d, ok := a.check(tag, username, token, s)
		if !ok {
			return d
		}
		// A wildcard binding key stands for many routing keys: an ACL on
		// any of them must admit the credential too.
		if ep == epTopic && strings.IndexByte(s, rbac.Wildcard) >= 0 &&
			!a.v.Policy().ACLsAdmit(pr, func(acl string) bool { return globMatch(s, acl) }) {
			return decision{outcome: deny, body: "deny", why: "the binding key reaches a routing key whose ACL denies", scope: s}
		}
	}
	return decision{outcome: allow, body: "allow"}
}

// one returns scope as a list of one, when ok.
func one(scope string, ok bool) ([]string, bool) {
	return []string{scope}, ok
}

// check decides scope for the credential token remembered under tag for
// username, forgetting the binding when the credential can never be
// valid again.
func (a *Adapter) check(tag, username, token, scope string) (*rbac.Principal, decision, bool) {
	res := a.v.Verify(token, scope)
	switch res.Reason {
	case verify.OK:
		if a.matchUsername && res.Principal.Subject != username {
			return nil, decision{outcome: deny, body: "deny", why: "the username is not the credential's subject", scope: scope}, false
		}
		return res.Principal, decision{}, true
	case verify.Unavailable:
		return nil, decision{outcome: unavailable, body: "deny", why: res.Reason.String(), scope: scope}, false
	case verify.Revoked, verify.Expired, verify.Unknown, verify.Malformed:
		a.bindings.drop(tag)
	}
	return nil, decision{outcome: deny, body: "deny", why: res.Reason.String(), scope: scope}, false
}

// login answers the user endpoint: a valid credential whose subject is
// the username (unless usernames are ignored) logs in, with the tags of
// its roles and the tag of its binding.
func (a *Adapter) login(r request) decision {
	res := a.v.Verify(r.password, "")
	switch {
	case res.Reason == verify.Unavailable:
		return denied(unavailable, res.Reason.String())
	case !res.Allowed():
		return denied(deny, res.Reason.String())
	case a.matchUsername && res.Principal.Subject != r.username:
		return denied(deny, "the username "+r.username+" is not the credential's subject")
	}
	now := a.now()
	expires := now.Add(a.ttl)
	if !res.ExpiresAt.IsZero() && res.ExpiresAt.Before(expires) {
		expires = res.ExpiresAt
	}
	tag := a.newBindingTag(r.username, r.password)
	a.bindings.put(tag, r.username, r.password, expires)
	var b strings.Builder
	b.WriteString("allow")
	seen := map[string]bool{}
	for _, role := range res.Principal.Roles {
		for _, t := range a.tags[role] {
			if !seen[t] {
				seen[t] = true
				b.WriteString(" ")
				b.WriteString(t)
			}
		}
	}
	b.WriteString(" ")
	b.WriteString(tag)
	return decision{outcome: allow, body: b.String()}
}

// newBindingTag returns the tag that names the binding of a login with
// username and token: bindingTagPrefix and 32 hex digits of an HMAC
// under a key made at start, so that the tag says nothing about the
// token, and a tag from before a restart names nothing.
func (a *Adapter) newBindingTag(username, token string) string {
	m := hmac.New(sha256.New, a.tagKey)
	m.Write([]byte(username))
	m.Write([]byte{0})
	m.Write([]byte(token))
	return bindingTagPrefix + hex.EncodeToString(m.Sum(nil)[:16])
}

// bindingTag returns the binding tag among tags (RabbitMQ sends a login's
// tags back, space-separated, with every later check), or "" when there
// is none or more than one.
func bindingTag(tags string) string {
	found := ""
	for _, t := range strings.Fields(tags) {
		if strings.HasPrefix(t, bindingTagPrefix) {
			if found != "" {
				return ""
			}
			found = t
		}
	}
	return found
}
