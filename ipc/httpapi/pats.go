package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
)

// patScopeBody is a PAT scope tuple in SuperMQ's JSON form.
type patScopeBody struct {
	Domain     string `json:"optional_domain_id"`
	EntityType string `json:"entity_type"`
	Operation  string `json:"operation"`
	EntityID   string `json:"entity_id"`
}

// patCreateBody is the body of POST /v1/pats.
type patCreateBody struct {
	Subject     string         `json:"subject"` // the owner; the admin only
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Duration    string         `json:"duration"`
	Scopes      []patScopeBody `json:"scopes"`
}

// patScopesBody is the body of PATCH /v1/pats/{id}/scope/add and
// /scope/remove.
type patScopesBody struct {
	Scopes []patScopeBody `json:"scopes"`
}

// patResetBody is the body of POST /v1/pats/{id}/reset.
type patResetBody struct {
	Duration string `json:"duration"`
}

// patBody is a PAT as the API shows it: never its secret, except in the
// answer to a create or reset.
type patBody struct {
	ID          string         `json:"id"`
	Subject     string         `json:"subject"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Status      string         `json:"status"`
	Scopes      []patScopeBody `json:"scopes"`
	// ScopesError says why the tuples cannot be shown (their metadata was
	// written outside this API); Patterns still hold what the PAT grants.
	ScopesError        string     `json:"scopes_error,omitempty"`
	Patterns           []string   `json:"patterns"`
	Creator            string     `json:"creator,omitempty"`
	Version            uint64     `json:"version"`
	CreatedAt          time.Time  `json:"created_at"`
	ExpiresAt          *time.Time `json:"expires_at,omitempty"`
	RevokedAt          *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt         *time.Time `json:"last_used_at,omitempty"`
	PreviousValidUntil *time.Time `json:"previous_valid_until,omitempty"`
	Secret             string     `json:"secret,omitempty"`
}

type patList struct {
	PATs []patBody `json:"pats"`
}

// patScopeList is the answer of GET /v1/pats/{id}/scopes.
type patScopeList struct {
	Scopes      []patScopeBody `json:"scopes"`
	ScopesError string         `json:"scopes_error,omitempty"`
	Patterns    []string       `json:"patterns"`
}

// patCaller is who calls the PAT API: the admin, or the owner of the
// PATs, identified by a credential of its own.
type patCaller struct {
	admin   bool
	subject string // the owner; empty for the admin
}

// handlePATs serves /v1/pats; rest is the path after it ("", "/{id}",
// "/{id}/scopes", "/{id}/scope/add", "/{id}/scope/remove" or
// "/{id}/reset"). The caller is authenticated before anything else of the
// request is looked at.
func (s *Server) handlePATs(ctx *fasthttp.RequestCtx, rest string) {
	caller, ok := s.patCaller(ctx)
	if !ok {
		return
	}
	owner, ok := patOwner(ctx, caller)
	if !ok {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	m := s.opts.Manager
	if caller.admin {
		c = verify.WithActor(c, m.AdminActor())
	} else {
		c = verify.WithActor(c, verify.SubjectActor(caller.subject))
	}
	if rest == "" || rest == "/" {
		if !allowMethod(ctx, fasthttp.MethodGet, fasthttp.MethodPost) {
			return
		}
		if ctx.IsGet() {
			s.listPATs(ctx, owner)
		} else {
			s.createPAT(c, ctx, caller, owner)
		}
		return
	}
	id, action, _ := strings.Cut(rest[1:], "/")
	switch action {
	case "":
		if !allowMethod(ctx, fasthttp.MethodGet, fasthttp.MethodDelete) {
			return
		}
		var rec keystore.Record
		var err error
		if ctx.IsGet() {
			rec, err = m.GetPAT(owner, id)
		} else {
			rec, err = m.RevokePAT(c, owner, id)
		}
		s.answerPAT(ctx, fasthttp.StatusOK, rec, "", err)
	case "scopes":
		if allowMethod(ctx, fasthttp.MethodGet) {
			s.listPATScopes(ctx, owner, id)
		}
	case "scope/add", "scope/remove":
		if allowMethod(ctx, fasthttp.MethodPatch) {
			s.changePATScopes(c, ctx, owner, id, action == "scope/add")
		}
	case "reset":
		if allowMethod(ctx, fasthttp.MethodPost) {
			s.resetPAT(c, ctx, owner, id)
		}
	default:
		writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no such endpoint: "+string(ctx.Path()))
	}
}

// patCaller authenticates the caller: the admin key in X-Admin-Key, or
// else a credential of the owner in Authorization: Bearer (a stored key or
// a trusted JWT, verified as POST /v1/verify does with no scope, through
// the same throttle, so that this endpoint is no way around it). A PAT
// cannot manage PATs. It answers 401, 403, 429 or 503 and reports false
// when the caller may not go on.
func (s *Server) patCaller(ctx *fasthttp.RequestCtx) (patCaller, bool) {
	if len(ctx.Request.Header.Peek("X-Admin-Key")) > 0 {
		// An admin key that is present must be right: no fallback to the
		// Bearer credential.
		return patCaller{admin: true}, s.isAdmin(ctx)
	}
	const bearer = "bearer "
	auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(auth) <= len(bearer) || !equalFold(auth[:len(bearer)], bearer) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="verifyd"`)
		writeError(ctx, fasthttp.StatusUnauthorized, "UNAUTHORIZED",
			"a credential is required: the owner's key or JWT in Authorization: Bearer, or the admin key in X-Admin-Key")
		return patCaller{}, false
	}
	r := s.verifyFrom(ctx, strings.TrimSpace(string(auth[len(bearer):])), "", false)
	switch {
	case r.Reason == verify.Unavailable || r.Reason == verify.RateLimited:
		writeError(ctx, r.Reason.HTTPStatus(), r.Reason.ErrorCode(), r.Reason.Message())
		return patCaller{}, false
	case r.Reason != verify.OK:
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="verifyd", error="invalid_token"`)
		writeError(ctx, fasthttp.StatusUnauthorized, "UNAUTHORIZED", "the credential is not valid ("+r.Reason.String()+"): "+r.Reason.Message())
		return patCaller{}, false
	case r.Principal.Kind == keystore.KindPAT.String():
		writeError(ctx, fasthttp.StatusForbidden, "FORBIDDEN",
			"a personal access token cannot create or manage personal access tokens: use another credential of the subject (an API key or a JWT), or the admin key")
		return patCaller{}, false
	}
	return patCaller{subject: r.Principal.Subject}, true
}

// patOwner returns whose PATs the request concerns: for the admin, the
// subject of ?subject= (empty: anyone's); for an owner, its own, which a
// ?subject= may repeat but not change (403).
func patOwner(ctx *fasthttp.RequestCtx, caller patCaller) (string, bool) {
	q := string(ctx.QueryArgs().Peek("subject"))
	if caller.admin {
		return q, true
	}
	if q != "" && q != caller.subject {
		writeError(ctx, fasthttp.StatusForbidden, "FORBIDDEN", "a credential manages the PATs of its own subject only")
		return "", false
	}
	return caller.subject, true
}

func (s *Server) listPATs(ctx *fasthttp.RequestCtx, owner string) {
	recs, err := s.opts.Manager.ListPATs(owner)
	if err != nil {
		s.answerPATError(ctx, err)
		return
	}
	out := patList{PATs: make([]patBody, 0, len(recs))}
	now := time.Now()
	for _, r := range recs {
		out.PATs = append(out.PATs, s.patBody(r, now))
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

func (s *Server) createPAT(c context.Context, ctx *fasthttp.RequestCtx, caller patCaller, owner string) {
	var body patCreateBody
	if err := decodeBody(ctx, s.opts.MaxBodyBytes, &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	spec := verify.PATSpec{Subject: owner, Name: body.Name, Description: body.Description, Scopes: patScopes(body.Scopes)}
	switch {
	case !caller.admin && body.Subject != "" && body.Subject != caller.subject:
		writeError(ctx, fasthttp.StatusForbidden, "FORBIDDEN", "a credential creates PATs for its own subject only")
		return
	case !caller.admin:
		spec.Creator = "subject:" + caller.subject
	case body.Subject != "" && owner != "" && body.Subject != owner:
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", "subject in the body and ?subject= differ")
		return
	default:
		spec.Creator = "admin"
		if body.Subject != "" {
			spec.Subject = body.Subject
		}
	}
	var problems []string
	if caller.admin && spec.Subject == "" {
		problems = append(problems, "subject is required: the admin creates a PAT for a subject")
	}
	d, err := patDuration(body.Duration)
	if err != nil {
		problems = append(problems, err.Error())
	}
	spec.Duration = d
	if len(problems) > 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", strings.Join(problems, "; "))
		return
	}
	rec, secret, err := s.opts.Manager.CreatePAT(c, spec)
	s.answerPAT(ctx, fasthttp.StatusCreated, rec, secret, err)
}

func (s *Server) listPATScopes(ctx *fasthttp.RequestCtx, owner, id string) {
	rec, err := s.opts.Manager.GetPAT(owner, id)
	if err != nil {
		s.answerPATError(ctx, err)
		return
	}
	pb := s.patBody(rec, time.Now())
	writeJSON(ctx, fasthttp.StatusOK, patScopeList{Scopes: pb.Scopes, ScopesError: pb.ScopesError, Patterns: pb.Patterns})
}

func (s *Server) changePATScopes(c context.Context, ctx *fasthttp.RequestCtx, owner, id string, add bool) {
	var body patScopesBody
	if err := decodeBody(ctx, s.opts.MaxBodyBytes, &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	change := s.opts.Manager.RemovePATScopes
	if add {
		change = s.opts.Manager.AddPATScopes
	}
	rec, err := change(c, owner, id, patScopes(body.Scopes))
	s.answerPAT(ctx, fasthttp.StatusOK, rec, "", err)
}

func (s *Server) resetPAT(c context.Context, ctx *fasthttp.RequestCtx, owner, id string) {
	var body patResetBody
	if len(ctx.PostBody()) > 0 {
		if err := decodeBody(ctx, s.opts.MaxBodyBytes, &body); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
			return
		}
	}
	d, err := patDuration(body.Duration)
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	rec, secret, err := s.opts.Manager.ResetPAT(c, owner, id, d)
	s.answerPAT(ctx, fasthttp.StatusOK, rec, secret, err)
}

// patDuration parses a duration field: empty is zero (the default).
func patDuration(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %.64q is not a positive duration such as \"720h\"", v)
	}
	return d, nil
}

func patScopes(in []patScopeBody) []verify.PATScope {
	out := make([]verify.PATScope, len(in))
	for i, b := range in {
		out[i] = verify.PATScope{Domain: b.Domain, EntityType: b.EntityType, Operation: b.Operation, EntityID: b.EntityID}
	}
	return out
}

func (s *Server) answerPAT(ctx *fasthttp.RequestCtx, status int, rec keystore.Record, secret string, err error) {
	if err != nil {
		s.answerPATError(ctx, err)
		return
	}
	pb := s.patBody(rec, time.Now())
	if secret != "" {
		pb.Secret = secret
		ctx.Response.Header.Set("Cache-Control", "no-store")
	}
	writeJSON(ctx, status, pb)
}

// answerPATError maps an error of the PAT API to a response.
func (s *Server) answerPATError(ctx *fasthttp.RequestCtx, err error) {
	var re *keystore.RecordError
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no personal access token with this id")
	case errors.Is(err, verify.ErrRevoked):
		writeError(ctx, fasthttp.StatusConflict, "CONFLICT", "the personal access token is revoked; create a new one")
	case errors.Is(err, verify.ErrPATScopesUnreadable):
		writeError(ctx, fasthttp.StatusConflict, "CONFLICT", strings.TrimPrefix(err.Error(), "verify: ")+
			" (metadata entries named pat.scopes.N are written outside the PAT API); revoke this PAT and create a new one")
	case errors.As(err, &re):
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", strings.Join(re.Problems, "; "))
	default:
		s.answerError(ctx, err)
	}
}

func (s *Server) patBody(r keystore.Record, now time.Time) patBody {
	kb := s.keyBody(r, now)
	pb := patBody{
		ID:                 r.ID,
		Subject:            r.Subject,
		Name:               r.Name,
		Description:        r.Description,
		Status:             kb.Status,
		Scopes:             []patScopeBody{},
		Patterns:           nonNil(r.Scopes),
		Creator:            r.Creator,
		Version:            r.Version,
		CreatedAt:          kb.CreatedAt,
		ExpiresAt:          kb.ExpiresAt,
		RevokedAt:          kb.RevokedAt,
		LastUsedAt:         kb.LastUsedAt,
		PreviousValidUntil: kb.PreviousValidUntil,
	}
	scopes, err := verify.PATScopes(&r)
	if err != nil {
		pb.ScopesError = strings.TrimPrefix(err.Error(), "verify: ")
	}
	for _, sc := range scopes {
		pb.Scopes = append(pb.Scopes, patScopeBody{Domain: sc.Domain, EntityType: sc.EntityType, Operation: sc.Operation, EntityID: sc.EntityID})
	}
	return pb
}
