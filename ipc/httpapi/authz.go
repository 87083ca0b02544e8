package httpapi

import (
	"bytes"
	"encoding/base64"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/verify"
)

// authzPath is the forward-auth endpoint. A request to authzPath + "/..."
// carries the original path itself (Envoy's path_prefix).
const authzPath = "/v1/authz"

// isAuthzURI reports whether the request URI uri (as sent, with or
// without its query) is for the forward-auth endpoint. The endpoint is
// chosen on the path as sent, never on its cleaned-up form: Envoy appends
// the client's path to /v1/authz, and "/v1/authz/../../healthz" must not
// reach another endpoint that would answer 200.
func isAuthzURI(uri []byte) bool {
	if !bytes.HasPrefix(uri, []byte(authzPath)) {
		return false
	}
	rest := uri[len(authzPath):]
	return len(rest) == 0 || rest[0] == '?' || rest[0] == '/'
}

// headerReceived runs once a request's header is read, before its body.
// A forward-auth request's body is never read: nginx sends the
// Content-Length of the client's body without the body itself, and
// waiting for it would hold the request until a timeout. The request is
// taken as bodiless and its connection closed after the answer, so that
// a body that does follow is never taken for the next request.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() != 0 && h.ContentLength() != -2 && isAuthzURI(h.RequestURI()) {
		h.SetContentLength(0)
		h.SetConnectionClose()
	}
	return fasthttp.RequestConfig{}
}

// authzScratch holds the buffers of one forward-auth decision, reused
// across requests.
type authzScratch struct {
	scope []byte
	token []byte
	value []byte
	args  fasthttp.Args
}

var authzScratchPool = sync.Pool{New: func() any { return new(authzScratch) }}

// handleAuthz answers the forward-auth endpoint, for any method: 200 with
// the identity headers when the credential is valid and grants the scope,
// 401 with WWW-Authenticate when the credential is missing or not valid,
// 403 when it does not grant the scope (or no scope can be derived from
// the original request), 503 when the store cannot be read, 429 (with
// Retry-After) when the throttle refuses the client or credential. Never a
// redirect, never another 2xx, never a 5xx for a client's credential.
// It reads no body, and allocates nothing on an allowed cache hit.
func (s *Server) handleAuthz(ctx *fasthttp.RequestCtx) {
	c := s.authz
	sc := authzScratchPool.Get().(*authzScratch)
	defer authzScratchPool.Put(sc)

	// The original request: the path under /v1/authz (Envoy), or the
	// configured headers (nginx, Traefik).
	var method, path, query []byte
	raw := ctx.Request.URI().PathOriginal()
	ownPath := len(raw) > len(authzPath)
	if ownPath {
		method, path, query = ctx.Method(), raw[len(authzPath):], ctx.URI().QueryString()
	} else {
		method = ctx.Request.Header.Peek(c.methodHeader)
		if len(method) == 0 {
			method = ctx.Method()
		}
		uri := ctx.Request.Header.Peek(c.uriHeader)
		if i := bytes.IndexByte(uri, '?'); i >= 0 {
			path, query = uri[:i], uri[i+1:]
		} else {
			path = uri
		}
	}

	// The credential first: a request without one is challenged, whatever
	// its path, so that an anonymous client learns nothing of the routes.
	token := s.authzCredential(ctx, sc, query)
	if len(token) == 0 {
		s.authzChallenge(ctx, c.challengeMissing, "no credential: send Authorization: Bearer <token>")
		return
	}

	// The scope: ?scope= on the auth URL (not for Envoy, whose query is the
	// client's), else the route table. A request given no scope is denied,
	// once its credential is known to be valid (else it is challenged).
	var scope []byte
	denial := ""
	if !ownPath && ctx.QueryArgs().Has("scope") {
		scope = ctx.QueryArgs().Peek("scope")
		if len(scope) == 0 {
			denial = "the auth URL's scope parameter is empty"
		}
	} else {
		var outcome routeOutcome = routeNone
		if c.routes != nil && len(path) > 0 {
			sc.scope, outcome = c.routes.scope(sc.scope[:0], method, path)
		}
		switch outcome {
		case routeMatched:
			scope = sc.scope
		case routeBadParam:
			denial = "a path parameter of the original request cannot be part of a scope"
		default:
			if c.denyUnmatched {
				denial = "no route gives the original request a scope"
			}
		}
	}

	r := s.verifyFrom(ctx, b2s(token), b2s(scope), true)
	switch {
	case r.Reason == verify.OK && denial == "":
		s.authzAllow(ctx, sc, r)
	case r.Reason == verify.OK:
		s.authzDeny(ctx, denial)
	case r.Reason == verify.Forbidden || r.Reason == verify.InvalidScope:
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, c.challengeScope)
		s.authzDeny(ctx, r.Reason.Message())
	case r.Reason == verify.Unavailable, r.Reason == verify.RateLimited:
		writeError(ctx, r.Reason.HTTPStatus(), r.Reason.ErrorCode(), r.Reason.Message())
	default:
		s.authzChallenge(ctx, c.challengeInvalid, r.Reason.Message())
	}
}

// authzCredential returns the credential of the request, from the first
// enabled source that holds one, or nil. query is the original request's
// query string.
func (s *Server) authzCredential(ctx *fasthttp.RequestCtx, sc *authzScratch, query []byte) []byte {
	c := s.authz
	if auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization); len(auth) > 0 {
		scheme, rest, _ := bytes.Cut(auth, []byte(" "))
		rest = bytes.TrimSpace(rest)
		switch {
		case c.bearer && equalFold(scheme, "bearer"):
			return rest
		case c.basic && equalFold(scheme, "basic"):
			if tok, ok := sc.basicToken(rest); ok {
				return tok
			}
			return nil
		}
	}
	if c.apiKeyHeader != "" {
		if v := ctx.Request.Header.Peek(c.apiKeyHeader); len(v) > 0 {
			return v
		}
	}
	if c.queryParam != "" && len(query) > 0 {
		sc.args.ParseBytes(query)
		if v := sc.args.Peek(c.queryParam); len(v) > 0 {
			return v
		}
	}
	if c.cookie != "" {
		if v := ctx.Request.Header.Cookie(c.cookie); len(v) > 0 {
			return v
		}
	}
	return nil
}

// basicToken returns the token of the Basic credentials b64 (base64 of
// "user:password"): the password, or the user when the password is empty
// ("token:" as curl -u sends it). It is percent-decoded, as OAuth clients
// encode it (RFC 6749 section 2.3.1).
func (sc *authzScratch) basicToken(b64 []byte) ([]byte, bool) {
	n := base64.StdEncoding.DecodedLen(len(b64))
	if cap(sc.value) < n {
		sc.value = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(sc.value[:n], b64)
	if err != nil {
		return nil, false
	}
	user, pass, ok := bytes.Cut(sc.value[:n], []byte(":"))
	if !ok {
		return nil, false
	}
	tok := pass
	if len(tok) == 0 {
		tok = user
	}
	if bytes.IndexByte(tok, '%') < 0 {
		return tok, len(tok) > 0
	}
	sc.token = sc.token[:0]
	for i := 0; i < len(tok); i++ {
		ch := tok[i]
		if ch == '%' && i+2 < len(tok) {
			hi, ok1 := unhex(tok[i+1])
			lo, ok2 := unhex(tok[i+2])
			if ok1 && ok2 {
				ch = hi<<4 | lo
				i += 2
			}
		}
		sc.token = append(sc.token, ch)
	}
	return sc.token, len(sc.token) > 0
}

// authzAllow answers 200 with the identity headers of r's principal.
func (s *Server) authzAllow(ctx *fasthttp.RequestCtx, sc *authzScratch, r verify.Result) {
	c := s.authz
	h := &ctx.Response.Header
	if p := r.Principal; p != nil {
		if c.subjectHeader != "" {
			sc.value = appendHeaderValue(sc.value[:0], p.Subject, 0)
			h.SetBytesV(c.subjectHeader, sc.value)
		}
		if c.kindHeader != "" {
			h.Set(c.kindHeader, p.Kind)
		}
		if c.rolesHeader != "" {
			sc.value = sc.value[:0]
			for i, role := range p.Roles {
				if i > 0 {
					sc.value = append(sc.value, ',')
				}
				sc.value = appendHeaderValue(sc.value, role, ',')
			}
			h.SetBytesV(c.rolesHeader, sc.value)
		}
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
}

// appendHeaderValue appends v to dst as a header value: control bytes,
// '%' and sep (when not 0) are percent-encoded, so that no value can end
// a header or split a list.
func appendHeaderValue(dst []byte, v string, sep byte) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch < 0x20 || ch == 0x7f || ch == '%' || (sep != 0 && ch == sep) {
			dst = append(dst, '%', hex[ch>>4], hex[ch&15])
			continue
		}
		dst = append(dst, ch)
	}
	return dst
}

// authzChallenge answers 401 with the Bearer challenge, and the Basic one
// when Basic is enabled.
func (s *Server) authzChallenge(ctx *fasthttp.RequestCtx, bearer, message string) {
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, bearer)
	if s.authz.challengeBasic != "" {
		ctx.Response.Header.Add(fasthttp.HeaderWWWAuthenticate, s.authz.challengeBasic)
	}
	writeError(ctx, fasthttp.StatusUnauthorized, "UNAUTHORIZED", message)
}

// authzDeny answers 403.
func (s *Server) authzDeny(ctx *fasthttp.RequestCtx, message string) {
	writeError(ctx, fasthttp.StatusForbidden, "FORBIDDEN", message)
}
