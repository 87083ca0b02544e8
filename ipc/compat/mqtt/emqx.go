package mqtt

import (
	"github.com/valyala/fasthttp"
)

// The fields of the EMQX request templates that docs/integrations/emqx.md
// configures.
var (
	emqxAuthn = with(fUsername, fPassword, fClientID)
	emqxAuthz = with(fUsername, fClientID, fTopic, fAction)
)

// The values of EMQX's ${action}; "all" appears in EMQX's own rules.
const (
	emqxPublish   = "publish"
	emqxSubscribe = "subscribe"
	emqxAll       = "all"
)

// serveEMQX serves EMQX's HTTP authentication (authn) and authorization
// (authz) under EMQXPrefix: a JSON or form POST, or a GET with the
// template in the query string. Every answer is 200 with a JSON result,
// "allow" or "deny": EMQX treats any other status, and a missing result,
// as "ignore", which would let the next authenticator or authorizer, or
// authorization's no_match default (allow), decide instead. verifyd never
// answers "ignore".
func (a *Adapter) serveEMQX(ctx *fasthttp.RequestCtx) {
	ep := epOther
	switch string(ctx.Path()[len(EMQXPrefix):]) {
	case "authn":
		ep = epAuthn
	case "authz":
		ep = epAuthz
	}
	var d decision
	var r request
	var err error
	switch {
	case ep == epOther:
		a.log.Warn("mqtt: EMQX called an unknown path, denied: point its url at /v1/compat/emqx/authn or /v1/compat/emqx/authz",
			"path", string(ctx.Path()))
		d = denyBadRequest
	case !ctx.IsPost() && !ctx.IsGet():
		d = denyBadRequest
	case ep == epAuthn:
		if r, err = readRequest(ctx, emqxAuthn); err == nil {
			d = a.authenticate(r[fUsername], r[fPassword], r[fClientID], true)
		}
	default:
		if r, err = readRequest(ctx, emqxAuthz); err == nil {
			d = a.authorizeEMQX(r[fUsername], r[fClientID], r[fTopic], r[fAction])
		}
	}
	if err != nil {
		d = denyBadRequest
	}
	a.observe(ep, d, r[fUsername], r[fClientID], r[fTopic])
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	switch {
	case ep == epAuthn && d.outcome == allowed && d.superuser:
		ctx.SetBodyString(`{"result":"allow","is_superuser":true}`)
	case ep == epAuthn && d.outcome == allowed:
		ctx.SetBodyString(`{"result":"allow","is_superuser":false}`)
	case ep == epAuthn:
		ctx.SetBodyString(`{"result":"deny","is_superuser":false}`)
	case d.outcome == allowed:
		ctx.SetBodyString(`{"result":"allow"}`)
	default:
		ctx.SetBodyString(`{"result":"deny"}`)
	}
}

// authorizeEMQX answers an EMQX authorization: publish checks a topic
// name, subscribe a topic filter, all both.
func (a *Adapter) authorizeEMQX(username, clientID, topic, action string) decision {
	switch action {
	case emqxPublish:
		return a.authorize(username, clientID, topic, accWrite)
	case emqxSubscribe:
		return a.authorize(username, clientID, topic, accSubscribe)
	case emqxAll:
		if d := a.authorize(username, clientID, topic, accWrite); d.outcome != allowed {
			return d
		}
		return a.authorize(username, clientID, topic, accSubscribe)
	}
	return denyBadRequest
}
