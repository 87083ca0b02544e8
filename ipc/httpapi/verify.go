package httpapi

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/verify"
)

type verifyRequest struct {
	Token string `json:"token"`
	Scope string `json:"scope"`
}

// matchedBody says what granted an allowed scope: the role (empty for the
// credential's own scopes), the project or realm it holds in (empty for a
// global one) and the pattern (empty for a stream rule).
type matchedBody struct {
	Role    string `json:"role"`
	Project string `json:"project"`
	Pattern string `json:"pattern"`
}

type verifyAllowed struct {
	Allow      bool                `json:"allow"`
	Status     string              `json:"status"`
	Reason     string              `json:"reason"`
	Matched    *matchedBody        `json:"matched,omitempty"`
	Subject    string              `json:"subject"`
	Kind       string              `json:"kind"`
	KeyID      string              `json:"key_id"`
	Source     string              `json:"source,omitempty"`
	Realm      string              `json:"realm,omitempty"`
	Roles      []string            `json:"roles"`
	Scopes     []string            `json:"scopes,omitempty"`
	Projects   map[string][]string `json:"project_roles,omitempty"`
	Grant      string              `json:"grant,omitempty"`
	ExpiresAt  *time.Time          `json:"expires_at,omitempty"`
	CacheTTLms int64               `json:"cache_ttl_ms"`
}

type verifyDenied struct {
	Allow   bool   `json:"allow"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Code    string `json:"code"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

// handleVerify answers POST /v1/verify. The token comes from the body, or,
// when the body names none, from an Authorization: Bearer or X-Api-Key
// header.
func (s *Server) handleVerify(ctx *fasthttp.RequestCtx) {
	var req verifyRequest
	if len(ctx.PostBody()) > 0 {
		if err := decodeBody(ctx, s.opts.MaxBodyBytes, &req); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
			return
		}
	}
	if req.Token == "" {
		req.Token = headerToken(ctx)
	}
	if req.Token == "" {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", `no token: send {"token": "...", "scope": "..."} or an Authorization: Bearer header`)
		return
	}
	r := s.opts.Verifier.Verify(req.Token, req.Scope)
	if r.Reason != verify.OK {
		writeJSON(ctx, r.Reason.HTTPStatus(), verifyDenied{
			Status:  r.Reason.String(),
			Reason:  answerReason(r),
			Code:    r.Reason.ErrorCode(),
			Error:   r.Reason.String(),
			Message: r.Reason.Message(),
		})
		return
	}
	p := r.Principal
	out := verifyAllowed{
		Allow:      true,
		Status:     r.Reason.String(),
		Subject:    p.Subject,
		Kind:       p.Kind,
		KeyID:      p.KeyID,
		Source:     p.Source,
		Realm:      p.Realm,
		Roles:      p.Roles,
		Scopes:     p.Scopes,
		Projects:   p.ProjectRoles,
		Grant:      r.Grant,
		CacheTTLms: r.CacheTTL.Milliseconds(),
		Reason:     answerReason(r),
	}
	if r.Decided() {
		d := r.Decision
		out.Matched = &matchedBody{Role: d.Role, Project: d.Project, Pattern: d.Pattern}
	}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	if !r.ExpiresAt.IsZero() {
		t := r.ExpiresAt.UTC()
		out.ExpiresAt = &t
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
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
// X-Api-Key header, or "".
func headerToken(ctx *fasthttp.RequestCtx) string {
	const bearer = "bearer "
	if a := ctx.Request.Header.Peek("Authorization"); len(a) > len(bearer) && equalFold(a[:len(bearer)], bearer) {
		return string(a[len(bearer):])
	}
	return string(ctx.Request.Header.Peek("X-Api-Key"))
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
