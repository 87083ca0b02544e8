package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"mime"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/verify"
)

// introspectRealm is the realm of the Basic challenge a refused caller gets.
const introspectRealm = `Basic realm="verifyd"`

// Outcomes of POST /v1/introspect, the values of the metric's label.
const (
	outcomeActive      = "active"      // an active token was described
	outcomeInactive    = "inactive"    // {"active":false}
	outcomeBadClient   = "bad_client"  // 401: the caller did not authenticate
	outcomeBadRequest  = "bad_request" // 400 or 405
	outcomeUnavailable = "unavailable" // 503: the store failed
)

// introspection is the state of POST /v1/introspect: the clients, by id,
// with the SHA-256 of their secrets, and the outcome counters.
type introspection struct {
	clients map[string][sha256.Size]byte
	// decoy is compared against when the client id is unknown, so that
	// an unknown id costs what a wrong secret costs.
	decoy    [sha256.Size]byte
	outcomes map[string]prometheus.Counter // nil without a registerer
	log      *slog.Logger
}

// newIntrospection prepares the endpoint for clients, registers its
// metric with reg (when not nil) and says at start whether it is open.
func newIntrospection(clients []IntrospectionClient, reg prometheus.Registerer, log *slog.Logger) (*introspection, error) {
	in := &introspection{clients: make(map[string][sha256.Size]byte, len(clients)), log: log}
	rand.Read(in.decoy[:])
	for _, c := range clients {
		in.clients[c.ID] = sha256.Sum256([]byte(c.Secret))
	}
	if reg != nil {
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "verifyd",
			Subsystem: "introspection",
			Name:      "requests_total",
			Help:      "POST /v1/introspect requests by outcome: active, inactive, bad_client, bad_request, unavailable.",
		}, []string{"outcome"})
		if err := reg.Register(vec); err != nil {
			return nil, err
		}
		in.outcomes = make(map[string]prometheus.Counter)
		for _, o := range []string{outcomeActive, outcomeInactive, outcomeBadClient, outcomeBadRequest, outcomeUnavailable} {
			in.outcomes[o] = vec.WithLabelValues(o)
		}
	}
	if len(clients) == 0 {
		log.Info("POST /v1/introspect is closed: no introspection clients are configured (introspection.clients), so every caller gets 401")
	} else {
		log.Info("POST /v1/introspect is open", "clients", len(clients))
	}
	return in, nil
}

func (in *introspection) count(outcome string) {
	if in.outcomes != nil {
		in.outcomes[outcome].Inc()
	}
}

// authenticate reports whether secret is the secret of client id, in time
// that does not depend on the secret nor on whether the id exists.
func (in *introspection) authenticate(id, secret string) bool {
	want, known := in.clients[id]
	if !known {
		want = in.decoy
	}
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1 && known
}

// oauthError is an OAuth 2.0 error answer (RFC 6749 §5.2). Its description
// never quotes a secret.
type oauthError struct {
	status      int
	code        string // invalid_request, invalid_client, temporarily_unavailable
	description string
}

func invalidRequest(description string) *oauthError {
	return &oauthError{status: fasthttp.StatusBadRequest, code: "invalid_request", description: description}
}

func invalidClient(description string) *oauthError {
	return &oauthError{status: fasthttp.StatusUnauthorized, code: "invalid_client", description: description}
}

// introspectionRequest is a parsed POST /v1/introspect: the parameters
// and the caller's credentials, from Authorization: Basic
// (client_secret_basic) or from the form (client_secret_post).
type introspectionRequest struct {
	token, hint            string
	clientID, clientSecret string
}

// parseIntrospectionRequest reads a request from its Content-Type and
// Authorization headers and its body. It checks the form (RFC 6749 §3.1:
// no repeated parameter, an empty one counts as absent) and extracts the
// caller's credentials: Basic credentials are form-urlencoded before
// base64 (RFC 6749 §2.3.1) and are decoded here. A request that uses
// both methods is refused; so is one with none (401). The token and hint
// are checked by [introspectionRequest.check], after the caller is
// authenticated.
func parseIntrospectionRequest(contentType, authorization, body string) (introspectionRequest, *oauthError) {
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/x-www-form-urlencoded" {
		return introspectionRequest{}, invalidRequest("the body must be a form (Content-Type: application/x-www-form-urlencoded)")
	}
	form, err := url.ParseQuery(body)
	if err != nil {
		return introspectionRequest{}, invalidRequest("the body is not valid form encoding")
	}
	param := func(name string) (string, bool) {
		v := form[name]
		switch {
		case len(v) > 1:
			return "", false
		case len(v) == 1:
			return v[0], true
		}
		return "", true
	}
	var req introspectionRequest
	var postID, postSecret string
	for _, p := range []struct {
		name string
		dst  *string
	}{{"token", &req.token}, {"token_type_hint", &req.hint}, {"client_id", &postID}, {"client_secret", &postSecret}} {
		v, ok := param(p.name)
		if !ok {
			return introspectionRequest{}, invalidRequest("parameter " + p.name + " is repeated")
		}
		*p.dst = v
	}
	if authorization == "" {
		if postID == "" || postSecret == "" {
			return introspectionRequest{}, invalidClient("client authentication is required: client_secret_basic (Authorization: Basic) or client_secret_post (client_id and client_secret)")
		}
		req.clientID, req.clientSecret = postID, postSecret
		return req, nil
	}
	id, secret, oerr := parseBasic(authorization)
	if oerr != nil {
		return introspectionRequest{}, oerr
	}
	if postSecret != "" {
		return introspectionRequest{}, invalidRequest("use one client authentication method: Authorization: Basic or client_secret in the body, not both")
	}
	if postID != "" && postID != id {
		return introspectionRequest{}, invalidRequest("client_id in the body is not the client of the Authorization header")
	}
	req.clientID, req.clientSecret = id, secret
	return req, nil
}

// parseBasic decodes Authorization: Basic credentials whose id and secret
// are form-urlencoded (RFC 6749 §2.3.1): "rs%2Dsecret" is "rs-secret".
func parseBasic(authorization string) (id, secret string, _ *oauthError) {
	scheme, b64, _ := strings.Cut(authorization, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", invalidClient("unsupported client authentication: use Authorization: Basic or client_secret_post")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimLeft(b64, " "))
	if err != nil {
		return "", "", invalidClient("the Basic credentials are not valid base64")
	}
	encID, encSecret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", invalidClient("the Basic credentials lack the ':' between client id and secret")
	}
	id, err1 := url.QueryUnescape(encID)
	secret, err2 := url.QueryUnescape(encSecret)
	if err1 != nil || err2 != nil {
		return "", "", invalidClient("the Basic credentials are not valid form-urlencoding (RFC 6749 section 2.3.1)")
	}
	if id == "" || secret == "" {
		return "", "", invalidClient("the Basic credentials have an empty client id or secret")
	}
	return id, secret, nil
}

// maxHintBytes bounds token_type_hint.
const maxHintBytes = 128

// check checks the token and the hint of an authenticated request. The
// hint is accepted and ignored (RFC 7662 §2.1 lets the server search every
// kind of token), but it must look like a token type: access_token, or a
// URN, in visible ASCII (RFC 6749 Appendix A's VSCHAR).
func (r *introspectionRequest) check() *oauthError {
	if r.token == "" {
		return invalidRequest("the token parameter is required")
	}
	bad := len(r.hint) > maxHintBytes
	for i := 0; i < len(r.hint) && !bad; i++ {
		bad = r.hint[i] < 0x21 || r.hint[i] > 0x7e
	}
	if bad {
		return invalidRequest("token_type_hint must be a token type such as access_token: visible ASCII, at most 128 bytes")
	}
	return nil
}

// introspectionAnswer is the answer for an active token (RFC 7662 §2.2),
// with the extensions kind, roles and realm.
type introspectionAnswer struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	TokenType string   `json:"token_type"`
	Exp       *int64   `json:"exp,omitempty"`
	Iat       *int64   `json:"iat,omitempty"`
	Sub       string   `json:"sub"`
	Aud       any      `json:"aud,omitempty"` // a string, or an array of several
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	Kind      string   `json:"kind"`
	Roles     []string `json:"roles,omitempty"`
	Realm     string   `json:"realm,omitempty"`
}

// introspectInactive is the whole answer for a token that is not active.
var introspectInactive = []byte(`{"active":false}` + "\n")

// handleIntrospect answers POST /v1/introspect (RFC 7662).
func (s *Server) handleIntrospect(ctx *fasthttp.RequestCtx) {
	in := s.introspection
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if !allowMethod(ctx, fasthttp.MethodPost) {
		in.count(outcomeBadRequest)
		return
	}
	if len(in.clients) == 0 {
		in.refuse(ctx, invalidClient("introspection is closed: no client is configured"))
		return
	}
	req, oerr := parseIntrospectionRequest(string(ctx.Request.Header.ContentType()), string(ctx.Request.Header.Peek("Authorization")), string(ctx.PostBody()))
	if oerr != nil {
		in.refuse(ctx, oerr)
		return
	}
	if !in.authenticate(req.clientID, req.clientSecret) {
		_, known := in.clients[req.clientID]
		in.log.Debug("introspection: client authentication failed", "known_client", known)
		in.refuse(ctx, invalidClient("client authentication failed"))
		return
	}
	if oerr := req.check(); oerr != nil {
		in.refuse(ctx, oerr)
		return
	}
	r := s.opts.Verifier.Introspect(req.token)
	switch r.Reason {
	case verify.OK:
		in.count(outcomeActive)
		writeJSON(ctx, fasthttp.StatusOK, introspectionAnswerOf(r))
	case verify.Unavailable:
		in.refuse(ctx, &oauthError{status: fasthttp.StatusServiceUnavailable, code: "temporarily_unavailable", description: r.Reason.Message()})
	default:
		in.count(outcomeInactive)
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/json")
		ctx.SetBody(introspectInactive)
	}
}

// refuse answers an OAuth error and counts it; a 401 carries the Basic
// challenge.
func (in *introspection) refuse(ctx *fasthttp.RequestCtx, e *oauthError) {
	switch e.status {
	case fasthttp.StatusUnauthorized:
		in.count(outcomeBadClient)
		ctx.Response.Header.Set("WWW-Authenticate", introspectRealm)
	case fasthttp.StatusServiceUnavailable:
		in.count(outcomeUnavailable)
	default:
		in.count(outcomeBadRequest)
	}
	writeJSON(ctx, e.status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{e.code, e.description})
}

// introspectionAnswerOf is the answer for an active token.
func introspectionAnswerOf(r verify.Introspection) introspectionAnswer {
	p := r.Principal
	out := introspectionAnswer{
		Active:    true,
		Scope:     strings.Join(p.Scopes, " "),
		TokenType: "Bearer",
		Sub:       p.Subject,
		Kind:      p.Kind,
		Roles:     p.Roles,
		Realm:     p.Realm,
	}
	if !r.ExpiresAt.IsZero() {
		exp := r.ExpiresAt.Unix()
		out.Exp = &exp
	}
	if !r.IssuedAt.IsZero() {
		iat := r.IssuedAt.Unix()
		out.Iat = &iat
	}
	if p.Kind != "jwt" {
		out.ClientID = p.KeyID
		return out
	}
	out.ClientID = r.AuthorizedParty
	out.Iss = r.Issuer
	out.Jti = p.KeyID
	switch len(r.Audience) {
	case 0:
	case 1:
		out.Aud = r.Audience[0]
	default:
		out.Aud = r.Audience
	}
	return out
}
