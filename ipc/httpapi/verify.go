package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/internal/strictjson"
	"github.com/verifyd/verifyd/verify"
)

// verifyDenied is the JSON shape of a refused verification.
// POST /v1/admin/policy/explain encodes it with encoding/json;
// appendVerifyDenied writes the same bytes for POST /v1/verify.
type verifyDenied struct {
	Allow   bool   `json:"allow"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Code    string `json:"code"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

// verifyScratch is the memory one POST /v1/verify works in, reused
// through verifyScratchPool so that a verification answered from the
// cache allocates nothing once the buffers have grown.
type verifyScratch struct {
	doc      strictjson.Doc
	body     []byte   // the unescaped token, then the unescaped scope
	projects []string // the sorted project names of an answer
}

var verifyScratchPool = sync.Pool{New: func() any { return new(verifyScratch) }}

// handleVerify answers POST /v1/verify. The token comes from the body, or,
// when the body names none, from an Authorization: Bearer or X-Api-Key
// header.
//
// The token and scope reach Verifier.Verify as zero-copy views of the
// scratch buffer or of the request's headers, both unchanged until the
// handler returns; Verify keeps no reference to its arguments once it
// returns (see ipc's serverConn.verify), and the answer refers only to
// the principal and the policy.
func (s *Server) handleVerify(ctx *fasthttp.RequestCtx) {
	sc := verifyScratchPool.Get().(*verifyScratch)
	defer verifyScratchPool.Put(sc)
	var token, scope string
	if body := ctx.PostBody(); len(body) > 0 {
		var err error
		if token, scope, err = sc.parse(body, s.opts.MaxBodyBytes); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
			return
		}
	}
	if token == "" {
		token = headerToken(ctx)
	}
	if token == "" {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", `no token: send {"token": "...", "scope": "..."} or an Authorization: Bearer header`)
		return
	}
	r := s.verifyFrom(ctx, token, scope, false)
	ctx.SetStatusCode(r.Reason.HTTPStatus())
	ctx.SetContentType("application/json")
	// The answer is written straight into the response's body buffer.
	b := ctx.Response.SwapBody(nil)[:0]
	if r.Reason == verify.OK {
		b, sc.projects = appendVerifyAllowed(b, r, sc.projects)
	} else {
		b = appendVerifyDenied(b, r.Reason, answerReason(r))
	}
	ctx.Response.SwapBody(append(b, '\n'))
}

// parse reads a POST /v1/verify body of at most limit bytes: one JSON
// object whose optional members "token" and "scope" are strings or null,
// under strictjson's rules (UTF-8, no duplicate or unknown members, names
// matched case-sensitively, nothing after the object). token and scope
// are views of sc.body, valid until sc is reused. The error message is
// meant for the client and never quotes a value.
func (sc *verifyScratch) parse(body []byte, limit int) (token, scope string, err error) {
	if len(body) > limit {
		return "", "", fmt.Errorf("request body is larger than %d bytes", limit)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "", "", errors.New("request body is empty (expected a JSON object)")
	}
	if err := sc.doc.Parse(body); err != nil {
		return "", "", describeParseError(err)
	}
	root := sc.doc.Root()
	if root.Kind() != strictjson.Object {
		return "", "", fmt.Errorf("invalid JSON: expected an object, got %s", kindNoun(root.Kind()))
	}
	var tok, scp strictjson.Value
	for name, v := range root.Members() {
		field := "token"
		switch {
		case name.StrEqual("token"):
			tok = v
		case name.StrEqual("scope"):
			scp, field = v, "scope"
		default:
			s, _ := name.Str()
			return "", "", fmt.Errorf("invalid JSON: unknown field %q (known: token, scope)", s)
		}
		if k := v.Kind(); k != strictjson.Null && k != strictjson.String {
			return "", "", fmt.Errorf("invalid JSON: field %q must be a string, not %s", field, kindNoun(k))
		}
	}
	// AppendStr appends nothing for an absent or null member.
	sc.body = tok.AppendStr(sc.body[:0])
	n := len(sc.body)
	sc.body = scp.AppendStr(sc.body)
	return b2s(sc.body[:n]), b2s(sc.body[n:]), nil
}

// describeParseError turns a strictjson error into a message for the
// client: what is wrong and at which byte, never the input itself.
func describeParseError(err error) error {
	var se *strictjson.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	msg := se.Msg
	if msg == "trailing data" {
		msg = "unexpected data after the object"
	}
	return fmt.Errorf("invalid JSON at byte %d: %s", se.Offset, msg)
}

// kindNoun names a JSON kind for an error message: "a number", "null", ...
func kindNoun(k strictjson.Kind) string {
	switch k {
	case strictjson.True, strictjson.False:
		return "a boolean"
	case strictjson.Null:
		return "null"
	case strictjson.Array, strictjson.Object:
		return "an " + k.String()
	}
	return "a " + k.String()
}

// answerReason is the "reason" of a verify answer: the policy's reason
// when it decided a scope (granted, not_on_acl, stream_role, ...),
// "authenticated" for a valid credential asked no scope, and otherwise the
// status, since the credential was refused before the policy was asked.
func answerReason(r verify.Result) string {
	switch {
	case r.Decided():
		return r.Decision.Reason.String()
	case r.Reason == verify.OK:
		return "authenticated"
	}
	return r.Reason.String()
}

// headerToken returns the credential of an Authorization: Bearer or an
// X-Api-Key header, or "". The string is a view of the request's header
// (b2s): it is valid until the handler returns and must not be kept.
func headerToken(ctx *fasthttp.RequestCtx) string {
	const bearer = "bearer "
	if a := ctx.Request.Header.Peek("Authorization"); len(a) > len(bearer) && equalFold(a[:len(bearer)], bearer) {
		return b2s(a[len(bearer):])
	}
	return b2s(ctx.Request.Header.Peek("X-Api-Key"))
}

func equalFold(b []byte, lower string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
