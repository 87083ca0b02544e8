package adminclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Access request states, as used in [AccessRequest.Status] and
// [RequestStatus.Status].
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestDenied   = "denied"
	RequestExpired  = "expired"
)

// An AccessRequestSpec is an agent's request for a key: the body of
// POST /v1/auth/request. Only AgentID is required.
type AccessRequestSpec struct {
	AgentID     string `json:"agent_id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	CallbackURL string `json:"callback_url,omitempty"` // stored only; the daemon never calls it
}

// An AccessTicket answers an access request: the token to poll the
// request's status with. A repeat of a pending request answers the same
// token.
type AccessTicket struct {
	RequestToken string    `json:"request_token"`
	RequestID    string    `json:"request_id"`
	Status       string    `json:"status"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// LogValue implements [slog.LogValuer]. It never logs the request token.
func (t AccessTicket) LogValue() slog.Value {
	return slog.GroupValue(slog.String("request_id", t.RequestID), slog.String("request_token", "REDACTED"))
}

// A RequestStatus is what GET /v1/auth/status/{request_token} tells the
// agent. It never holds the key: the approving administrator receives it.
type RequestStatus struct {
	RequestID string    `json:"request_id"`
	AgentID   string    `json:"agent_id"`
	Status    string    `json:"status"` // one of the Request state constants
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	KeyID     string    `json:"key_id,omitempty"` // approved: the id of the key issued
	Message   string    `json:"message"`
}

// An AccessRequest is a request as the admin API shows it, never with its
// token.
type AccessRequest struct {
	ID          string    `json:"id"`
	AgentID     string    `json:"agent_id"`
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	CallbackURL string    `json:"callback_url,omitempty"`
	ClientAddr  string    `json:"client_addr,omitempty"`
	Status      string    `json:"status"` // one of the Request state constants
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	DecidedAt   time.Time `json:"decided_at,omitzero"`
	DecidedBy   string    `json:"decided_by,omitempty"`
	KeyID       string    `json:"key_id,omitempty"`
}

// A RequestList is the body of the answer to GET /v1/admin/requests.
type RequestList struct {
	Requests []AccessRequest `json:"requests"`
}

// An ApproveRequest is the optional body of
// POST /v1/admin/requests/{ref}/approve: what the agent's key grants.
// Empty fields take the daemon's configured defaults.
type ApproveRequest struct {
	Roles     []string `json:"roles,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	ExpiresIn Duration `json:"expires_in,omitzero"`
}

// An Approval answers an approval: the agent's new key, whose secret
// [Approval.AgentKey] the daemon shows only this once.
type Approval struct {
	RequestID string    `json:"request_id"`
	AgentID   string    `json:"agent_id"`
	KeyID     string    `json:"key_id"`
	AgentKey  string    `json:"agent_key"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Roles     []string  `json:"roles"`
	Scopes    []string  `json:"scopes"`
	Message   string    `json:"message"`
}

// LogValue implements [slog.LogValuer]. It never logs the agent key.
func (a Approval) LogValue() slog.Value {
	return slog.GroupValue(slog.String("agent_id", a.AgentID), slog.String("key_id", a.KeyID), slog.String("agent_key", "REDACTED"))
}

// An AgentRevocation answers DELETE /v1/admin/agents/{agent_id}: the ids
// of the live keys it revoked.
type AgentRevocation struct {
	AgentID string   `json:"agent_id"`
	Revoked []string `json:"revoked"`
}

// An AuditEntry is one administrative action of the audit trail.
type AuditEntry struct {
	Time    time.Time `json:"time"`
	Seq     uint64    `json:"seq"`
	Actor   string    `json:"actor"` // "admin:<8 hex>", "subject:<s>" or "system:<trigger>"
	Action  string    `json:"action"`
	Target  string    `json:"target,omitempty"`
	Outcome string    `json:"outcome"` // ok, invalid, not_found, conflict or error
	Detail  string    `json:"detail,omitempty"`
}

// An AuditQuery selects audit entries. Zero fields select everything;
// Cursor continues a listing (with the same other fields).
type AuditQuery struct {
	Since, Until time.Time // entries at or after Since and before Until
	Actor        string
	Action       string
	Target       string
	OldestFirst  bool // default: newest first
	Limit        int  // 1 to 1000; zero: the daemon's default, 100
	Cursor       string
}

// An AuditPage is the body of the answer to GET /v1/admin/audit.
// NextCursor is empty when nothing more matches.
type AuditPage struct {
	Entries    []AuditEntry `json:"entries"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// RequestAccess asks for an agent key with POST /v1/auth/request, which
// needs no admin key. The answer's token reads the request's status.
func (c *Client) RequestAccess(ctx context.Context, spec AccessRequestSpec) (AccessTicket, error) {
	if spec.AgentID == "" {
		return AccessTicket{}, fmt.Errorf("%w: an agent id is required", ErrInvalidArgument)
	}
	var t AccessTicket
	if err := c.public(ctx, http.MethodPost, "/v1/auth/request", spec, &t); err != nil {
		return AccessTicket{}, err
	}
	return t, nil
}

// RequestStatus reads a request's status with
// GET /v1/auth/status/{request_token}, which needs no admin key.
func (c *Client) RequestStatus(ctx context.Context, token string) (RequestStatus, error) {
	if err := checkID(token); err != nil {
		return RequestStatus{}, fmt.Errorf("%w: not a request token", ErrInvalidArgument)
	}
	var st RequestStatus
	err := c.public(ctx, http.MethodGet, "/v1/auth/status/"+token, nil, &st)
	var ue *url.Error
	if errors.As(err, &ue) {
		// The token is not for error messages.
		return RequestStatus{}, fmt.Errorf("adminclient: GET %s/v1/auth/status/REDACTED: %w", c.base, ue.Err)
	}
	return st, err
}

// ListRequests lists access requests in state (pending when empty; "all"
// for every one) with GET /v1/admin/requests.
func (c *Client) ListRequests(ctx context.Context, state string) ([]AccessRequest, error) {
	var q url.Values
	if state != "" {
		q = url.Values{"status": {state}}
	}
	var l RequestList
	if err := c.admin(ctx, http.MethodGet, "/v1/admin/requests", q, nil, &l); err != nil {
		return nil, err
	}
	return l.Requests, nil
}

// GetRequest fetches one request by its id (or token) with
// GET /v1/admin/requests/{ref}.
func (c *Client) GetRequest(ctx context.Context, ref string) (AccessRequest, error) {
	if err := checkID(ref); err != nil {
		return AccessRequest{}, err
	}
	var r AccessRequest
	err := c.admin(ctx, http.MethodGet, "/v1/admin/requests/"+ref, nil, nil, &r)
	return r, err
}

// ApproveRequest approves a pending request by its id (or token) with
// POST /v1/admin/requests/{ref}/approve and returns the agent's key, shown
// only this once.
func (c *Client) ApproveRequest(ctx context.Context, ref string, g ApproveRequest) (Approval, error) {
	if err := checkID(ref); err != nil {
		return Approval{}, err
	}
	if g.ExpiresIn < 0 {
		return Approval{}, fmt.Errorf("%w: negative expiry %v", ErrInvalidArgument, time.Duration(g.ExpiresIn))
	}
	var a Approval
	if err := c.admin(ctx, http.MethodPost, "/v1/admin/requests/"+ref+"/approve", nil, g, &a); err != nil {
		return Approval{}, err
	}
	if a.AgentKey == "" {
		return Approval{}, fmt.Errorf("adminclient: daemon approved request %s but returned no key", ref)
	}
	return a, nil
}

// DenyRequest denies a pending request by its id (or token) with
// POST /v1/admin/requests/{ref}/deny.
func (c *Client) DenyRequest(ctx context.Context, ref string) (AccessRequest, error) {
	if err := checkID(ref); err != nil {
		return AccessRequest{}, err
	}
	var r AccessRequest
	err := c.admin(ctx, http.MethodPost, "/v1/admin/requests/"+ref+"/deny", nil, nil, &r)
	return r, err
}

// RevokeAgent revokes every live key of an agent with
// DELETE /v1/admin/agents/{agent_id}; the agent may then ask again.
func (c *Client) RevokeAgent(ctx context.Context, agentID string) (AgentRevocation, error) {
	if agentID == "" || len(agentID) > MaxIDLen || strings.ContainsAny(agentID, "/?#") {
		return AgentRevocation{}, fmt.Errorf("%w: agent id must be 1 to %d characters without / ? #", ErrInvalidArgument, MaxIDLen)
	}
	var r AgentRevocation
	err := c.admin(ctx, http.MethodDelete, "/v1/admin/agents/"+url.PathEscape(agentID), nil, nil, &r)
	return r, err
}

// Audit reads one page of the audit trail with GET /v1/admin/audit.
func (c *Client) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	if q.Limit < 0 {
		return AuditPage{}, fmt.Errorf("%w: negative limit", ErrInvalidArgument)
	}
	v := url.Values{}
	for name, t := range map[string]time.Time{"since": q.Since, "until": q.Until} {
		if !t.IsZero() {
			v.Set(name, t.UTC().Format(time.RFC3339))
		}
	}
	for name, s := range map[string]string{"actor": q.Actor, "action": q.Action, "target": q.Target, "cursor": q.Cursor} {
		if s != "" {
			v.Set(name, s)
		}
	}
	if q.OldestFirst {
		v.Set("order", "oldest")
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var p AuditPage
	if err := c.admin(ctx, http.MethodGet, "/v1/admin/audit", v, nil, &p); err != nil {
		return AuditPage{}, err
	}
	return p, nil
}

// public makes a call that needs no admin key and decodes a 2xx answer
// into out.
func (c *Client) public(ctx context.Context, method, path string, in, out any) error {
	status, body, err := c.do(ctx, method, path, nil, false, in)
	if err != nil {
		return err
	}
	switch {
	case status >= 200 && status < 300:
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("adminclient: %s %s: undecodable answer: %w", method, path, err)
		}
		return nil
	case status >= 400:
		return apiError(status, body)
	}
	return fmt.Errorf("adminclient: %s %s: unexpected status %d", method, path, status)
}
