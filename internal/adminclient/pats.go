package adminclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// A PATScope is one scope of a personal access token in SuperMQ's form:
// an operation on an entity type in a domain, on one entity or on every
// entity ("*"). The daemon maps it onto a scope pattern.
type PATScope struct {
	Domain     string `json:"optional_domain_id"`
	EntityType string `json:"entity_type"` // clients, channels, groups, dashboards, messages or domains
	Operation  string `json:"operation"`   // create, list, read (or view), update, delete, share, unshare, publish, subscribe
	EntityID   string `json:"entity_id"`   // one entity's id, or "*"
}

// A PAT is a personal access token as the daemon returns it. It never
// holds the secret except in the answer to a create or reset, where
// [PAT.Secret] is set and shown only that once.
type PAT struct {
	ID          string     `json:"id"`
	Subject     string     `json:"subject"` // the owner
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Status      string     `json:"status"` // one of the Key status constants
	Scopes      []PATScope `json:"scopes"` // the tuples, in the order they were added
	// ScopesError is set when the daemon cannot show the tuples (they were
	// written outside the PAT API); Patterns still hold what the PAT grants.
	ScopesError string   `json:"scopes_error,omitempty"`
	Patterns    []string `json:"patterns"` // the scope patterns the PAT grants
	Creator     string   `json:"creator"`  // "admin", or "subject:<s>" for a PAT its owner created
	Version     uint64   `json:"version"`

	CreatedAt          time.Time `json:"created_at"`
	ExpiresAt          time.Time `json:"expires_at,omitzero"`
	RevokedAt          time.Time `json:"revoked_at,omitzero"`
	LastUsedAt         time.Time `json:"last_used_at,omitzero"`
	PreviousValidUntil time.Time `json:"previous_valid_until,omitzero"`

	// Secret is the token, "pat_<id>_<secret>", set only in the answer to
	// a create or a reset.
	Secret string `json:"secret,omitempty"`
}

// LogValue implements [slog.LogValuer]. It logs the PAT's identity and
// never the secret.
func (p PAT) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("id", p.ID), slog.String("subject", p.Subject), slog.String("status", p.Status)}
	if p.Secret != "" {
		attrs = append(attrs, slog.String("secret", "REDACTED"))
	}
	return slog.GroupValue(attrs...)
}

// A PATSpec describes a PAT to create: the body of POST /v1/pats. Subject
// and Name are required.
type PATSpec struct {
	Subject     string     `json:"subject"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Duration    Duration   `json:"duration,omitzero"` // zero: the daemon's default (720h)
	Scopes      []PATScope `json:"scopes,omitempty"`
}

// PATList is the answer of GET /v1/pats.
type PATList struct {
	PATs []PAT `json:"pats"`
}

// PATScopeList is the answer of GET /v1/pats/{id}/scopes: the tuples and
// the patterns they (and any pattern given otherwise) grant.
type PATScopeList struct {
	Scopes      []PATScope `json:"scopes"`
	ScopesError string     `json:"scopes_error,omitempty"`
	Patterns    []string   `json:"patterns"`
}

// patScopesRequest is the body of the scope changes.
type patScopesRequest struct {
	Scopes []PATScope `json:"scopes"`
}

// patResetRequest is the body of POST /v1/pats/{id}/reset.
type patResetRequest struct {
	Duration Duration `json:"duration,omitzero"`
}

// CreatePAT creates a personal access token with POST /v1/pats. The
// returned PAT carries the token in [PAT.Secret]; the daemon shows it only
// this once.
func (c *Client) CreatePAT(ctx context.Context, spec PATSpec) (PAT, error) {
	switch {
	case spec.Subject == "":
		return PAT{}, fmt.Errorf("%w: subject is required", ErrInvalidArgument)
	case spec.Name == "":
		return PAT{}, fmt.Errorf("%w: name is required", ErrInvalidArgument)
	case spec.Duration < 0:
		return PAT{}, fmt.Errorf("%w: negative duration %v", ErrInvalidArgument, time.Duration(spec.Duration))
	}
	var p PAT
	if err := c.admin(ctx, http.MethodPost, "/v1/pats", nil, spec, &p); err != nil {
		return PAT{}, err
	}
	if p.Secret == "" {
		return PAT{}, errors.New("adminclient: daemon created a PAT but returned no secret")
	}
	return p, nil
}

// ListPATs lists personal access tokens with GET /v1/pats, those of one
// subject when subject is not empty. Secrets are never listed.
func (c *Client) ListPATs(ctx context.Context, subject string) ([]PAT, error) {
	var q url.Values
	if subject != "" {
		q = url.Values{"subject": {subject}}
	}
	var l PATList
	if err := c.admin(ctx, http.MethodGet, "/v1/pats", q, nil, &l); err != nil {
		return nil, err
	}
	return l.PATs, nil
}

// GetPAT fetches one PAT with GET /v1/pats/{id}. An unknown id, or the id
// of a credential that is not a PAT, is an [*APIError] with Status 404.
func (c *Client) GetPAT(ctx context.Context, id string) (PAT, error) {
	var p PAT
	err := c.patCall(ctx, http.MethodGet, id, "", nil, &p)
	return p, err
}

// PATScopes fetches the scopes of a PAT with GET /v1/pats/{id}/scopes.
func (c *Client) PATScopes(ctx context.Context, id string) (PATScopeList, error) {
	var l PATScopeList
	err := c.patCall(ctx, http.MethodGet, id, "/scopes", nil, &l)
	return l, err
}

// AddPATScopes adds scopes to a PAT with PATCH /v1/pats/{id}/scope/add and
// returns the PAT as it now is. If the daemon refuses one tuple (400), it
// adds none.
func (c *Client) AddPATScopes(ctx context.Context, id string, scopes []PATScope) (PAT, error) {
	return c.changePATScopes(ctx, id, "/scope/add", scopes)
}

// RemovePATScopes removes the grants of scopes from a PAT with
// PATCH /v1/pats/{id}/scope/remove and returns the PAT as it now is.
func (c *Client) RemovePATScopes(ctx context.Context, id string, scopes []PATScope) (PAT, error) {
	return c.changePATScopes(ctx, id, "/scope/remove", scopes)
}

func (c *Client) changePATScopes(ctx context.Context, id, action string, scopes []PATScope) (PAT, error) {
	if len(scopes) == 0 {
		return PAT{}, fmt.Errorf("%w: at least one scope is required", ErrInvalidArgument)
	}
	var p PAT
	err := c.patCall(ctx, http.MethodPatch, id, action, patScopesRequest{Scopes: scopes}, &p)
	return p, err
}

// RevokePAT revokes a PAT with DELETE /v1/pats/{id} and returns it as it
// now is.
func (c *Client) RevokePAT(ctx context.Context, id string) (PAT, error) {
	var p PAT
	err := c.patCall(ctx, http.MethodDelete, id, "", nil, &p)
	return p, err
}

// ResetPAT gives a PAT a new secret, keeping its id and scopes, valid for
// duration from now (zero: the daemon's default), with
// POST /v1/pats/{id}/reset. The old secret stops working at once. The
// returned PAT carries the new token in [PAT.Secret].
func (c *Client) ResetPAT(ctx context.Context, id string, duration time.Duration) (PAT, error) {
	if duration < 0 {
		return PAT{}, fmt.Errorf("%w: negative duration %v", ErrInvalidArgument, duration)
	}
	var p PAT
	if err := c.patCall(ctx, http.MethodPost, id, "/reset", patResetRequest{Duration: Duration(duration)}, &p); err != nil {
		return PAT{}, err
	}
	if p.Secret == "" {
		return PAT{}, errors.New("adminclient: daemon reset a PAT but returned no secret")
	}
	return p, nil
}

// patCall makes an admin call on the PAT id: /v1/pats/{id} + action.
func (c *Client) patCall(ctx context.Context, method, id, action string, in, out any) error {
	if err := checkID(id); err != nil {
		return err
	}
	return c.admin(ctx, method, "/v1/pats/"+id+action, nil, in, out)
}
