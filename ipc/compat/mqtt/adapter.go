package mqtt

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/ipc/httpapi"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// The path prefixes of the two contracts, and their route labels in the
// HTTP metrics.
const (
	GoAuthPrefix = "/v1/compat/mqtt/"
	EMQXPrefix   = "/v1/compat/emqx/"
	GoAuthRoute  = "mqtt"
	EMQXRoute    = "emqx"
)

// Verifier answers verification questions and names the policy in force.
// *verify.Verifier implements it.
type Verifier interface {
	Verify(token, scope string) verify.Result
	Policy() *rbac.Policy
}

var _ Verifier = (*verify.Verifier)(nil)

// Options are the Adapter's collaborators.
type Options struct {
	// Verifier decides. Required.
	Verifier Verifier
	// Registerer receives the adapter's metrics. nil means no metrics.
	Registerer prometheus.Registerer
	// Logger receives denials (at debug) and operational faults. nil
	// means slog.Default().
	Logger *slog.Logger
}

// An Adapter serves the mosquitto-go-auth and EMQX contracts. It is safe
// for concurrent use.
type Adapter struct {
	cfg     Config
	tmpl    scopeTemplate
	v       Verifier
	binds   *bindings
	log     *slog.Logger
	metrics [numEndpoints][numOutcomes]prometheus.Counter
}

// New returns an Adapter for cfg, which it completes with its defaults
// and checks.
func New(cfg Config, opts Options) (*Adapter, error) {
	if opts.Verifier == nil {
		return nil, errors.New("mqtt: a verifier is required")
	}
	cfg.EnsureDefaults()
	tmpl, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &Adapter{cfg: cfg, tmpl: tmpl, v: opts.Verifier, binds: newBindings(cfg.MaxBindings), log: log}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "verifyd_mqtt_requests_total",
		Help: "Requests of the MQTT adapters (mosquitto-go-auth, EMQX) by endpoint and outcome.",
	}, []string{"endpoint", "outcome"})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(requests); err != nil {
			return nil, err
		}
	}
	for e := range numEndpoints {
		for o := range numOutcomes {
			a.metrics[e][o] = requests.WithLabelValues(endpointNames[e], outcomeNames[o])
		}
	}
	return a, nil
}

// Adapters returns the two contracts, to mount in the HTTP server.
func (a *Adapter) Adapters() []httpapi.Adapter {
	return []httpapi.Adapter{
		{Prefix: GoAuthPrefix, Route: GoAuthRoute, Handler: a.serveGoAuth},
		{Prefix: EMQXPrefix, Route: EMQXRoute, Handler: a.serveEMQX},
	}
}

// endpoint is a metrics label.
type endpoint uint8

const (
	epUser endpoint = iota
	epSuperuser
	epACL
	epAuthn
	epAuthz
	epOther // an unknown path
	numEndpoints
)

var endpointNames = [numEndpoints]string{"user", "superuser", "acl", "emqx_authn", "emqx_authz", "other"}

// outcome is what a request got; a metrics label.
type outcome uint8

const (
	allowed     outcome = iota
	denied              // the credential is not valid, or does not grant the topic
	noBinding           // an ACL check for a client not authenticated here
	invalid             // a malformed request or a topic no scope can name
	unavailable         // the store could not be read
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"allow", "deny", "no_binding", "invalid", "unavailable"}

// decision is the answer to one request.
type decision struct {
	outcome   outcome
	reason    string // a short snake_case reason, safe to show the broker
	superuser bool   // for an authentication: the credential is a superuser's
}

var (
	allow             = decision{outcome: allowed, reason: "ok"}
	denyNoBinding     = decision{outcome: noBinding, reason: "no_binding"}
	denyBadRequest    = decision{outcome: invalid, reason: "bad_request"}
	denyInvalidTopic  = decision{outcome: invalid, reason: "invalid_topic"} // not valid MQTT
	denyInvalidScope  = decision{outcome: invalid, reason: "invalid_scope"} // valid MQTT, but no scope can name it
	denyNotSuperuser  = decision{outcome: denied, reason: "not_superuser"}
	denyUsername      = decision{outcome: denied, reason: "username_mismatch"}
	denyPolicyChanged = decision{outcome: denied, reason: "policy_changed"}
	denyUnavailable   = decision{outcome: unavailable, reason: "unavailable"}
)

// fromResult turns a verification into a decision.
func fromResult(r verify.Result) decision {
	switch {
	case r.Allowed():
		return allow
	case r.Reason == verify.Unavailable:
		return denyUnavailable
	case r.Reason == verify.Forbidden:
		return decision{outcome: denied, reason: r.Decision.Reason.String()}
	}
	return decision{outcome: denied, reason: r.Reason.String()}
}

// topicRefused is the decision for a topic refused with err.
func topicRefused(err error) decision {
	if isScopeError(err) {
		return denyInvalidScope
	}
	return denyInvalidTopic
}

// access is an ACL check's acc: what the client does with the topic.
type access uint8

// The acc values of mosquitto (mosquitto_plugin.h MOSQ_ACL_*).
const (
	accRead        access = 1 // a message on the topic is delivered to the client
	accWrite       access = 2 // the client publishes to the topic
	accSubscribe   access = 4 // the client subscribes to the topic filter
	accUnsubscribe access = 8 // the client unsubscribes from the topic filter
)

// authenticate answers a CONNECT: the password must be a valid credential
// and, with username: match, belong to the username. The client is then
// bound to the credential for its ACL checks. withSuperuser also decides
// whether the credential is a superuser's.
func (a *Adapter) authenticate(username, password, clientID string, withSuperuser bool) decision {
	res := a.v.Verify(password, "")
	if !res.Allowed() {
		return fromResult(res)
	}
	if a.cfg.Username == UsernameMatch && res.Principal.Subject != username {
		return denyUsername
	}
	if a.binds.put(username, clientID, password) {
		a.log.Warn("mqtt: the table of authenticated clients is full: the least recently used are forgotten (their ACL checks are denied until they connect again), and /superuser answers no from now on; raise mqtt.max_bindings",
			"max_bindings", a.cfg.MaxBindings)
	}
	d := allow
	if withSuperuser {
		d.superuser = a.isSuperuser(password, res)
	}
	return d
}

// isSuperuser reports whether the valid credential token, verified as res,
// is a superuser's.
func (a *Adapter) isSuperuser(token string, res verify.Result) bool {
	if a.cfg.SuperuserRole != "" && slices.Contains(res.Principal.Roles, a.cfg.SuperuserRole) {
		return true
	}
	return a.cfg.SuperuserScope != "" && a.v.Verify(token, a.cfg.SuperuserScope).Allowed()
}

// superuserOf answers mosquitto-go-auth's superuser check, which names only
// a username: yes when the username's one client holds a valid superuser
// credential (see bindings.only).
func (a *Adapter) superuserOf(username string) decision {
	if a.cfg.SuperuserRole == "" && a.cfg.SuperuserScope == "" {
		return denyNotSuperuser
	}
	token, ok := a.binds.only(username)
	if !ok {
		return denyNotSuperuser
	}
	res := a.v.Verify(token, "")
	if !res.Allowed() {
		return fromResult(res)
	}
	if !a.isSuperuser(token, res) {
		return denyNotSuperuser
	}
	return allow
}

// authorize answers an ACL check of a client: its bound credential is
// verified again (so that a revocation applies at once) for the scope of
// the topic and access. A superuser's credential is allowed every valid
// topic, those no scope can name included.
func (a *Adapter) authorize(username, clientID, topic string, acc access) decision {
	token, ok := a.binds.get(username, clientID)
	if !ok {
		return denyNoBinding
	}
	d := a.check(token, topic, acc)
	if d.outcome == allowed || d.outcome == unavailable || d == denyInvalidTopic || d == denyBadRequest ||
		a.cfg.SuperuserRole == "" && a.cfg.SuperuserScope == "" {
		return d
	}
	if res := a.v.Verify(token, ""); res.Allowed() && a.isSuperuser(token, res) {
		return allow
	}
	return d
}

// check decides whether the credential token may access topic.
//
// The scope action is publish for a publication (acc 2) and subscribe for
// a subscription (acc 4, a topic filter) and for the delivery of a message
// to a subscriber (acc 1, a topic name): the grant that lets a client
// subscribe to a filter lets it receive every message the filter matches.
// An unsubscription (acc 8) only needs a valid credential.
func (a *Adapter) check(token, topic string, acc access) decision {
	switch acc {
	case accRead, accWrite:
		action := ActionSubscribe
		if acc == accWrite {
			action = ActionPublish
		}
		v, err := nameValue(topic)
		if err != nil {
			return topicRefused(err)
		}
		scope, err := a.tmpl.scope(v, action)
		if err != nil {
			return topicRefused(err)
		}
		return fromResult(a.v.Verify(token, scope))
	case accSubscribe:
		f, err := parseFilter(topic)
		if err != nil {
			return topicRefused(err)
		}
		return a.subscribe(token, f)
	case accUnsubscribe:
		return fromResult(a.v.Verify(token, ""))
	}
	return denyBadRequest
}

// subscribe decides a subscription to f: every scope value of f must be
// granted and, for a wildcard filter, every ACL on the scope of a topic f
// matches must admit the credential (rbac.Policy.ACLsAdmit), so that the
// filter is allowed only if each topic it matches would be. The grant and
// the ACLs are decided under one policy: if it changed meanwhile, both are
// asked again, a few times at most.
func (a *Adapter) subscribe(token string, f filter) decision {
	scopes := make([]string, len(f.values))
	for i, v := range f.values {
		s, err := a.tmpl.scope(v, ActionSubscribe)
		if err != nil {
			return topicRefused(err)
		}
		scopes[i] = s
	}
	covers := func(aclScope string) bool {
		topic, ok := a.tmpl.topicOf(aclScope, ActionSubscribe)
		return ok && f.matches(topic)
	}
	for range 3 {
		pol := a.v.Policy()
		var res verify.Result
		for _, s := range scopes {
			if res = a.v.Verify(token, s); !res.Allowed() {
				return fromResult(res)
			}
		}
		if !f.wildcard() {
			return allow
		}
		ok := pol.ACLsAdmit(res.Principal, covers)
		if a.v.Policy() != pol {
			continue
		}
		if !ok {
			return decision{outcome: denied, reason: rbac.NotOnACL.String()}
		}
		return allow
	}
	return denyPolicyChanged
}

// observe counts d and logs a denial at debug.
func (a *Adapter) observe(ep endpoint, d decision, username, clientID, topic string) {
	a.metrics[ep][d.outcome].Inc()
	if d.outcome == allowed || !a.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	a.log.Debug("mqtt: denied", "endpoint", endpointNames[ep], "outcome", outcomeNames[d.outcome], "reason", d.reason,
		"username", username, "client_id", clientID, "topic", topic)
}
