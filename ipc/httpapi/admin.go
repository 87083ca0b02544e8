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
	"github.com/verifyd/verifyd/verify/throttle"
)

// adminTimeout bounds one admin write, including its synced commit.
const adminTimeout = 30 * time.Second

// keySpecBody is the body of create and import requests.
type keySpecBody struct {
	Subject      string              `json:"subject"`
	Kind         string              `json:"kind"`
	Name         string              `json:"name"`
	Description  string              `json:"description"`
	Scopes       []string            `json:"scopes"`
	Roles        []string            `json:"roles"`
	ProjectRoles map[string][]string `json:"project_roles"`
	Metadata     map[string]string   `json:"metadata"`
	ExpiresIn    string              `json:"expires_in"`
	Secret       string              `json:"secret"`
}

type rotateBody struct {
	Grace string `json:"grace"`
}

// keyBody is a key as the admin API shows it: never a secret or digest,
// except the secret of a create or rotate answer.
type keyBody struct {
	ID                 string              `json:"id"`
	Kind               string              `json:"kind"`
	Subject            string              `json:"subject"`
	Name               string              `json:"name,omitempty"`
	Description        string              `json:"description,omitempty"`
	Scopes             []string            `json:"scopes"`
	Roles              []string            `json:"roles"`
	ProjectRoles       map[string][]string `json:"project_roles,omitempty"`
	Metadata           map[string]string   `json:"metadata,omitempty"`
	Creator            string              `json:"creator,omitempty"`
	Status             string              `json:"status"`
	Version            uint64              `json:"version"`
	CreatedAt          time.Time           `json:"created_at"`
	ExpiresAt          *time.Time          `json:"expires_at,omitempty"`
	RevokedAt          *time.Time          `json:"revoked_at,omitempty"`
	LastUsedAt         *time.Time          `json:"last_used_at,omitempty"`
	PreviousValidUntil *time.Time          `json:"previous_valid_until,omitempty"`
	Secret             string              `json:"secret,omitempty"`
}

type keyList struct {
	Keys []keyBody `json:"keys"`
}

// handleAdmin serves /v1/admin/keys; rest is the path after it ("", "/import",
// "/{id}" or "/{id}/rotate").
func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx, rest string) {
	if !s.isAdmin(ctx) {
		return
	}
	c, cancel := s.adminContext()
	defer cancel()
	switch {
	case rest == "" || rest == "/":
		if !allowMethod(ctx, fasthttp.MethodGet, fasthttp.MethodPost) {
			return
		}
		if ctx.IsGet() {
			s.listKeys(ctx)
		} else {
			s.createKey(c, ctx, false)
		}
	case rest == "/import":
		if allowMethod(ctx, fasthttp.MethodPost) {
			s.createKey(c, ctx, true)
		}
	default:
		id, action, _ := strings.Cut(rest[1:], "/")
		switch action {
		case "":
			if !allowMethod(ctx, fasthttp.MethodGet, fasthttp.MethodDelete) {
				return
			}
			if ctx.IsGet() {
				s.getKey(ctx, id)
			} else {
				rec, err := s.opts.Manager.RevokeKey(c, id)
				s.answerKey(ctx, fasthttp.StatusOK, rec, "", err)
			}
		case "rotate":
			if allowMethod(ctx, fasthttp.MethodPost) {
				s.rotateKey(c, ctx, id)
			}
		default:
			writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no such endpoint: "+string(ctx.Path()))
		}
	}
}

// isAdmin reports whether the request carries the admin key, answering 401
// when it does not. Every admin endpoint calls it first, before looking at
// anything else in the request.
func (s *Server) isAdmin(ctx *fasthttp.RequestCtx) bool {
	key := ctx.Request.Header.Peek("X-Admin-Key")
	if s.opts.Manager.IsAdmin(string(key)) {
		return true
	}
	s.adminAuth.refused(len(key) > 0)
	ctx.Response.Header.Set("WWW-Authenticate", `AdminKey realm="verifyd"`)
	writeError(ctx, fasthttp.StatusUnauthorized, "UNAUTHORIZED", "a valid admin key is required in the X-Admin-Key header")
	return false
}

func (s *Server) createKey(c context.Context, ctx *fasthttp.RequestCtx, imported bool) {
	var body keySpecBody
	if err := decodeBody(ctx, s.opts.MaxBodyBytes, &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	spec, problems := body.spec()
	if len(problems) > 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", strings.Join(problems, "; "))
		return
	}
	if imported {
		rec, err := s.opts.Manager.ImportKey(c, spec)
		s.answerKey(ctx, fasthttp.StatusCreated, rec, "", err)
		return
	}
	rec, secret, err := s.opts.Manager.CreateKey(c, spec)
	s.answerKey(ctx, fasthttp.StatusCreated, rec, secret, err)
}

// spec converts the body to a verify.KeySpec, reporting the problems that
// only the JSON layer can see (kind and duration syntax); the Manager checks
// the rest.
func (b *keySpecBody) spec() (verify.KeySpec, []string) {
	var problems []string
	spec := verify.KeySpec{
		Subject:      b.Subject,
		Name:         b.Name,
		Description:  b.Description,
		Scopes:       b.Scopes,
		Roles:        b.Roles,
		ProjectRoles: b.ProjectRoles,
		Metadata:     b.Metadata,
		Creator:      "admin",
		Secret:       b.Secret,
	}
	if b.Kind != "" {
		k, err := keystore.ParseKind(b.Kind)
		if err != nil {
			problems = append(problems, fmt.Sprintf("kind %q is unknown (use api_key, agent, pat or, for imports, imported)", b.Kind))
		}
		spec.Kind = k
	}
	if v, ok := b.Metadata[keystore.MetaRateLimit]; ok {
		if _, err := throttle.ParseRate(v); err != nil {
			problems = append(problems, "metadata "+keystore.MetaRateLimit+": "+err.Error())
		}
	}
	if b.ExpiresIn != "" {
		d, err := time.ParseDuration(b.ExpiresIn)
		if err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf("expires_in %q is not a positive duration such as \"720h\"", b.ExpiresIn))
		}
		spec.ExpiresIn = d
	}
	return spec, problems
}

func (s *Server) listKeys(ctx *fasthttp.RequestCtx) {
	recs, err := s.opts.Manager.ListKeys(string(ctx.QueryArgs().Peek("subject")))
	if err != nil {
		s.answerError(ctx, err)
		return
	}
	out := keyList{Keys: make([]keyBody, 0, len(recs))}
	now := time.Now()
	for _, r := range recs {
		out.Keys = append(out.Keys, s.keyBody(r, now))
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

func (s *Server) getKey(ctx *fasthttp.RequestCtx, id string) {
	rec, err := s.opts.Manager.GetKey(id)
	s.answerKey(ctx, fasthttp.StatusOK, rec, "", err)
}

func (s *Server) rotateKey(c context.Context, ctx *fasthttp.RequestCtx, id string) {
	var body rotateBody
	if len(ctx.PostBody()) > 0 {
		if err := decodeBody(ctx, s.opts.MaxBodyBytes, &body); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", err.Error())
			return
		}
	}
	var grace time.Duration
	if body.Grace != "" {
		var err error
		if grace, err = time.ParseDuration(body.Grace); err != nil || grace < 0 {
			writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("grace %q is not a duration such as \"10m\"", body.Grace))
			return
		}
	}
	rec, secret, err := s.opts.Manager.RotateKey(c, id, grace)
	s.answerKey(ctx, fasthttp.StatusOK, rec, secret, err)
}

func (s *Server) answerKey(ctx *fasthttp.RequestCtx, status int, rec keystore.Record, secret string, err error) {
	if err != nil {
		s.answerError(ctx, err)
		return
	}
	kb := s.keyBody(rec, time.Now())
	kb.Secret = secret
	writeJSON(ctx, status, kb)
}

// answerError maps a management error to a response.
func (s *Server) answerError(ctx *fasthttp.RequestCtx, err error) {
	var spec *verify.InvalidSpecError
	switch {
	case errors.As(err, &spec):
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", strings.Join(spec.Problems, "; "))
	case errors.Is(err, keystore.ErrInvalidRevocation):
		writeError(ctx, fasthttp.StatusBadRequest, "BAD_REQUEST", strings.TrimPrefix(err.Error(), "keystore: "))
	case errors.Is(err, keystore.ErrNotFound):
		writeError(ctx, fasthttp.StatusNotFound, "NOT_FOUND", "no key with this id")
	case errors.Is(err, keystore.ErrDigestInUse):
		writeError(ctx, fasthttp.StatusConflict, "CONFLICT", "this secret is already in use by another key")
	case errors.Is(err, verify.ErrRevoked):
		writeError(ctx, fasthttp.StatusConflict, "CONFLICT", "the key is revoked; create a new one")
	case errors.Is(err, keystore.ErrUnavailable):
		s.opts.Logger.Error("httpapi: admin request not acknowledged", "path", string(ctx.Path()), "err", err)
		writeError(ctx, fasthttp.StatusServiceUnavailable, "CLUSTER_UNAVAILABLE", strings.TrimPrefix(err.Error(), "keystore: ")+"; not acknowledged (if it was committed, every node applies it); retry")
	case errors.Is(err, keystore.ErrConflict):
		writeError(ctx, fasthttp.StatusConflict, "CONFLICT", "the same state kept changing on other nodes; nothing was written; retry")
	case errors.Is(err, keystore.ErrDiskFull):
		s.opts.Logger.Error("httpapi: admin request refused", "path", string(ctx.Path()), "err", err)
		writeError(ctx, fasthttp.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "verifyd's data volume is full: nothing was written; free space on the verifyd host and retry")
	default:
		s.opts.Logger.Error("httpapi: admin request failed", "path", string(ctx.Path()), "err", err)
		writeError(ctx, fasthttp.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "the request could not be completed; nothing was acknowledged")
	}
}

func (s *Server) keyBody(r keystore.Record, now time.Time) keyBody {
	kb := keyBody{
		ID:           r.ID,
		Kind:         r.Kind.String(),
		Subject:      r.Subject,
		Name:         r.Name,
		Description:  r.Description,
		Scopes:       nonNil(r.Scopes),
		Roles:        nonNil(r.Roles),
		ProjectRoles: r.ProjectRoles,
		Metadata:     r.Metadata,
		Creator:      r.Creator,
		Version:      r.Version,
		CreatedAt:    r.CreatedAt.UTC(),
		ExpiresAt:    timePtr(r.ExpiresAt),
		RevokedAt:    timePtr(r.RevokedAt),
		Status:       "active",
	}
	switch {
	case !r.RevokedAt.IsZero():
		kb.Status = "revoked"
	case !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt):
		kb.Status = "expired"
	}
	if r.PrevDigest != (keystore.Digest{}) && now.Before(r.PrevNotAfter) && r.RevokedAt.IsZero() {
		kb.PreviousValidUntil = timePtr(r.PrevNotAfter)
	}
	if t, ok, err := s.opts.Manager.LastUsed(r.ID); err == nil && ok {
		kb.LastUsedAt = timePtr(t)
	}
	return kb
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
